"""Depthwise long convolution through the real FFT (FlashFFTConv's algorithm, with ``torch.fft`` on the CPU).

``fft_conv(x, k)`` convolves every channel of ``x [B, C, L]`` with its own kernel ``k [C, K]``:

- causal (default): ``y[t] = Σ_j k[j] x[t - j]``, i.e.
  ``F.conv1d(F.pad(x, (K - 1, 0)), k.flip(-1)[:, None], groups=C)``;
- non-causal (centred): ``F.conv1d(x, k.flip(-1)[:, None], padding="same", groups=C)``, the kernel's
  centre tap ``k[K // 2]`` on the output's own time step.

The FFT path costs ``O(C·L log L)`` whatever ``K`` is, against ``O(C·L·K)`` for the direct one; short
kernels go through ``F.conv1d`` (``DIRECT_MAX_KERNEL``). Kernels longer than the input are fine (an S4D
kernel is as long as the sequence). During an ONNX export the direct path is taken, since the exporter
has no real FFT: the graph holds one depthwise ``Conv`` of the full kernel length.

>>> import torch
>>> x, k = torch.randn(2, 3, 100), torch.randn(3, 300)
>>> fft_conv(x, k).shape
torch.Size([2, 3, 100])
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

# Kernel lengths up to this go through F.conv1d. Measured by benchmarks/long_sequence_mixers.py (section
# fft_conv_vs_conv1d: C 64, forward+backward, 1 thread, 2026-12-07): FFT / conv1d time at L 4k and 16k is
# 1.6 / 2.5 at K 8, 1.25 / 1.86 at K 16, 0.94 / 1.11 at K 32, 0.50 / 0.64 at K 64, 0.21 / 0.12 at K 256.
DIRECT_MAX_KERNEL = 32


def fft_size(n: int) -> int:
    """The smallest ``m >= n`` whose only prime factors are 2, 3 and 5 (sizes pocketfft and MKL do fastest)."""
    best = 1 << max(n - 1, 0).bit_length()
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            m = p35
            while m < n:
                m *= 2
            best = min(best, m)
            p35 *= 3
        p5 *= 5
    return best


def _direct(x: torch.Tensor, k: torch.Tensor, causal: bool) -> torch.Tensor:
    weight = k.flip(-1)[:, None].to(x.dtype)
    if causal:
        return F.conv1d(F.pad(x, (k.shape[-1] - 1, 0)), weight, groups=x.shape[1])
    return F.conv1d(x, weight, padding="same", groups=x.shape[1])


def fft_conv(x: torch.Tensor, k: torch.Tensor, causal: bool = True, direct: bool | None = None) -> torch.Tensor:
    """Depthwise convolution of ``x [B, C, L]`` with ``k [C, K]`` (see the module docstring for the two modes).

    ``direct``: force the ``F.conv1d`` path (True) or the FFT path (False); by default kernels up to
    ``DIRECT_MAX_KERNEL`` taps, and ONNX exports, take the direct one.
    """
    if x.dim() != 3 or k.dim() != 2 or k.shape[0] != x.shape[1]:
        raise ValueError(f"fft_conv: expected x [B, C, L] and k [C, K] with the same C, got x {tuple(x.shape)} "
                         f"and k {tuple(k.shape)}")
    length, taps = int(x.shape[-1]), int(k.shape[-1])
    if causal and taps > length:
        k, taps = k[:, :length], length  # taps beyond the input's length never reach an output
    if direct is None:
        direct = taps <= DIRECT_MAX_KERNEL or torch.onnx.is_in_onnx_export()
    if direct:
        return _direct(x, k, causal)
    n = fft_size(length + taps - 1)  # the full linear convolution fits: no circular wrap-around
    spectrum = torch.fft.rfft(x, n=n) * torch.fft.rfft(k.to(x.dtype), n=n)
    full = torch.fft.irfft(spectrum, n=n)
    start = 0 if causal else taps // 2
    return full[..., start:start + length]


__all__ = ["DIRECT_MAX_KERNEL", "fft_conv", "fft_size"]
