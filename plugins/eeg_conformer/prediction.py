"""Prediction I/O: what ``predict`` accepts, turned into model input, and the CSV it writes.

:func:`read_windows` takes a recording path, an ``mne.io.Raw``, an ``mne.Epochs`` or an array
``[n, C, T]`` (volts, preprocessed) and returns :class:`Windows`; :func:`model_input` scales and
aligns them as in training; :func:`to_csv` is one row per window with class probabilities.

Channels are matched by name to the training montage (``data.channels``, from the run's prepared
state): reordered as needed, extra channels ignored, a missing one is an error. A motor-imagery
recording is cut at its class events when it has any, else into consecutive windows; a seizure
recording into sliding windows ``data.stride_s`` apart.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sigplex.core.errors import UserError

from .data import mi_epochs_from_raw, seizure_windows_from_raw, windows_from_raw


@dataclass
class Windows:
    """Windows to classify: ``x [n, C, T]`` float32 volts, onsets (s) and event names (None without events)."""

    x: np.ndarray
    onsets: np.ndarray
    events: list[str] | None
    source: str


def from_raw(raw, d, kind: str, source: str) -> Windows:
    """Windows of one recording (``kind``: ``mi`` or ``seizure``)."""
    if kind == "seizure":
        x, _, onsets = seizure_windows_from_raw(raw, d, source, labelled=False)
        return Windows(x, onsets, None, source)
    from sigplex.datasets.eeg.preprocess import match_events

    onsets, labels = match_events(raw, d.event_map())
    if len(onsets):
        x, labels, onsets = mi_epochs_from_raw(raw, d, source, events=(onsets, labels))
        return Windows(x, onsets, [d.classes[k] for k in labels], source)
    x, starts = windows_from_raw(raw, d, source, d.window_s)
    return Windows(x, starts / d.sfreq, None, source)


def from_epochs(epochs, d) -> Windows:
    """Windows of ``mne.Epochs`` used as given (filtered as in training), picked and resampled to the montage."""
    from sigplex.datasets.eeg.preprocess import check_channels, check_signal

    source = "<mne.Epochs>"
    ep = epochs.copy().load_data()
    check_channels(ep, d.channels, source)
    ep.pick(list(d.channels))
    if abs(ep.info["sfreq"] - d.sfreq) > 1e-6:
        if not d.resample:
            raise UserError(f"{source}: sampling rate {ep.info['sfreq']:g} Hz differs from data.sfreq="
                            f"{d.sfreq:g} Hz; resample the epochs or set data.resample=true")
        ep.resample(d.sfreq, verbose="error")
    data = ep.get_data(copy=True)
    if data.shape[2] < d.n_times:
        raise UserError(f"{source}: epochs have {data.shape[2]} samples; the model needs {d.n_times} "
                        f"(data.window_s={d.window_s} at {d.sfreq:g} Hz)")
    start = int(np.argmin(np.abs(ep.times - getattr(d, "tmin", 0.0))))
    if data.shape[2] - start < d.n_times:
        start = 0
    x = data[:, :, start:start + d.n_times]
    check_signal(x.transpose(1, 0, 2).reshape(len(d.channels), -1), d.channels, source)
    names = {v: k for k, v in ep.event_id.items()}
    events = [names.get(c, str(c)) for c in ep.events[:, 2]]
    return Windows(x.astype(np.float32), ep.events[:, 0] / d.sfreq + ep.times[start], events, source)


def read_windows(inputs, d, kind: str) -> Windows:
    """Windows of ``inputs`` (a path, Raw, Epochs or array) under data section ``d`` with the montage set."""
    import mne

    from sigplex.datasets.eeg import read_raw

    if isinstance(inputs, (str, Path)):
        windows = from_raw(read_raw(inputs), d, kind, str(inputs))
    elif isinstance(inputs, mne.io.BaseRaw):
        source = str(inputs.filenames[0]) if inputs.filenames and inputs.filenames[0] else "<mne.io.Raw>"
        windows = from_raw(inputs.copy().load_data(), d, kind, source)
    elif isinstance(inputs, mne.BaseEpochs):
        windows = from_epochs(inputs, d)
    else:
        arr = np.asarray(inputs, dtype=np.float32)
        arr = arr[None] if arr.ndim == 2 else arr
        if arr.ndim != 3 or arr.shape[1:] != (len(d.channels), d.n_times):
            raise UserError(f"input array has shape {tuple(np.shape(inputs))}; expected [n, {len(d.channels)}, "
                            f"{d.n_times}] (channels {', '.join(d.channels[:4])}... preprocessed, in volts)")
        windows = Windows(arr, np.arange(len(arr)) * d.window_s, None, "<array>")
    if not len(windows.x):
        raise UserError(f"{windows.source}: holds no window to classify")
    return windows


def model_input(windows: Windows, d):
    """The windows as the model saw training data: scaled by ``data.scale``, Euclidean-aligned if configured."""
    import torch

    from sigplex.datasets.eeg.alignment import euclidean_alignment

    x = windows.x * np.float32(d.scale)
    if d.euclidean_alignment:
        x, _ = euclidean_alignment(x)
    return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))


def to_csv(prediction: dict) -> str:
    """``window, onset_s, [event,] prob_<class>..., predicted`` — one line per window (the core's class table)."""
    from sigplex.core.outputs import class_probability_csv

    columns = {"window": range(len(prediction["onset_s"])), "onset_s": [f"{t:.4f}" for t in prediction["onset_s"]]}
    if prediction["event"] is not None:
        columns["event"] = [str(e) for e in prediction["event"]]
    return class_probability_csv(prediction["probabilities"], prediction["classes"], columns,
                                 predicted=prediction["predicted"])


__all__ = ["Windows", "from_epochs", "from_raw", "model_input", "read_windows", "to_csv"]


def write_samples(kind: str, d, folder: Path) -> list[Path]:
    """Valid inputs for self-checks: one short simulated recording of the task's kind, as ``.fif`` and ``.fif.gz``."""
    import mne

    from sigplex.datasets.eeg.simulate import simulate_motor_imagery, simulate_seizures

    folder = Path(folder)
    root = (simulate_motor_imagery(folder / "sim", n_subjects=1, n_trials=6, seed=99) if kind == "mi" else
            simulate_seizures(folder / "sim", n_subjects=1, minutes=1.0, sfreq=d.sfreq, seed=99))
    fif = sorted(root.glob("*.fif"))[0]
    packed = folder / "recording_raw.fif.gz"
    mne.io.read_raw(fif, preload=True, verbose="error").save(packed, fmt="single", verbose="error", overwrite=True)
    return [fif, packed]
