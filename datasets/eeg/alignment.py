"""Euclidean alignment (He & Wu, 2019): whiten each subject's trials by its mean spatial covariance.

``R = mean_i X_i X_iᵀ / T``; aligned trials are ``R^{-1/2} X_i``, so the aligned mean covariance
is the identity for every subject — an unsupervised, per-subject step that makes cross-subject
transfer easier.
"""
from __future__ import annotations

import numpy as np


def reference_matrix(x: np.ndarray) -> np.ndarray:
    """Mean covariance ``[C, C]`` of trials ``x`` ``[n, C, T]``."""
    x = np.asarray(x, dtype=np.float64)
    return np.einsum("nct,ndt->cd", x, x) / (x.shape[0] * x.shape[2])


def inverse_sqrt(r: np.ndarray, eps: float = 1e-10) -> np.ndarray:
    """``R^{-1/2}`` of a symmetric positive (semi)definite matrix, eigenvalues floored at ``eps·max``."""
    w, v = np.linalg.eigh((r + r.T) / 2)
    w = np.maximum(w, eps * max(w.max(), 1e-30))
    return (v / np.sqrt(w)) @ v.T


def euclidean_alignment(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Aligned trials (float32, same shape) and the ``R^{-1/2}`` used."""
    m = inverse_sqrt(reference_matrix(x))
    return np.einsum("cd,ndt->nct", m, np.asarray(x, dtype=np.float64)).astype(np.float32), m


__all__ = ["euclidean_alignment", "inverse_sqrt", "reference_matrix"]
