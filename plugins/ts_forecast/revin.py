"""Shared parts of the forecasting models: RevIN, patch indexing and a real DFT by fixed bases.

Everything here is plain tensor algebra (no Python loops over time, tokens or batch items) and
exports to ONNX with the legacy exporter (the DFT is a matrix product, not ``torch.fft``).
"""
from __future__ import annotations

import math

import torch
from torch import nn


class RevIN(nn.Module):
    """Reversible instance normalisation over time (Kim et al., 2022) for ``[B, L, C]`` inputs.

    ``normalize(x)`` returns ``(x_norm, (mean, std))``; ``denormalize(y, stats)`` undoes it on a
    forecast ``[B, H, C]``. With ``affine=True`` a per-channel scale and shift are learned.
    """

    def __init__(self, n_vars: int, affine: bool = True, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.affine = affine
        if affine:
            self.weight = nn.Parameter(torch.ones(n_vars))
            self.bias = nn.Parameter(torch.zeros(n_vars))

    def normalize(self, x):
        mean = x.mean(dim=1, keepdim=True).detach()
        centred = x - mean
        std = torch.sqrt(centred.pow(2).mean(dim=1, keepdim=True) + self.eps).detach()
        out = centred / std
        if self.affine:
            out = out * self.weight + self.bias
        return out, (mean, std)

    def denormalize(self, y, stats):
        """Undo ``normalize`` on ``[B, H, C]``, or on quantiles ``[B, H, C, Q]`` (each alike)."""
        mean, std = stats
        quantiles = y.dim() == 4
        if quantiles:
            mean, std = mean[..., None], std[..., None]
        if self.affine:
            weight, bias = (self.weight[:, None], self.bias[:, None]) if quantiles else (self.weight, self.bias)
            y = (y - bias) / (weight + self.eps * self.eps)
        return y * std + mean


def patch_layout(lookback: int, patch_len: int, stride: int) -> tuple[int, int]:
    """``(n_patches, offset)``: patches cover the most recent samples; the first ``offset`` are dropped."""
    if patch_len > lookback:
        raise ValueError(f"patch_len={patch_len} is longer than lookback={lookback}")
    n = (lookback - patch_len) // stride + 1
    return n, lookback - ((n - 1) * stride + patch_len)


def patch_index(lookback: int, patch_len: int, stride: int) -> torch.Tensor:
    """``[n_patches, patch_len]`` time indices of every patch (gathered in one indexing op)."""
    n, offset = patch_layout(lookback, patch_len, stride)
    return offset + torch.arange(n)[:, None] * stride + torch.arange(patch_len)[None, :]


def register_patches(module: nn.Module, lookback: int, patch_len: int, stride: int) -> int:
    """Give ``module`` the buffer ``patch_idx`` (:func:`patch_index`); returns the number of patches."""
    index = patch_index(lookback, patch_len, stride)
    module.register_buffer("patch_idx", index, persistent=False)
    return index.shape[0]


def dft_bases(length: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Forward ``cos, sin`` ``[length, F]`` and inverse ``icos, isin`` ``[F, length]`` real-DFT bases."""
    n_freq = length // 2 + 1
    t = torch.arange(length, dtype=torch.float64)[:, None]
    k = torch.arange(n_freq, dtype=torch.float64)[None, :]
    angle = 2 * math.pi * t * k / length
    cos, sin = torch.cos(angle), torch.sin(angle)
    weight = torch.full((n_freq,), 2.0, dtype=torch.float64)
    weight[0] = 1.0
    if length % 2 == 0:
        weight[-1] = 1.0
    icos = (cos * weight / length).T
    isin = (sin * weight / length).T
    return cos.float(), sin.float(), icos.float().contiguous(), isin.float().contiguous()
