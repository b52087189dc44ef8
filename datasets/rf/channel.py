"""Channel impairments for generated IQ frames: multipath fading, sample-rate and timing offset, carrier offset, AWGN.

All act on complex ``[n, length]`` tensors, vectorised over frames, with one random draw per frame:

* :func:`multipath_taps` — block (per-frame) Rayleigh fading over a few paths with fractional
  delays, turned into discrete taps by sionna's ``cir_to_time_channel`` (sinc interpolation),
  unit total power; :func:`apply_taps` convolves frames with their own taps.
* :func:`resample` — windowed-sinc interpolation at arbitrary positions: a sample-rate offset
  ``eps`` reads sample ``n`` at ``t0 + n (1 + eps)``.
* :func:`rotate` — carrier frequency offset (cycles/sample) and phase.
* :func:`awgn` — complex white Gaussian noise at an SNR relative to unit signal power.
"""
from __future__ import annotations

import math

import numpy as np
import torch


def normalize_power(x: torch.Tensor) -> torch.Tensor:
    """Scale each frame (last axis) to unit mean power ``mean |x|^2 = 1``."""
    power = x.abs().square().mean(dim=-1, keepdim=True)
    return x / power.clamp_min(1e-20).sqrt()


def multipath_taps(n: int, rng: np.random.Generator, max_delay: float = 2.5, n_paths: int = 3,
                   l_min: int = -3, l_max: int | None = None) -> tuple[torch.Tensor, int]:
    """Per-frame taps ``[n, l_max - l_min + 1]`` of a Rayleigh block-fading channel, and ``l_min``.

    Path 0 has delay 0, the others uniform delays in ``(0, max_delay]`` samples; path
    magnitudes decay with delay (``exp(-delay / max_delay)``), each path gain is complex Gaussian.
    The taps are normalised to unit energy (``sum |h|^2 = 1``), so fading changes the shape of
    a frame, not its power.
    """
    from sionna.phy.channel import cir_to_time_channel

    l_max = int(math.ceil(max_delay)) + 3 if l_max is None else l_max
    delays = np.zeros((n, n_paths))
    if n_paths > 1:
        delays[:, 1:] = np.sort(rng.uniform(0.0, max_delay, (n, n_paths - 1)), axis=1)
    magnitude = np.exp(-delays / max(max_delay, 1e-9))
    gains = magnitude * (rng.standard_normal((n, n_paths)) + 1j * rng.standard_normal((n, n_paths))) / math.sqrt(2)
    a = torch.from_numpy(gains.astype(np.complex64)).reshape(n, 1, 1, 1, 1, n_paths, 1)
    tau = torch.from_numpy(delays.astype(np.float32)).reshape(n, 1, 1, n_paths)
    h = cir_to_time_channel(1.0, a, tau, l_min, l_max, normalize=False).reshape(n, -1)
    h = h / h.abs().square().sum(dim=1, keepdim=True).clamp_min(1e-20).sqrt()
    return h.to(torch.complex64), l_min


def apply_taps(x: torch.Tensor, taps: torch.Tensor, l_min: int) -> torch.Tensor:
    """``y[n] = sum_l taps[l] x[n - l]`` per frame (lags ``l_min .. l_min + n_taps - 1``), zero beyond the frame."""
    n, length = x.shape
    n_taps = taps.shape[1]
    l_max = l_min + n_taps - 1
    pad_left, pad_right = max(l_max, 0), max(-l_min, 0)
    xp = torch.cat([x.new_zeros(n, pad_left), x, x.new_zeros(n, pad_right)], dim=1)
    y = torch.zeros_like(x)
    for i in range(n_taps):  # a handful of lags, each vectorised over frames
        lag = l_min + i
        start = pad_left - lag
        y = y + taps[:, i:i + 1] * xp[:, start:start + length]
    return y


def resample(x: torch.Tensor, positions: torch.Tensor, half_width: int = 8) -> torch.Tensor:
    """``x`` read at fractional ``positions [n, m]`` (samples) by Hann-windowed sinc interpolation.

    Positions must stay ``half_width`` samples inside the frame.
    """
    n, length = x.shape
    base = torch.floor(positions)
    frac = (positions - base).float()
    k = torch.arange(-half_width + 1, half_width + 1, dtype=torch.float32)
    u = frac[..., None] - k  # distance of each neighbour, in samples
    weights = torch.sinc(u) * 0.5 * (1 + torch.cos(math.pi * u / half_width))
    idx = (base.long()[..., None] + k.long()).clamp(0, length - 1).reshape(n, -1)
    neighbours = torch.complex(x.real.gather(1, idx), x.imag.gather(1, idx)).reshape(*positions.shape, -1)
    return (neighbours * weights).sum(-1)


def rotate(x: torch.Tensor, cfo, phase) -> torch.Tensor:
    """Multiply frames by ``exp(j (2 pi cfo n + phase))`` (``cfo`` in cycles/sample, one per frame)."""
    n = torch.arange(x.shape[-1], dtype=torch.float64)
    cfo = torch.as_tensor(cfo, dtype=torch.float64).reshape(-1, 1)
    phase = torch.as_tensor(phase, dtype=torch.float64).reshape(-1, 1)
    angle = 2 * math.pi * cfo * n + phase
    return x * torch.polar(torch.ones_like(angle), angle).to(x.dtype)


def awgn(x: torch.Tensor, snr_db, generator: torch.Generator | None = None) -> torch.Tensor:
    """``x`` (unit power per frame) plus complex Gaussian noise of variance ``10^(-snr_db / 10)`` per sample."""
    snr = torch.as_tensor(snr_db, dtype=torch.float32).reshape(-1, 1)
    std = torch.sqrt(10.0 ** (-snr / 10) / 2)
    re = torch.randn(x.shape, generator=generator)
    im = torch.randn(x.shape, generator=generator)
    return x + torch.complex(re * std, im * std).to(x.dtype)


__all__ = ["apply_taps", "awgn", "multipath_taps", "normalize_power", "resample", "rotate"]
