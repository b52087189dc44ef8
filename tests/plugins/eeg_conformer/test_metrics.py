"""Metrics against hand computations (no scikit-learn)."""
import math

import numpy as np
import pytest

pytest.importorskip("mne")

from sigplex.plugins.eeg_conformer import metrics as M


def test_accuracy_balanced_accuracy_and_kappa_by_hand():
    y = [0, 0, 0, 0, 1, 1, 2, 2]
    p = [0, 0, 1, 0, 1, 0, 2, 1]
    assert M.accuracy(y, p) == 5 / 8
    # recalls: 3/4, 1/2, 1/2
    assert M.balanced_accuracy(y, p, 3) == pytest.approx((0.75 + 0.5 + 0.5) / 3)
    # confusion rows (truth) [3,1,0] [1,1,0] [0,1,1]; po = 5/8; pe = (4*4 + 2*3 + 2*1)/64
    pe = (4 * 4 + 2 * 3 + 2 * 1) / 64
    assert M.cohen_kappa(y, p, 3) == pytest.approx((5 / 8 - pe) / (1 - pe))
    assert M.cohen_kappa([0, 1, 1, 0], [0, 1, 1, 0], 2) == 1.0
    assert M.cohen_kappa([0, 1, 0, 1], [0, 0, 0, 0], 2) == 0.0


def test_auroc_counts_pairs_and_ties_half():
    y = [0, 0, 1, 1, 1]
    s = [0.1, 0.6, 0.6, 0.8, 0.3]
    # positive-negative pairs: (0.6 vs .1 win, .6 tie) (.8: 2 wins) (.3: 1 win, 1 loss) = (1 + .5 + 2 + 1) / 6
    assert M.auroc(y, s) == pytest.approx(4.5 / 6)
    assert math.isnan(M.auroc([1, 1], [0.2, 0.3]))


def test_sensitivity_specificity_and_false_alarms_per_hour():
    y = np.array([0, 0, 1, 1, 0, 0, 0, 0, 0, 0])
    p = np.array([1, 0, 1, 0, 0, 1, 1, 0, 0, 1])
    sens, spec = M.sensitivity_specificity(y, p)
    assert sens == 0.5 and spec == 4 / 8
    rec = np.array([0] * 10)
    # runs of positives: [0], [2], [5,6], [9] -> the run at 2 holds a seizure; 3 false alarms
    # non-seizure time: 8 windows x 450 s = 1 h
    assert M.false_alarms_per_hour(y, p, rec, 450.0) == pytest.approx(3.0)
    # a recording boundary splits a run into two alarms
    rec2 = np.array([0] * 6 + [1] * 4)
    assert M.false_alarms_per_hour(y, p, rec2, 450.0) == pytest.approx(4.0)
    assert M.false_alarms_per_hour(y, np.zeros(10), rec, 450.0) == 0.0
