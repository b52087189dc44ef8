"""Gated linear attention block (GLA): multi-head ``sigplex.core.ops.gated_linear_attention`` with its projections.

``x + out_proj(LN_head(GLA(q, k, v, log_g)) ⊙ silu(g_proj(h)))`` with ``h = LayerNorm(x)``; ``q, k, v`` are
Linear projections of ``h``, the per-key-channel decay is low-rank, ``log_g = logsigmoid(gk_up(gk_down(h)))
/ gate_norm`` (GLA's ``α^(1/τ)``, τ = 16), ``LN_head`` a LayerNorm over each head's channels without affine.
``[B, T, dim] -> [B, T, dim]``, causal, linear in ``T``.

>>> import torch
>>> GLABlock(16, heads=2)(torch.randn(2, 40, 16)).shape
torch.Size([2, 40, 16])
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..ops.gla import gated_linear_attention
from .multihead_mixer import MultiHeadMixer


class GLABlock(MultiHeadMixer):
    """Pre-norm residual gated linear attention (see the module docstring); ``dim`` divisible by ``heads``."""

    adapter_targets = {"lora": ("*.q_proj", "*.k_proj", "*.v_proj", "*.g_proj", "*.out_proj"),
                       "bottleneck": ("*.out_proj",)}

    def __init__(self, dim: int, heads: int = 4, gate_rank: int = 16, gate_norm: float = 16.0,
                 chunk_size: int = 32):
        super().__init__(dim, heads)
        self.gate_norm, self.chunk_size = gate_norm, chunk_size
        self.gk_down = nn.Linear(dim, gate_rank, bias=False)
        self.gk_up = nn.Linear(gate_rank, dim)
        self.g_proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm(x)
        log_g = F.logsigmoid(self.gk_up(self.gk_down(h))) / self.gate_norm
        q, k, v, log_g = (self.split_heads(t) for t in (self.q_proj(h), self.k_proj(h), self.v_proj(h), log_g))
        o = self.merge_heads(gated_linear_attention(q, k, v, log_g, chunk_size=self.chunk_size))
        return x + self.out_proj(o * F.silu(self.g_proj(h)))


__all__ = ["GLABlock"]
