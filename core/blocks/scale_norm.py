"""Scale normalisation: one learnable gain on the RMS-normalised features (MossFormer's norm).

>>> import torch
>>> ScaleNorm(4)(torch.full((2, 4), 3.0))
tensor([[1., 1., 1., 1.],
        [1., 1., 1., 1.]], grad_fn=<MulBackward0>)
"""
from __future__ import annotations

import torch
from torch import nn


class ScaleNorm(nn.Module):
    """``g · x / max(‖x‖₂ / sqrt(dim), eps)`` over the last axis, with one learnable scalar ``g``."""

    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__()
        self.scale = dim ** -0.5
        self.eps = eps
        self.g = nn.Parameter(torch.ones(1))

    def forward(self, x):
        norm = x.norm(dim=-1, keepdim=True) * self.scale
        return x / norm.clamp(min=self.eps) * self.g


__all__ = ["ScaleNorm"]
