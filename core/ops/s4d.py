"""Diagonal state-space layer S4D (Gu et al., 2022): a ZOH-discretised diagonal SSM applied as a long convolution.

Per channel ``h`` with ``N`` complex modes (their conjugates implied, hence the ``2·Re``)::

    A = -exp(log_a_real) + i·a_imag      Δ = exp(log_dt)
    Ā = exp(Δ A)                         B̄ = (Ā - 1) / A        (ZOH, B = 1: only the product B·C matters)
    x_t = Ā x_{t-1} + B̄ u_t              y_t = 2·Re(Σ_n C_n x_t[n]) + D u_t

so ``y = K * u + D u`` with the kernel ``K_l = 2·Re(Σ_n C_n B̄_n Ā_n^l)``. :func:`s4d_kernel` builds ``K``
(all in real arithmetic, so it exports to ONNX; ``Ā^l`` as ``Ā^(iM) · Ā^j`` with ``M ≈ √L``: two batched
matmuls, memory ``O(H·N·√L + H·L)`` rather than ``O(H·N·L)``); :func:`s4d` applies it with
:func:`~sigplex.core.ops.fft_conv.fft_conv`. Shapes: ``u [B, H, L]``, ``log_dt [H]``,
``log_a_real, a_imag [H, N]``, ``c [H, N, 2]`` (real and imaginary parts), ``d [H]``.

>>> import torch
>>> h, n = 4, 8
>>> log_dt, log_a_real, a_imag = torch.full((h,), -3.0), torch.zeros(h, n), torch.rand(h, n)
>>> s4d(torch.randn(2, h, 100), log_dt, log_a_real, a_imag, torch.randn(h, n, 2)).shape
torch.Size([2, 4, 100])
"""
from __future__ import annotations

import math

import torch

from .fft_conv import fft_conv


def s4d_kernel(log_dt: torch.Tensor, log_a_real: torch.Tensor, a_imag: torch.Tensor, c: torch.Tensor,
               length: int) -> torch.Tensor:
    """The S4D convolution kernel ``[H, length]`` (see the module docstring)."""
    length = int(length)  # a plain int even under an exporter's trace (the kernel is built for a fixed length)
    dt = torch.exp(log_dt)[:, None]
    a_re, a_im = -torch.exp(log_a_real), a_imag
    dta_re, dta_im = dt * a_re, dt * a_im  # Δ A, [H, N]
    # B̄ = (exp(ΔA) - 1) / A, folded into C: C' = C · B̄
    mag = torch.exp(dta_re)
    num_re, num_im = mag * torch.cos(dta_im) - 1.0, mag * torch.sin(dta_im)
    norm = a_re * a_re + a_im * a_im
    bbar_re, bbar_im = (num_re * a_re + num_im * a_im) / norm, (num_im * a_re - num_re * a_im) / norm
    c_re, c_im = c[..., 0], c[..., 1]
    cb_re, cb_im = c_re * bbar_re - c_im * bbar_im, c_re * bbar_im + c_im * bbar_re
    m = max(1, math.isqrt(max(length - 1, 0)) + 1)  # l = i·m + j, j < m
    rows = -(-length // m)
    j = torch.arange(m, dtype=dt.dtype, device=dt.device)
    i = torch.arange(rows, dtype=dt.dtype, device=dt.device) * m

    def powers(steps):  # Ā^steps as (re, im), [H, N, len(steps)]
        log_scale = dta_re[..., None] * steps
        # |Ā|^steps below e^-30 count as 0: products of two such factors never reach float32's denormals,
        # which x86 computes 10-100x slower (the kernel's terms there are below 1e-26 of its scale anyway)
        scale = torch.exp(log_scale.clamp_min(-30.0)).masked_fill(log_scale < -30.0, 0.0)
        angle = dta_im[..., None] * steps
        return scale * torch.cos(angle), scale * torch.sin(angle)

    left_re, left_im = powers(i)  # Ā^(i·m), [H, N, rows]
    left_re, left_im = (cb_re[..., None] * left_re - cb_im[..., None] * left_im,
                        cb_re[..., None] * left_im + cb_im[..., None] * left_re)  # C' Ā^(i·m)
    right_re, right_im = powers(j)  # Ā^j, [H, N, m]
    kernel = left_re.transpose(1, 2) @ right_re - left_im.transpose(1, 2) @ right_im  # [H, rows, m]
    return 2.0 * kernel.reshape(kernel.shape[0], rows * m)[:, :length]


def s4d(u: torch.Tensor, log_dt: torch.Tensor, log_a_real: torch.Tensor, a_imag: torch.Tensor, c: torch.Tensor,
        d: torch.Tensor | None = None) -> torch.Tensor:
    """S4D over ``u [B, H, L]``: ``fft_conv(u, s4d_kernel(...))`` ``+ d·u`` -> ``[B, H, L]`` (causal)."""
    if u.dim() != 3 or log_a_real.shape != a_imag.shape or c.shape != (*a_imag.shape, 2) \
            or log_dt.shape != (u.shape[1],) or a_imag.shape[0] != u.shape[1]:
        raise ValueError(f"s4d: expected u [B, H, L], log_dt [H], log_a_real and a_imag [H, N], c [H, N, 2]; got u "
                         f"{tuple(u.shape)}, log_dt {tuple(log_dt.shape)}, log_a_real {tuple(log_a_real.shape)}, "
                         f"a_imag {tuple(a_imag.shape)}, c {tuple(c.shape)}")
    y = fft_conv(u, s4d_kernel(log_dt, log_a_real, a_imag, c, u.shape[-1]).to(u.dtype))
    return y if d is None else y + u * d[:, None]


__all__ = ["s4d", "s4d_kernel"]
