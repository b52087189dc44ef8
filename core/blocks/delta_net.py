"""DeltaNet block: multi-head ``sigplex.core.ops.delta_rule`` with its projections.

``x + out_proj(LN_head(delta_rule(q, k, v, β)))`` with ``h = LayerNorm(x)``: ``q, k = normalize(silu(Linear(h)))``
(L2 per head, as DeltaNet), ``v = Linear(h)``, ``β = sigmoid(b_proj(h))`` per head; ``LN_head`` a LayerNorm
over each head's channels without affine. ``[B, T, dim] -> [B, T, dim]``, causal, linear in ``T``.

ONNX: not exportable -- the chunkwise form's UT transform is a triangular solve
(``torch.linalg.solve_triangular``), for which the exporter has no ONNX op; export stops with that
op's name in the message.

>>> import torch
>>> DeltaNetBlock(16, heads=2)(torch.randn(2, 40, 16)).shape
torch.Size([2, 40, 16])
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..ops.delta_rule import delta_rule
from .multihead_mixer import MultiHeadMixer


class DeltaNetBlock(MultiHeadMixer):
    """Pre-norm residual delta-rule layer (see the module docstring); ``dim`` divisible by ``heads``."""

    adapter_targets = {"lora": ("*.q_proj", "*.k_proj", "*.v_proj", "*.out_proj"), "bottleneck": ("*.out_proj",)}

    def __init__(self, dim: int, heads: int = 4, chunk_size: int = 32):
        super().__init__(dim, heads)
        self.chunk_size = chunk_size
        self.b_proj = nn.Linear(dim, heads)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm(x)
        q, k = (F.normalize(self.split_heads(F.silu(p(h))), dim=-1) for p in (self.q_proj, self.k_proj))
        beta = torch.sigmoid(self.b_proj(h)).transpose(1, 2)  # [B, H, T]
        o = delta_rule(q, k, self.split_heads(self.v_proj(h)), beta, chunk_size=self.chunk_size)
        return x + self.out_proj(self.merge_heads(o))


__all__ = ["DeltaNetBlock"]
