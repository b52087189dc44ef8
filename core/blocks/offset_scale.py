"""Several per-channel affine copies of one tensor (FLASH/MossFormer's queries and keys from a shared ``qk``).

>>> import torch
>>> OffsetScale(8, heads=4)(torch.randn(2, 10, 8)).shape
torch.Size([4, 2, 10, 8])
"""
from __future__ import annotations

import torch
from torch import nn


class OffsetScale(nn.Module):
    """``x · γ_h + β_h`` for ``h < heads`` -> ``[heads, ..., dim]`` (γ ~ N(0, 0.02²), β = 0 at init)."""

    def __init__(self, dim: int, heads: int = 4):
        super().__init__()
        self.gamma = nn.Parameter(torch.empty(heads, dim).normal_(std=0.02))
        self.beta = nn.Parameter(torch.zeros(heads, dim))

    def forward(self, x):
        shape = (self.gamma.shape[0],) + (1,) * (x.dim() - 1) + (x.shape[-1],)
        return x.unsqueeze(0) * self.gamma.view(shape) + self.beta.view(shape)


__all__ = ["OffsetScale"]
