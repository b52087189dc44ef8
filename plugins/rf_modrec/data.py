"""The classify task's data: generated splits or a RadioML file, as map-style datasets of IQ frames.

A :class:`FrameSet` holds ``x`` ``[N, 2, L]``, labels ``y`` and ``snr`` (dB) as tensors, so evaluation
runs on whole tensors. With ``clean`` frames and ``fresh_noise`` every access draws a new
carrier phase and new AWGN at the frame's SNR (seeded per item by the core's sampler), so a
fixed set of generated signals never repeats its noise.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from sigplex.core.errors import UserError
from sigplex.core.splits import seeded_split


def unit_power(x: np.ndarray) -> np.ndarray:
    """Scale each ``[2, L]`` frame to unit mean power ``mean(I^2 + Q^2) = 1`` (all-zero frames stay zero)."""
    power = np.square(x).sum(1, keepdims=True).mean(2, keepdims=True)
    return (x / np.sqrt(np.where(power > 0, power, 1.0))).astype(np.float32)


class FrameSet(torch.utils.data.Dataset):
    """Labelled IQ frames; items are ``{"x": [2, L], "y": class, "snr": dB}``."""

    def __init__(self, x, y, snr, clean=None, fresh_noise: bool = False):
        self.x = torch.as_tensor(np.asarray(x, np.float32))
        self.y = torch.as_tensor(np.asarray(y, np.int64))
        self.snr = torch.as_tensor(np.asarray(snr, np.float32))
        self.clean = torch.as_tensor(np.asarray(clean, np.float32)) if clean is not None and fresh_noise else None

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        if self.clean is None:
            return {"x": self.x[i], "y": self.y[i], "snr": self.snr[i]}
        c = torch.complex(self.clean[i, 0], self.clean[i, 1]) * torch.polar(torch.tensor(1.0),
                                                                             torch.rand(()) * 2 * math.pi)
        std = math.sqrt(10.0 ** (-float(self.snr[i]) / 10) / 2)
        x = c + torch.complex(torch.randn(c.shape), torch.randn(c.shape)) * std
        x = x / x.abs().square().mean().sqrt().clamp_min(1e-12)
        return {"x": torch.stack([x.real, x.imag]), "y": self.y[i], "snr": self.snr[i]}


def impairments(d):
    """The generator's :class:`Impairments` from the data section."""
    from sigplex.datasets.rf.generator import Impairments

    c = d.channel
    return Impairments(length=d.n_samples, fading=c.fading, max_delay=c.max_delay, max_sro=c.max_sro,
                       max_cfo=c.max_cfo, silence=c.silence)


def generated(d, per: int, seed: int, fresh_noise: bool = False) -> FrameSet:
    """``per`` generated frames per class and SNR of ``d.classes`` (the 11 RadioML 2016.10A classes by default)."""
    from sigplex.datasets.rf.generator import RADIOML_CLASSES, generate

    classes = tuple(d.classes or RADIOML_CLASSES)
    unknown = [c for c in classes if c not in RADIOML_CLASSES]
    if unknown:
        raise UserError(f"data.classes: {unknown} cannot be generated; expected some of {list(RADIOML_CLASSES)}")
    g = generate(per, d.snrs, classes, seed, impairments(d))
    return FrameSet(g["x"], g["y"], g["snr"], g["clean"], fresh_noise)


def read_file(path: Path, d, classes=None):
    """A RadioML file as :class:`~sigplex.datasets.rf.radioml.IQFrames`, frames scaled as ``d.normalize`` says."""
    from sigplex.datasets.rf.radioml import read_frames

    frames = read_frames(path, max_frames=d.max_frames, classes=tuple(classes) if classes else None)
    if frames.x.shape[0] == 0:
        raise UserError(f"{path}: holds no frames")
    if d.normalize:
        frames.x = unit_power(frames.x)
    return frames


def build_splits(d, data: Path | None):
    """``(classes, n_samples, train, val, test)`` of the generated frames or of a RadioML file."""
    from sigplex.datasets.rf.generator import RADIOML_CLASSES

    if data is None:
        classes = list(d.classes or RADIOML_CLASSES)
        return (classes, d.n_samples, generated(d, d.train_per, d.seed, d.fresh_noise),
                generated(d, d.val_per, d.seed + 10_000), generated(d, d.test_per, d.test_seed))
    f = read_file(Path(data), d, d.classes)
    parts = seeded_split(len(f), d.split, seed=d.seed, what=f"{data}: frames")
    sets = [FrameSet(f.x[i], f.y[i], f.snr[i]) if len(i) else None for i in parts]
    return list(f.classes), f.x.shape[2], *sets


__all__ = ["FrameSet", "build_splits", "generated", "impairments", "read_file", "unit_power"]
