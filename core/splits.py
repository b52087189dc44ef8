"""Seeded splits and cross-validation groupings shared by tasks.

>>> seeded_split(10, (0.8, 0.1, 0.1), seed=0)[0].shape
(8,)
>>> [len(test) for _, test in kfold_folds(10, 5, seed=0)]
[2, 2, 2, 2, 2]
"""
from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np

from .errors import UserError


def seeded_split(n: int, fractions: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0,
                 what: str = "items") -> list[np.ndarray]:
    """Shuffle ``range(n)`` with ``seed`` and cut it by ``fractions``; every part gets ≥ 1 item when n allows.

    Returns one sorted index array per fraction.
    """
    fractions = [float(f) for f in fractions]
    if any(f < 0 for f in fractions) or not 0 < sum(fractions) <= 1 + 1e-9:
        raise UserError(f"split fractions {fractions}: expected non-negative values summing to at most 1")
    k = sum(1 for f in fractions if f > 0)
    if n < k:
        raise UserError(f"{what}: expected at least {k} for a {'/'.join(f'{f:g}' for f in fractions)} split, found {n}")
    order = np.random.default_rng(seed).permutation(n)
    counts = [int(round(f * n)) for f in fractions]
    for i, f in enumerate(fractions):  # no empty part that was asked for
        if f > 0 and counts[i] == 0:
            counts[i] = 1
    while sum(counts) > n:
        counts[int(np.argmax(counts))] -= 1
    if abs(sum(fractions) - 1) < 1e-9:  # fractions of the whole: rounding leftovers go to the largest part
        counts[int(np.argmax(fractions))] += n - sum(counts)
    edges = np.cumsum([0] + counts)
    return [np.sort(order[edges[i]:edges[i + 1]]) for i in range(len(fractions))]


def kfold_folds(n: int, k: int, seed: int = 0, shuffle: bool = True) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``(train_idx, test_idx)`` for k folds of ``range(n)``: shuffled with ``seed``, or contiguous blocks
    in order with ``shuffle=False`` (no leakage between neighbouring trials of a recording)."""
    if k < 2 or k > n:
        raise UserError(f"k-fold: expected 2 <= k <= {n} items, got k={k}")
    order = np.random.default_rng(seed).permutation(n) if shuffle else np.arange(n)
    for part in np.array_split(order, k):
        test = np.sort(part)
        yield np.setdiff1d(np.arange(n), test), test


def group_folds(groups: Sequence) -> Iterator[tuple[object, np.ndarray, np.ndarray]]:
    """Leave-one-group-out: ``(group, train_idx, test_idx)`` per distinct group, in first-seen order."""
    groups = list(groups)
    seen = list(dict.fromkeys(groups))
    if len(seen) < 2:
        raise UserError(f"leave-one-group-out: expected at least 2 groups, found {len(seen)}")
    arr = np.array([seen.index(g) for g in groups])
    for gi, g in enumerate(seen):
        yield g, np.flatnonzero(arr != gi), np.flatnonzero(arr == gi)


def chronological_folds(n: int, k: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Expanding-window folds over time-ordered items: train on everything before each of k test blocks."""
    if k < 1 or n < k + 1:
        raise UserError(f"chronological folds: expected n > k >= 1, got n={n}, k={k}")
    edges = np.linspace(0, n, k + 2).astype(int)
    for i in range(1, k + 1):
        yield np.arange(0, edges[i]), np.arange(edges[i], edges[i + 1])
