"""Evaluation protocols: which epochs land in train/val/test for loso, within and kfold."""
import numpy as np
import pytest

pytest.importorskip("mne")

from sigplex.core.errors import UserError
from sigplex.plugins.eeg_conformer.config import MIDataSection
from sigplex.plugins.eeg_conformer.data import SubjectData, WindowDataset, split


def subjects(n_subjects=4, n=10):
    return [SubjectData(f"S{k}", np.zeros((n, 2, 8), np.float32), np.arange(n) % 2, np.arange(n, dtype=float),
                        np.zeros(n, int), [f"S{k}.fif"]) for k in range(n_subjects)]


def names(parts):
    return [(s.subject, idx.tolist()) for s, idx in parts]


def test_loso_default_tests_last_subject_validates_on_the_one_before():
    train, val, test = split(subjects(), MIDataSection())
    assert [s for s, _ in names(test)] == ["S3"] and [s for s, _ in names(val)] == ["S2"]
    assert [s for s, _ in names(train)] == ["S0", "S1"]
    train, val, test = split(subjects(), MIDataSection(test_subject="S0", val_subject="S3"))
    assert [s.subject for s, _ in test] == ["S0"] and [s.subject for s, _ in val] == ["S3"]
    train, val, test = split(subjects(), MIDataSection(fold=1))
    assert [s.subject for s, _ in test] == ["S1"] and [s.subject for s, _ in val] == ["S0"]
    assert [s.subject for s, _ in train] == ["S2", "S3"]
    with pytest.raises(UserError, match="data.test_subject: 'S9' is not a subject"):
        split(subjects(), MIDataSection(test_subject="S9"))
    with pytest.raises(UserError, match="loso needs at least 2 subjects"):
        split(subjects(1), MIDataSection())


def test_within_is_chronological_per_subject():
    train, val, test = split(subjects(2), MIDataSection(protocol="within", test_fraction=0.2, val_fraction=0.25))
    assert names(test) == [("S0", [8, 9]), ("S1", [8, 9])]
    assert names(val) == [("S0", [6, 7]), ("S1", [6, 7])]
    assert names(train) == [("S0", [0, 1, 2, 3, 4, 5]), ("S1", [0, 1, 2, 3, 4, 5])]


def test_kfold_uses_contiguous_folds_and_covers_every_epoch_once():
    seen = []
    for k in range(5):
        train, val, test = split(subjects(1), MIDataSection(protocol="kfold", n_folds=5, fold=k, val_fraction=0.0))
        assert names(test) == [("S0", [2 * k, 2 * k + 1])]
        assert sorted(train[0][1].tolist() + test[0][1].tolist()) == list(range(10))
        seen += test[0][1].tolist()
    assert sorted(seen) == list(range(10))


def test_window_dataset_keeps_subject_and_recording_ids():
    subs = subjects(2, 4)
    ds = WindowDataset([(subs[0], np.array([0, 1])), (subs[1], np.array([2, 3]))])
    assert len(ds) == 4 and ds.subjects == ["S0", "S1"]
    assert ds.subject.tolist() == [0, 0, 1, 1] and ds.recording.tolist() == [0, 0, 1, 1]
    assert ds[3]["y"].item() == 1 and tuple(ds[0]["x"].shape) == (2, 8)
