"""sigplex.datasets.eeg preprocessing: picks/reordering, filters, events, epochs, windows, EA, errors."""
import numpy as np
import pytest

mne = pytest.importorskip("mne")

from sigplex.core.errors import UserError
from sigplex.datasets.eeg.alignment import euclidean_alignment, reference_matrix
from sigplex.datasets.eeg.preprocess import (
    Preprocessing,
    epoch,
    find_events,
    match_events,
    preprocess,
    sliding_windows,
    window_labels,
)


def raw_of(data, channels, sfreq=100.0, annotations=None):
    raw = mne.io.RawArray(np.asarray(data, float), mne.create_info(channels, sfreq, "eeg"), verbose="error")
    if annotations:
        raw.set_annotations(mne.Annotations(*annotations))
    return raw


def noise(c=3, n=1000, seed=0):
    return np.random.default_rng(seed).standard_normal((c, n)) * 1e-5


def test_picks_reorder_channels_and_average_reference():
    data = noise()
    raw = raw_of(data, ["C4", "Cz", "C3"])
    out = preprocess(raw, Preprocessing(["C3", "C4"], 100.0, reference="average"), "r.fif")
    assert out.ch_names == ["C3", "C4"]
    avg = data[[2, 0]].mean(0)  # average over the picked channels only
    np.testing.assert_allclose(out.get_data(), data[[2, 0]] - avg, atol=1e-15)


def test_channel_names_match_up_to_case():
    raw = raw_of(noise(2), ["FP1", "cz"])
    out = preprocess(raw, Preprocessing(["Fp1", "Cz"], 100.0, reference=None), "r.fif")
    assert out.ch_names == ["Fp1", "Cz"]


def test_bandpass_and_notch_remove_out_of_band_power():
    t = np.arange(2000) / 200.0
    sig = np.sin(2 * np.pi * 10 * t) + np.sin(2 * np.pi * 50 * t) + np.sin(2 * np.pi * 1 * t)
    raw = raw_of(np.stack([sig, sig * 0.5]) * 1e-5, ["C3", "C4"], sfreq=200.0)
    out = preprocess(raw, Preprocessing(["C3", "C4"], 100.0, reference=None, notch=[50.0], l_freq=4, h_freq=30,
                                        resample=True), "r.fif")
    assert out.info["sfreq"] == 100.0
    x = out.get_data()[0, 100:-100]
    spec = np.abs(np.fft.rfft(x))
    f = np.fft.rfftfreq(len(x), 1 / 100.0)
    at = lambda hz: spec[np.argmin(np.abs(f - hz))]
    assert at(10) > 20 * at(1)


def test_missing_channel_error_names_file_field_and_what_is_there():
    raw = raw_of(noise(2), ["C3", "C4"])
    with pytest.raises(UserError, match=r"r\.fif: channel\(s\) Cz of data\.channels not found .*it has: C3, C4"):
        preprocess(raw, Preprocessing(["C3", "Cz"], 100.0), "r.fif")


def test_nan_and_flat_channels_are_errors():
    data = noise()
    data[1, 10] = np.nan
    with pytest.raises(UserError, match=r"channel\(s\) Cz contain NaN"):
        preprocess(raw_of(data, ["C3", "Cz", "C4"]), Preprocessing(["C3", "Cz", "C4"], 100.0), "r.fif")
    data = noise()
    data[2] = 3e-6
    with pytest.raises(UserError, match=r"channel\(s\) C4 are flat"):
        preprocess(raw_of(data, ["C3", "Cz", "C4"]), Preprocessing(["C3", "Cz", "C4"], 100.0), "r.fif")


def test_sampling_rate_mismatch_without_resample_is_an_error():
    with pytest.raises(UserError, match=r"sampling rate 100 Hz differs from data.sfreq=250 Hz"):
        preprocess(raw_of(noise(), ["a", "b", "c"]), Preprocessing(["a", "b"], 250.0), "r.fif")


def test_events_from_annotations_and_stim_channel():
    raw = raw_of(noise(), ["C3", "Cz", "C4"], annotations=([2.0, 1.0, 5.0], [1, 1, 1], ["R", "L", "other"]))
    onsets, labels = find_events(raw, {"left": "L", "right": "R"}, "r.fif")
    np.testing.assert_allclose(onsets, [1.0, 2.0])
    assert labels.tolist() == [0, 1]
    stim = np.zeros((1, 1000))
    stim[0, [100, 300, 500]] = [769, 770, 769]
    raw2 = mne.io.RawArray(np.vstack([noise(), stim]), mne.create_info(["C3", "Cz", "C4", "STI"], 100.0,
                                                                        ["eeg"] * 3 + ["stim"]), verbose="error")
    onsets, labels = find_events(raw2, {"left": 769, "right": 770}, "r.fif")
    np.testing.assert_allclose(onsets, [1.0, 3.0, 5.0])
    assert labels.tolist() == [0, 1, 0]


def test_match_events_is_empty_without_matching_events():
    raw = raw_of(noise(), ["C3", "Cz", "C4"], annotations=([1.0], [1], ["blink"]))
    onsets, labels = match_events(raw, {"left": "L", "right": "R"})
    assert onsets.shape == (0,) and labels.shape == (0,)
    onsets, labels = match_events(raw, {"blink": "blink"})
    np.testing.assert_allclose(onsets, [1.0])


def test_no_events_error_lists_what_the_recording_has():
    raw = raw_of(noise(), ["C3", "Cz", "C4"], annotations=([1.0], [1], ["769"]))
    with pytest.raises(UserError, match=r"r\.fif: no events found for data.event_id .*descriptions in the recording: 769"):
        find_events(raw, {"left_hand": "left_hand"}, "r.fif")


def test_epoch_windows_baseline_and_out_of_range_events():
    data = np.tile(np.arange(100, dtype=float), (2, 1))
    x, keep = epoch(data, 10.0, np.array([1.0, 5.0, 9.5]), tmin=0.5, n_times=20, baseline=(-0.5, 0.0))
    assert keep.tolist() == [True, True, False]
    assert x.shape == (2, 2, 20)
    # window starts at sample 15 (event 10 + 0.5 s); baseline = mean of samples 5..9 = 7
    np.testing.assert_allclose(x[0, 0], np.arange(15, 35) - 7.0)
    np.testing.assert_allclose(x[1, 1], np.arange(55, 75) - 47.0)


def test_sliding_windows_and_labels_from_intervals():
    starts = sliding_windows(100, 20, 10)
    assert starts.tolist() == [0, 10, 20, 30, 40, 50, 60, 70, 80]
    y = window_labels(starts, 20, 10.0, np.array([[2.5, 5.0]]), min_overlap=0.5)
    # windows [0,2) [1,3) [2,4) [3,5) [4,6) ...: overlap fractions 0, .25, .75, 1, .5, 0...
    assert y.tolist() == [0, 0, 1, 1, 1, 0, 0, 0, 0]


def test_euclidean_alignment_whitens_mean_covariance():
    rng = np.random.default_rng(0)
    mix = rng.standard_normal((4, 4))
    x = np.einsum("cd,ndt->nct", mix, rng.standard_normal((30, 4, 200)))
    aligned, m = euclidean_alignment(x)
    np.testing.assert_allclose(reference_matrix(aligned), np.eye(4), atol=1e-5)
    np.testing.assert_allclose(m @ reference_matrix(x) @ m, np.eye(4), atol=1e-8)
