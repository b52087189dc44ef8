"""Signal-to-distortion ratios in dB (SI-SDR, plain SDR) and their pairwise negative-loss matrices.

>>> import torch
>>> ref = torch.tensor([1.0, -1.0, 1.0, -1.0])
>>> round(float(si_sdr(ref + 0.1 * torch.tensor([1.0, 1.0, -1.0, -1.0]), ref)), 3)
20.0
"""
from __future__ import annotations

import torch

EPS = 1e-8


def si_sdr(est: torch.Tensor, ref: torch.Tensor, zero_mean: bool = True, eps: float = EPS) -> torch.Tensor:
    """Scale-invariant SDR in dB over the last axis: ``10 log10(|a s|^2 / |a s - ŝ|^2)``, ``a = <ŝ,s>/|s|^2``."""
    if zero_mean:
        est = est - est.mean(-1, keepdim=True)
        ref = ref - ref.mean(-1, keepdim=True)
    scale = (est * ref).sum(-1, keepdim=True) / (ref.square().sum(-1, keepdim=True) + eps)
    target = scale * ref
    noise = est - target
    return 10 * torch.log10((target.square().sum(-1) + eps) / (noise.square().sum(-1) + eps))


def sdr(est: torch.Tensor, ref: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    """Plain SDR (signal-to-distortion ratio, no scale or filter allowed) in dB over the last axis."""
    return 10 * torch.log10((ref.square().sum(-1) + eps) / ((ref - est).square().sum(-1) + eps))


def pairwise_neg_sisdr(est: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """``[B, S, T]`` estimates and references -> ``[B, S_est, S_ref]`` of negative SI-SDR."""
    return -si_sdr(est.unsqueeze(2), ref.unsqueeze(1))


def pairwise_neg_sdr(est: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """``[B, S, T]`` -> ``[B, S_est, S_ref]`` of negative plain SDR."""
    return -sdr(est.unsqueeze(2), ref.unsqueeze(1))


__all__ = ["EPS", "pairwise_neg_sdr", "pairwise_neg_sisdr", "sdr", "si_sdr"]
