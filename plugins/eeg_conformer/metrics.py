"""Classification and detection metrics in plain NumPy (no scikit-learn).

Motor imagery: accuracy, balanced accuracy (mean per-class recall) and Cohen's kappa. Seizure
detection: sensitivity, specificity, AUROC (Mann-Whitney rank statistic, ties counted half) and
false alarms per hour (runs of consecutive positive windows in a recording that contain no
seizure window, per hour of non-seizure recording).
"""
from __future__ import annotations

import numpy as np


def confusion(y_true, y_pred, n_classes: int) -> np.ndarray:
    """``[n_classes, n_classes]`` counts, rows = truth, columns = prediction."""
    m = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(m, (np.asarray(y_true, int), np.asarray(y_pred, int)), 1)
    return m


def accuracy(y_true, y_pred) -> float:
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    return float((y_true == y_pred).mean()) if len(y_true) else float("nan")


def balanced_accuracy(y_true, y_pred, n_classes: int) -> float:
    m = confusion(y_true, y_pred, n_classes)
    support = m.sum(1)
    present = support > 0
    return float((np.diag(m)[present] / support[present]).mean()) if present.any() else float("nan")


def cohen_kappa(y_true, y_pred, n_classes: int) -> float:
    m = confusion(y_true, y_pred, n_classes).astype(float)
    n = m.sum()
    if n == 0:
        return float("nan")
    po = np.trace(m) / n
    pe = (m.sum(0) * m.sum(1)).sum() / n**2
    return float((po - pe) / (1 - pe)) if pe < 1 else 0.0


def auroc(y_true, score) -> float:
    """Area under the ROC curve; NaN when only one class is present."""
    y_true, score = np.asarray(y_true).astype(bool), np.asarray(score, float)
    n_pos, n_neg = int(y_true.sum()), int((~y_true).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(score, kind="mergesort")
    ranks = np.empty(len(score))
    sorted_scores = score[order]
    # average ranks over ties
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    avg = first + (counts + 1) / 2.0
    ranks[order] = np.repeat(avg, counts)
    return float((ranks[y_true].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def sensitivity_specificity(y_true, y_pred) -> tuple[float, float]:
    y_true, y_pred = np.asarray(y_true).astype(bool), np.asarray(y_pred).astype(bool)
    sens = float((y_pred & y_true).sum() / y_true.sum()) if y_true.any() else float("nan")
    spec = float((~y_pred & ~y_true).sum() / (~y_true).sum()) if (~y_true).any() else float("nan")
    return sens, spec


def false_alarms_per_hour(y_true, y_pred, recording, stride_s: float) -> float:
    """False alarms (positive runs without any true seizure window) per hour of non-seizure windows.

    Windows must be in time order within each recording; each window stands for ``stride_s`` seconds.
    """
    y_true, y_pred = np.asarray(y_true).astype(bool), np.asarray(y_pred).astype(bool)
    recording = np.asarray(recording)
    if not len(y_true):
        return float("nan")
    new_rec = np.r_[True, recording[1:] != recording[:-1]]
    starts = y_pred & (new_rec | ~np.r_[False, y_pred[:-1]])
    run_id = np.cumsum(starts) * y_pred  # 0 outside runs
    n_runs = int(starts.sum())
    if n_runs == 0:
        return 0.0
    hit = np.zeros(n_runs + 1, dtype=bool)
    np.logical_or.at(hit, run_id, y_true & y_pred)
    false_runs = int((~hit[1:]).sum())
    hours = (~y_true).sum() * stride_s / 3600.0
    return float(false_runs / hours) if hours > 0 else float("nan")


__all__ = ["accuracy", "auroc", "balanced_accuracy", "cohen_kappa", "confusion", "false_alarms_per_hour",
           "sensitivity_specificity"]
