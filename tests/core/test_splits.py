"""Seeded splits and cross-validation groupings of sigplex.core.splits."""
import numpy as np
import pytest

from sigplex.core.errors import UserError
from sigplex.core.splits import chronological_folds, group_folds, kfold_folds, seeded_split


def test_seeded_split_partitions_and_is_reproducible():
    parts = seeded_split(103, (0.8, 0.1, 0.1), seed=4)
    assert [len(p) for p in parts] == [83, 10, 10]
    assert np.array_equal(np.sort(np.concatenate(parts)), np.arange(103))
    assert all(np.array_equal(a, b) for a, b in zip(parts, seeded_split(103, (0.8, 0.1, 0.1), seed=4)))
    assert [len(p) for p in seeded_split(3, (0.8, 0.1, 0.1))] == [1, 1, 1]
    with pytest.raises(UserError, match="at least 3"):
        seeded_split(2, (0.8, 0.1, 0.1), what="cases")


def test_kfold_shuffled_and_contiguous():
    for shuffle in (True, False):
        folds = list(kfold_folds(10, 3, shuffle=shuffle))
        tests = np.concatenate([t for _, t in folds])
        assert np.array_equal(np.sort(tests), np.arange(10))
        assert all(len(np.intersect1d(tr, te)) == 0 for tr, te in folds)
    assert [list(t) for _, t in kfold_folds(6, 3, shuffle=False)] == [[0, 1], [2, 3], [4, 5]]


def test_group_and_chronological_folds():
    folds = list(group_folds(["s1", "s2", "s1", "s3"]))
    assert [g for g, _, _ in folds] == ["s1", "s2", "s3"] and list(folds[0][2]) == [0, 2]
    chrono = list(chronological_folds(12, 2))
    assert all(tr.max() < te.min() for tr, te in chrono)
    with pytest.raises(UserError):
        list(group_folds(["only"]))
