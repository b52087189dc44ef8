"""Prediction I/O: IQ frames from ``.npy``, HDF5 or RadioML pickles (or arrays), and the per-frame CSV.

A ``.npy`` holds ``[N, 2, L]`` or ``[N, L, 2]`` float frames (one frame ``[2, L]`` also works); an
``.h5``/``.hdf5`` file needs only ``X`` (RadioML 2018 layout) and a RadioML 2016 pickle is read
through the restricted unpickler. Labels and SNRs in the file, if any, go into the CSV beside the
prediction. Frames are scaled to unit power as in training (``data.normalize``).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from sigplex.core.arrays import load_npy
from sigplex.core.errors import UserError

from .data import unit_power

# a SigMF recording counts once, by its .sigmf-meta (predict also takes the .sigmf-data named directly)
SUFFIXES = (".npy", ".h5", ".hdf5", ".pkl", ".pickle", ".dat", ".sigmf-meta", ".cfile", ".cf32", ".fc32", ".cs16",
            ".sc16", ".cu8")


def read_inputs(inputs, d, n_samples: int | None) -> dict:
    """``{"x": [N, 2, L] float32, "snr": [N] or None, "label": list or None, "source": str}``, plus
    ``start_sample`` (and ``sample_rate``) for a continuous capture cut into frames."""
    from sigplex.datasets.rf.capture import CAPTURE_SUFFIXES, capture_frames
    from sigplex.datasets.rf.radioml import HDF5_SUFFIXES, as_channels_first, read_radioml2016, read_radioml2018

    snr = label = None
    extra = {}
    if isinstance(inputs, (str, Path)):
        path = Path(inputs)
        source, suffix = str(path), path.suffix.lower()
        if not path.is_file():
            raise UserError(f"{path}: no such file")
        if path.name.lower().endswith(CAPTURE_SUFFIXES):  # a continuous capture: consecutive frames
            length = n_samples or d.n_samples
            x, info = capture_frames(path, length, d.max_frames)
            extra = {"start_sample": np.arange(len(x)) * length, "sample_rate": info["sample_rate"]}
        elif suffix == ".npy":
            arr = load_npy(path)
            x = as_channels_first(arr[None] if arr.ndim == 2 else arr, str(path))
        elif suffix in HDF5_SUFFIXES:
            f = read_radioml2018(path, labels=False)
            x = f.x
        elif suffix in SUFFIXES:
            f = read_radioml2016(path)
            x, snr, label = f.x, f.snr, [f.classes[k] for k in f.y]
        else:
            raise UserError(f"{path}: expected IQ frames in one of {', '.join(SUFFIXES)}")
    else:
        source = "<array>"
        arr = np.asarray(inputs.detach().cpu() if hasattr(inputs, "detach") else inputs)
        x = as_channels_first(arr[None] if arr.ndim == 2 else arr, "input")
    if len(x) == 0:
        raise UserError(f"{source}: holds no frames")
    if n_samples is not None and x.shape[2] != n_samples:
        raise UserError(f"{source}: frames have {x.shape[2]} samples; this model takes {n_samples}")
    if not np.isfinite(x).all():
        raise UserError(f"{source}: NaN or infinite values in the IQ frames")
    return {"x": unit_power(x) if d.normalize else x, "snr": snr, "label": label, "source": source, **extra}


def write_samples(classes, n_samples: int, folder: Path) -> list[Path]:
    """Valid inputs for self-checks: generated frames of a few classes at 10 dB as ``frames.npy`` ``[N, 2, L]``,
    as a RadioML 2018 style ``frames.h5`` (``X`` ``[N, L, 2]``) and as a raw capture ``capture.cf32`` (any
    bytes of a raw capture are samples)."""
    import h5py

    from sigplex.datasets.rf.generator import RADIOML_CLASSES, Impairments, generate

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    known = tuple(c for c in classes if c in RADIOML_CLASSES)[:4] or RADIOML_CLASSES[:4]
    x = generate(2, [10], known, 3, Impairments(length=n_samples))["x"].astype(np.float32)
    np.save(folder / "frames.npy", x)
    with h5py.File(folder / "frames.h5", "w") as fh:
        fh["X"] = x.transpose(0, 2, 1)
    (x[:, 0] + 1j * x[:, 1]).astype(np.complex64).reshape(-1).tofile(folder / "capture.cf32")
    return [folder / "frames.npy", folder / "frames.h5", folder / "capture.cf32"]


def to_csv(prediction: dict) -> str:
    """One row per frame: ``frame[, start_sample, start_s][, snr_db, label], prob_<class>..., predicted, confidence``
    (the core's class table)."""
    from sigplex.core.outputs import class_probability_csv

    probs = prediction["probabilities"]
    columns = {"frame": range(len(probs))}
    start, rate = prediction.get("start_sample"), prediction.get("sample_rate")
    if start is not None:
        columns["start_sample"] = [int(s) for s in start]
        if rate:
            columns["start_s"] = [f"{s / rate:.6f}" for s in start]
    if prediction.get("snr") is not None:
        columns["snr_db"] = [f"{s:g}" for s in prediction["snr"]]
    if prediction.get("label") is not None:
        columns["label"] = list(prediction["label"])
    return class_probability_csv(probs, prediction["classes"], columns, confidence=True, digits=4)


__all__ = ["SUFFIXES", "read_inputs", "to_csv", "write_samples"]
