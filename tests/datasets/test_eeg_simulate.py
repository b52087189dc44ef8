"""Simulated default data: FIF files with annotations, contralateral mu desynchronisation, cache reuse."""
import json

import numpy as np
import pytest

mne = pytest.importorskip("mne")

from sigplex.datasets.eeg import find_recordings, load_raw
from sigplex.datasets.eeg.simulate import (
    MI_CHANNELS,
    simulate_motor_imagery,
    simulate_seizures,
)


def _mu_power(raw, channel, onsets):
    x = raw.copy().pick([channel]).filter(8, 13, verbose="error").get_data()[0]
    sf = raw.info["sfreq"]
    return np.array([np.mean(x[int((o + 0.5) * sf):int((o + 3.5) * sf)] ** 2) for o in onsets])


def test_motor_imagery_files_annotations_and_contralateral_erd(tmp_path):
    root = simulate_motor_imagery(tmp_path, n_subjects=2, n_trials=20)
    recs = find_recordings(root)
    assert [r.subject for r in recs] == ["01", "02"]
    meta = json.loads((root / "dataset.json").read_text())
    assert meta["channels"] == MI_CHANNELS and meta["kind"] == "motor_imagery"
    for rec in recs:
        raw = load_raw(rec)
        assert raw.ch_names == MI_CHANNELS and raw.info["sfreq"] == 250.0
        descr = np.array(raw.annotations.description)
        onsets = np.array(raw.annotations.onset)
        assert sorted(set(descr)) == ["left_hand", "right_hand"] and (descr == "left_hand").sum() == 10
        left, right = onsets[descr == "left_hand"], onsets[descr == "right_hand"]
        # left-hand imagery desynchronises the right motor cortex (C4) and vice versa
        assert _mu_power(raw, "C4", left).mean() < _mu_power(raw, "C4", right).mean()
        assert _mu_power(raw, "C3", right).mean() < _mu_power(raw, "C3", left).mean()


def test_generation_is_reused_not_rewritten(tmp_path):
    first = simulate_motor_imagery(tmp_path, n_subjects=2, n_trials=4)
    stamp = {p.name: p.stat().st_mtime_ns for p in first.iterdir()}
    again = simulate_motor_imagery(tmp_path, n_subjects=2, n_trials=4)
    assert again == first and {p.name: p.stat().st_mtime_ns for p in again.iterdir()} == stamp
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary folder left


def test_seizure_recordings_have_annotated_high_amplitude_events(tmp_path):
    root = simulate_seizures(tmp_path, n_subjects=2, minutes=3, n_seizures=2)
    raw = load_raw(find_recordings(root)[0])
    ann = raw.annotations
    assert list(ann.description) == ["seizure", "seizure"]
    assert all(0 <= o and o + d <= raw.times[-1] for o, d in zip(ann.onset, ann.duration))
    assert ann.onset[0] + ann.duration[0] < ann.onset[1]
    x = raw.copy().filter(2, 8, verbose="error").get_data()
    sf = raw.info["sfreq"]
    inside = np.zeros(raw.n_times, bool)
    for o, d in zip(ann.onset, ann.duration):
        inside[int(o * sf):int((o + d) * sf)] = True
    ratio = (x[:, inside] ** 2).mean(1) / (x[:, ~inside] ** 2).mean(1)  # per channel
    assert ratio.max() > 3 and ratio.mean() > 1.5
