"""Modulation-recognition scores: accuracy overall, per SNR, mean over SNRs, at high SNR; confusion matrices.

Per-SNR accuracies are named ``acc_snr_<snr>`` with ``m`` for minus and ``p`` for a decimal point
(``acc_snr_m20``, ``acc_snr_0``, ``acc_snr_18``, ``acc_snr_2p5``).
"""
from __future__ import annotations

import numpy as np


def snr_key(snr: float) -> str:
    """``-20 -> "acc_snr_m20"``, ``2.5 -> "acc_snr_2p5"``."""
    return "acc_snr_" + ("m" if snr < 0 else "") + f"{abs(float(snr)):g}".replace(".", "p")


def accuracy_by_snr(pred: np.ndarray, y: np.ndarray, snr: np.ndarray) -> dict[float, float]:
    """``{snr: accuracy}`` over the distinct SNRs present, ascending."""
    correct = pred == y
    return {float(s): float(correct[snr == s].mean()) for s in np.unique(snr)}


def scores(logits: np.ndarray, y: np.ndarray, snr: np.ndarray, high_snr: float = 10.0) -> dict[str, float]:
    """``accuracy``, ``acc_mean`` (mean of per-SNR accuracies), ``acc_high`` (SNR >= high_snr), ``loss``, ``acc_snr_*``."""
    logits = np.asarray(logits, np.float64)
    pred = logits.argmax(1)
    shifted = logits - logits.max(1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(1, keepdims=True))
    out = {"accuracy": float((pred == y).mean()), "loss": float(-log_probs[np.arange(len(y)), y].mean())}
    per = accuracy_by_snr(pred, y, snr)
    out["acc_mean"] = float(np.mean(list(per.values())))
    high = snr >= high_snr
    if high.any():
        out["acc_high"] = float((pred[high] == y[high]).mean())
    out.update({snr_key(s): a for s, a in per.items()})
    return out


def confusion(pred: np.ndarray, y: np.ndarray, n_classes: int) -> np.ndarray:
    """Row-normalised confusion matrix ``[true, predicted]`` (rows without frames stay zero)."""
    m = np.zeros((n_classes, n_classes))
    np.add.at(m, (y, pred), 1.0)
    rows = m.sum(1, keepdims=True)
    return m / np.where(rows > 0, rows, 1.0)


__all__ = ["accuracy_by_snr", "confusion", "scores", "snr_key"]
