"""Baseband modulators of the RadioML 2016.10A classes, before any channel: complex ``[n, length]`` frames.

The linear classes (BPSK, QPSK, 8PSK, PAM4, QAM16, QAM64) use sionna's mapping (``Constellation``,
``Mapper``), ``Upsampling`` and ``RootRaisedCosineFilter``. sionna has no analog or FSK modulator,
so those are written here from their definitions, vectorised over frames:

* **AM-DSB** — double-sideband AM with carrier: ``x = 1 + mu * m(t)`` (real baseband, envelope ``1 + mu m``).
* **AM-SSB** — upper-sideband suppressed carrier: ``x = m + j H{m}`` (the analytic signal, one-sided spectrum).
* **WBFM** — ``x = exp(j 2 pi sum_k f_dev m[k])``: constant envelope, instantaneous frequency ``f_dev m[n]``.
* **CPFSK** — binary continuous-phase FSK with modulation index ``h``: frequency ``+-h / (2 sps)``
  cycles/sample held over each symbol, phase integrated (continuous).
* **GFSK** — CPFSK whose NRZ frequency pulse first goes through a Gaussian filter of bandwidth-time product ``BT``.

``m(t)`` is a band-limited random message (an audio stand-in, see :func:`message`). Frequencies are in
cycles per sample. Every function takes a ``numpy.random.Generator`` and is deterministic given it.
sionna is imported lazily (inside :func:`linear`).
"""
from __future__ import annotations

import math

import numpy as np
import torch

# (sionna constellation type, bits per symbol); 8PSK is a custom constellation
LINEAR = {"BPSK": ("pam", 1), "QPSK": ("qam", 2), "8PSK": ("custom", 3), "PAM4": ("pam", 2), "QAM16": ("qam", 4),
          "QAM64": ("qam", 6)}
ANALOG = ("AM-DSB", "AM-SSB", "WBFM")
FSK = ("CPFSK", "GFSK")


def psk_points(m: int) -> torch.Tensor:
    """``m`` unit-magnitude points ``exp(j 2 pi k / m)`` (complex64)."""
    k = torch.arange(m, dtype=torch.float64)
    return torch.polar(torch.ones(m, dtype=torch.float64), 2 * math.pi * k / m).to(torch.complex64)


def constellation(name: str):
    """The sionna ``Constellation`` of a linear class (unit average power)."""
    from sionna.phy.mapping import Constellation

    kind, bits = LINEAR[name]
    if kind == "custom":
        return Constellation("custom", bits, points=psk_points(2 ** bits), normalize=True)
    return Constellation(kind, bits, normalize=True)


def linear(name: str, n: int, length: int, rng: np.random.Generator, sps: int = 8, beta=0.35, span: int = 8,
           return_symbols: bool = False):
    """``n`` frames of a linear modulation: random bits -> sionna Mapper -> upsample by ``sps`` -> RRC(``beta``).

    ``beta`` is one roll-off or one per frame (frames are filtered in groups of equal roll-off).
    Symbol ``k`` of the returned frame peaks at sample ``k * sps`` (the filter transient is cut off).
    With ``return_symbols`` also returns the symbols ``[n, ceil(length / sps) + span]`` whose first
    ``span // 2`` precede the frame.
    """
    from sionna.phy.mapping import Mapper
    from sionna.phy.signal import RootRaisedCosineFilter, Upsampling

    c = constellation(name)
    bits_per = LINEAR[name][1]
    n_sym = -(-length // sps) + span
    bits = torch.from_numpy(rng.integers(0, 2, (n, n_sym * bits_per)).astype(np.float32))
    symbols = Mapper(constellation=c)(bits)
    up = Upsampling(sps)(symbols)
    betas = np.broadcast_to(np.asarray(beta, dtype=np.float64), (n,))
    out = torch.empty(n, up.shape[-1], dtype=torch.complex64)
    for b in np.unique(betas):
        rows = torch.from_numpy(np.flatnonzero(betas == b))
        out[rows] = RootRaisedCosineFilter(span, sps, float(b))(up[rows], padding="same").to(torch.complex64)
    start = (span // 2) * sps
    frames = out[:, start:start + length]
    return (frames, symbols) if return_symbols else frames


def message(n: int, length: int, rng: np.random.Generator, bandwidth=(0.01, 0.05), silence: float = 0.0) -> torch.Tensor:
    """Band-limited random messages ``[n, length]`` (float32, zero mean, peak 1): an audio stand-in.

    White noise low-passed in the frequency domain (periodic over the frame) at a cutoff drawn
    per frame from ``bandwidth`` (cycles/sample). A fraction ``silence`` of frames is a pause
    (amplitude 0.02), as speech sources have.
    """
    w = torch.from_numpy(rng.standard_normal((n, length)))
    f = torch.fft.rfftfreq(length, dtype=torch.float64)
    fc = torch.from_numpy(rng.uniform(*bandwidth, size=(n, 1)))
    shape = 1.0 / torch.sqrt(1.0 + (f[None] / fc) ** 8)  # 4th-order Butterworth-like magnitude
    shape[:, 0] = 0.0  # no DC: audio has none
    m = torch.fft.irfft(torch.fft.rfft(w) * shape, n=length)
    m = m / m.abs().amax(dim=1, keepdim=True).clamp_min(1e-12)
    quiet = torch.from_numpy(rng.random(n) < silence)
    m[quiet] *= 0.02
    return m.float()


def am_dsb(m: torch.Tensor, index) -> torch.Tensor:
    """Double-sideband AM with carrier: ``1 + index * m`` (``index`` per frame, <= 1 keeps the envelope >= 0)."""
    mu = torch.as_tensor(index, dtype=m.dtype).reshape(-1, 1)
    return torch.complex(1.0 + mu * m, torch.zeros_like(m))


def analytic(m: torch.Tensor) -> torch.Tensor:
    """``m + j H{m}`` over the last axis via the FFT (exact for frame-periodic ``m``): the upper sideband."""
    length = m.shape[-1]
    h = torch.zeros(length, dtype=torch.float32)
    h[0] = 1.0
    h[1:(length + 1) // 2] = 2.0
    if length % 2 == 0:
        h[length // 2] = 1.0
    return torch.fft.ifft(torch.fft.fft(m.float()) * h).to(torch.complex64)


def am_ssb(m: torch.Tensor) -> torch.Tensor:
    """Upper-sideband AM, suppressed carrier: the analytic signal of the message."""
    return analytic(m)


def integrate_frequency(freq: torch.Tensor) -> torch.Tensor:
    """``exp(j 2 pi cumsum(freq))``: constant-envelope signal whose phase step at sample n is ``2 pi freq[n]``."""
    phase = 2 * math.pi * torch.cumsum(freq.double(), dim=-1)
    return torch.polar(torch.ones_like(phase), phase).to(torch.complex64)


def fm(m: torch.Tensor, deviation) -> torch.Tensor:
    """Frequency modulation: instantaneous frequency ``deviation * m[n]`` cycles/sample (``deviation`` per frame)."""
    dev = torch.as_tensor(deviation, dtype=torch.float64).reshape(-1, 1)
    return integrate_frequency(dev * m.double())


def nrz(symbols: torch.Tensor, sps: int) -> torch.Tensor:
    """Each symbol held for ``sps`` samples."""
    return symbols.repeat_interleave(sps, dim=-1)


def cpfsk(n: int, length: int, rng: np.random.Generator, sps: int = 8, h: float = 0.5, return_symbols: bool = False):
    """Binary CPFSK: symbol ``a = +-1`` gives frequency ``a h / (2 sps)`` cycles/sample for ``sps`` samples."""
    symbols = torch.from_numpy(rng.integers(0, 2, (n, -(-length // sps))) * 2.0 - 1.0)
    x = integrate_frequency(nrz(symbols, sps)[:, :length] * h / (2 * sps))
    return (x, symbols) if return_symbols else x


def gaussian_taps(bt: float, sps: int, span: int = 4) -> torch.Tensor:
    """Gaussian pulse-shaping filter with bandwidth-time product ``bt`` over ``span`` symbols (sum 1, float64).

    ``g(t) ~ exp(-t^2 / (2 sigma^2))`` with ``sigma = sqrt(ln 2) / (2 pi bt)`` symbol periods, so its
    magnitude response falls by 3 dB at ``bt`` / symbol period.
    """
    t = torch.arange(-span * sps // 2, span * sps // 2 + 1, dtype=torch.float64) / sps
    sigma = math.sqrt(math.log(2.0)) / (2 * math.pi * bt)
    g = torch.exp(-(t ** 2) / (2 * sigma ** 2))
    return g / g.sum()


def gfsk(n: int, length: int, rng: np.random.Generator, sps: int = 8, h: float = 1.0, bt: float = 0.35,
         span: int = 4, return_frequency: bool = False):
    """Binary GFSK: the NRZ frequency pulse ``+-h / (2 sps)`` filtered by :func:`gaussian_taps` (``bt``), then integrated."""
    n_sym = -(-length // sps) + span
    symbols = torch.from_numpy(rng.integers(0, 2, (n, n_sym)) * 2.0 - 1.0)
    g = gaussian_taps(bt, sps, span)
    pulse = torch.nn.functional.conv1d(nrz(symbols, sps)[:, None], g.flip(0)[None, None])[:, 0]  # 'valid'
    freq = pulse[:, :length] * h / (2 * sps)
    x = integrate_frequency(freq)
    return (x, freq) if return_frequency else x


__all__ = ["ANALOG", "FSK", "LINEAR", "am_dsb", "am_ssb", "analytic", "constellation", "cpfsk", "fm", "gaussian_taps",
           "gfsk", "integrate_frequency", "linear", "message", "nrz", "psk_points"]
