"""S4D block: a residual layer around the diagonal state-space op ``sigplex.core.ops.s4d``.

``x + GLU(out_proj(GELU(s4d(in_proj(LayerNorm(x))))))`` on ``[B, T, dim]``; ``dim`` independent SSM
channels of ``state_dim`` complex modes each, S4D-Lin initialisation (``A_n = -1/2 + iπn``) and
``Δ`` log-uniform in ``[dt_min, dt_max]``. Causal: output ``t`` sees inputs ``<= t``. LoRA targets the
two projections (``adapter_targets``).

>>> import torch
>>> S4DBlock(16, state_dim=8)(torch.randn(2, 50, 16)).shape
torch.Size([2, 50, 16])
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..ops.s4d import s4d


class S4DBlock(nn.Module):
    """Pre-norm residual S4D layer ``[B, T, dim] -> [B, T, dim]`` (see the module docstring)."""

    adapter_targets = {"lora": ("*.in_proj", "*.out_proj"), "bottleneck": ("*.out_proj",)}

    def __init__(self, dim: int, state_dim: int = 64, dt_min: float = 1e-3, dt_max: float = 1e-1,
                 dropout: float = 0.0):
        super().__init__()
        self.dim, self.state_dim = dim, state_dim
        self.norm = nn.LayerNorm(dim)
        self.in_proj = nn.Linear(dim, dim)
        log_dt = torch.rand(dim) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min)
        self.log_dt = nn.Parameter(log_dt)
        self.log_a_real = nn.Parameter(torch.full((dim, state_dim), math.log(0.5)))
        self.a_imag = nn.Parameter(math.pi * torch.arange(state_dim, dtype=torch.float32).repeat(dim, 1))
        self.c = nn.Parameter(torch.randn(dim, state_dim, 2) * math.sqrt(0.5))
        self.d = nn.Parameter(torch.randn(dim))
        self.out_proj = nn.Linear(dim, 2 * dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.in_proj(self.norm(x)).transpose(1, 2)  # [B, dim, T]
        h = F.gelu(s4d(h, self.log_dt, self.log_a_real, self.a_imag, self.c, self.d))
        return x + self.dropout(F.glu(self.out_proj(h.transpose(1, 2)), dim=-1))


__all__ = ["S4DBlock"]
