"""RadioML 2016.10A-like frames generated on the fly: 11 modulations x SNR -20..18 dB, 128 IQ samples each.

Conventions of RadioML 2016.10A: 8 samples per symbol, 128-sample frames stored as ``[2, 128]``
(I, Q), unit frame power, SNR from -20 to 18 dB in 2 dB steps, classes in the dataset's
alphabetical order. Each frame goes through (:mod:`.channel`): Rayleigh multipath with fractional
delays, a sample-rate offset with a random timing phase, a carrier frequency and phase
offset, then AWGN at its SNR (relative to the unit-power signal), and is scaled to unit power.

:func:`generate` is deterministic in ``seed`` and each class draws from its own stream, so a
class's frames do not depend on which other classes are generated. It also returns the
noise-free frames (``clean``), from which a training set can draw fresh noise on every access.

>>> d = generate(2, snrs=(0.0, 10.0), classes=("BPSK", "WBFM"), seed=1)     # doctest: +SKIP
>>> d["x"].shape, d["y"].tolist(), d["snr"].tolist()                        # doctest: +SKIP
((8, 2, 128), [0, 0, 0, 0, 1, 1, 1, 1], [0.0, 0.0, 10.0, 10.0, 0.0, 0.0, 10.0, 10.0])
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from . import channel as C
from . import modulation as M

RADIOML_CLASSES = ("8PSK", "AM-DSB", "AM-SSB", "BPSK", "CPFSK", "GFSK", "PAM4", "QAM16", "QAM64", "QPSK", "WBFM")
RADIOML_SNRS = tuple(float(s) for s in range(-20, 20, 2))


@dataclass(frozen=True)
class Impairments:
    """How frames are made: sampling, pulse shapes, analog sources and channel ranges (cycles/sample, samples)."""

    sps: int = 8
    length: int = 128
    rolloffs: tuple[float, ...] = (0.25, 0.35, 0.5)  # RRC roll-off, drawn per frame
    cpfsk_index: float = 0.5
    gfsk_index: float = 1.0
    gfsk_bt: float = 0.35
    am_index: tuple[float, float] = (0.5, 1.0)
    fm_deviation: tuple[float, float] = (0.03, 0.08)
    message_bandwidth: tuple[float, float] = (0.01, 0.05)
    silence: float = 0.1  # share of analog frames that are a pause in the audio
    fading: bool = True
    max_delay: float = 2.5  # samples
    max_sro: float = 0.005  # relative sample-rate offset
    max_cfo: float = 0.002  # cycles/sample: at most 92 degrees of drift over 128 samples
    margin: int = 32  # samples generated beyond the frame on each side (filters, fading, timing)


def modulate(name: str, n: int, length: int, rng: np.random.Generator, imp: Impairments) -> torch.Tensor:
    """``n`` noise-free baseband frames ``[n, length]`` of class ``name`` (no channel yet)."""
    if name in M.LINEAR:
        beta = rng.choice(np.asarray(imp.rolloffs), size=n)
        return M.linear(name, n, length, rng, sps=imp.sps, beta=beta)
    if name == "CPFSK":
        return M.cpfsk(n, length, rng, sps=imp.sps, h=imp.cpfsk_index)
    if name == "GFSK":
        return M.gfsk(n, length, rng, sps=imp.sps, h=imp.gfsk_index, bt=imp.gfsk_bt)
    if name in M.ANALOG:
        m = M.message(n, length, rng, imp.message_bandwidth, imp.silence)
        if name == "AM-DSB":
            return M.am_dsb(m, rng.uniform(*imp.am_index, size=n))
        if name == "AM-SSB":
            return M.am_ssb(m)
        return M.fm(m, rng.uniform(*imp.fm_deviation, size=n))
    raise ValueError(f"unknown modulation {name!r}; expected one of {', '.join(RADIOML_CLASSES)}")


def channel(x: torch.Tensor, rng: np.random.Generator, imp: Impairments) -> torch.Tensor:
    """Fading, sample-rate/timing offset and carrier offset of frames generated with ``imp.margin`` extra samples."""
    n = x.shape[0]
    if imp.fading:
        taps, l_min = C.multipath_taps(n, rng, imp.max_delay)
        x = C.apply_taps(x, taps, l_min)
    eps = rng.uniform(-imp.max_sro, imp.max_sro, size=(n, 1))
    t0 = imp.margin / 2 + rng.uniform(0.0, imp.sps, size=(n, 1))  # timing phase within a symbol
    positions = torch.from_numpy(t0 + np.arange(imp.length)[None] * (1.0 + eps))
    x = C.resample(x, positions)
    return C.rotate(x, rng.uniform(-imp.max_cfo, imp.max_cfo, n), rng.uniform(0, 2 * math.pi, n))


def to_iq(x: torch.Tensor) -> np.ndarray:
    """Complex ``[n, L]`` -> float32 ``[n, 2, L]`` (I, Q)."""
    return torch.stack([x.real, x.imag], dim=1).float().numpy()


def generate(n_per: int, snrs=RADIOML_SNRS, classes=RADIOML_CLASSES, seed: int = 0, imp: Impairments = Impairments(),
             chunk: int = 4096) -> dict[str, np.ndarray]:
    """``n_per`` frames per class and SNR: ``x`` float32 ``[N, 2, L]`` (unit power), ``y`` int64 class index,
    ``snr`` float32 dB, ``clean`` the unit-power frames before noise. Ordered by class, then SNR."""
    snrs = np.asarray(snrs, dtype=np.float32)
    xs, cleans, ys, ss = [], [], [], []
    span = imp.length + 2 * imp.margin + int(math.ceil(imp.max_sro * imp.length))
    for ci, name in enumerate(classes):
        index = RADIOML_CLASSES.index(name) if name in RADIOML_CLASSES else ci
        rng = np.random.default_rng([seed, index])
        snr = np.repeat(snrs, n_per)
        for start in range(0, len(snr), chunk):
            part = snr[start:start + chunk]
            clean = C.normalize_power(channel(modulate(name, len(part), span, rng, imp), rng, imp))
            noise_gen = torch.Generator().manual_seed(int(rng.integers(2 ** 62)))
            noisy = C.normalize_power(C.awgn(clean, torch.from_numpy(part), noise_gen))
            xs.append(to_iq(noisy))
            cleans.append(to_iq(clean))
            ys.append(np.full(len(part), ci, np.int64))
            ss.append(part)
    return {"x": np.concatenate(xs), "clean": np.concatenate(cleans), "y": np.concatenate(ys),
            "snr": np.concatenate(ss).astype(np.float32)}


__all__ = ["Impairments", "RADIOML_CLASSES", "RADIOML_SNRS", "channel", "generate", "modulate", "to_iq"]
