"""Classification and detection metrics in plain NumPy (no scikit-learn).

Motor imagery: accuracy, balanced accuracy (mean per-class recall) and Cohen's kappa. Seizure
detection: sensitivity, specificity, AUROC (Mann-Whitney rank statistic, ties counted half) and
false alarms per hour (runs of consecutive positive windows in a recording that contain no
seizure window, per hour of non-seizure recording). :func:`motor_imagery_scores` and
:func:`seizure_scores` gather them for a whole dataset, overall and per subject.
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


def nll(y_true, probs) -> float:
    """Mean negative log-likelihood of the true classes under ``probs [n, K]``."""
    y_true = np.asarray(y_true, int)
    return float(-np.log(np.clip(probs[np.arange(len(y_true)), y_true], 1e-12, None)).mean())


def motor_imagery_scores(dataset, probs: np.ndarray, n_classes: int) -> dict[str, float]:
    """Loss, accuracy, balanced accuracy and kappa of ``probs`` on a WindowDataset, overall and per subject."""
    y, pred = dataset.y.numpy(), probs.argmax(1)

    def scores(m, suffix=""):
        return {f"accuracy{suffix}": accuracy(y[m], pred[m]),
                f"balanced_accuracy{suffix}": balanced_accuracy(y[m], pred[m], n_classes),
                f"kappa{suffix}": cohen_kappa(y[m], pred[m], n_classes)}

    out = {"loss": nll(y, probs), **scores(np.ones(len(y), dtype=bool))}
    for s, name in enumerate(dataset.subjects):
        if (dataset.subject == s).any():
            out.update(scores(dataset.subject == s, f"_{name}"))
    return out


def seizure_scores(dataset, probs: np.ndarray, threshold: float, stride_s: float) -> dict[str, float]:
    """Loss, accuracy, sensitivity, specificity, AUROC and false alarms/h at ``threshold``, overall and per subject."""
    y, score = dataset.y.numpy(), probs[:, 1]
    pred = (score >= threshold).astype(int)

    def scores(m, suffix=""):
        sens, spec = sensitivity_specificity(y[m], pred[m])
        return {f"sensitivity{suffix}": sens, f"specificity{suffix}": spec, f"auroc{suffix}": auroc(y[m], score[m]),
                f"false_alarms_per_hour{suffix}": false_alarms_per_hour(y[m], pred[m], dataset.recording[m], stride_s)}

    out = {"loss": nll(y, probs), "accuracy": accuracy(y, pred), **scores(np.ones(len(y), dtype=bool))}
    if np.isnan(out["auroc"]):
        out["auroc"] = 0.5  # one class only: keep the monitor finite
    for s, name in enumerate(dataset.subjects):
        if (dataset.subject == s).any():
            out.update(scores(dataset.subject == s, f"_{name}"))
    return out


__all__ = ["accuracy", "auroc", "balanced_accuracy", "cohen_kappa", "confusion", "false_alarms_per_hour",
           "motor_imagery_scores", "nll", "seizure_scores", "sensitivity_specificity"]
