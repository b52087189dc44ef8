"""The skeleton the multi-head linear-attention blocks share (GLABlock, DeltaNetBlock): norm, projections, heads.

A subclass adds its gates and calls its op between :meth:`MultiHeadMixer.split_heads` and
:meth:`MultiHeadMixer.merge_heads`.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class MultiHeadMixer(nn.Module):
    """``norm`` (LayerNorm), ``q_proj``, ``k_proj``, ``v_proj``, ``out_proj`` (``dim -> dim``) over ``heads`` heads."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        if dim % heads:
            raise ValueError(f"{type(self).__name__}: dim {dim} is not divisible by heads {heads}")
        self.dim, self.heads = dim, heads
        self.norm = nn.LayerNorm(dim)
        self.q_proj, self.k_proj, self.v_proj = nn.Linear(dim, dim), nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.out_proj = nn.Linear(dim, dim)

    def split_heads(self, t: torch.Tensor) -> torch.Tensor:
        """``[B, T, dim] -> [B, H, T, dim / H]``."""
        return t.unflatten(-1, (self.heads, -1)).transpose(1, 2)

    def merge_heads(self, o: torch.Tensor) -> torch.Tensor:
        """Each head's output LayerNorm-ed over its channels (no affine), back to ``[B, T, dim]``."""
        return F.layer_norm(o, o.shape[-1:]).transpose(1, 2).flatten(-2)


__all__ = ["MultiHeadMixer"]
