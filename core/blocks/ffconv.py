"""Convolutional feed-forward projection (MossFormer's FFConvM): norm, linear, SiLU, depthwise conv.

>>> import torch
>>> FFConvM(8, 16, kernel_size=3)(torch.randn(2, 10, 8)).shape
torch.Size([2, 10, 16])
"""
from __future__ import annotations

from torch import nn

from .conv_module import ConvModule
from .scale_norm import ScaleNorm


class FFConvM(nn.Module):
    """``[B, T, dim_in] -> [B, T, dim_out]``: norm → Linear → SiLU → :class:`ConvModule` → dropout.

    ``norm`` is ``"layernorm"`` or ``"scalenorm"`` (:class:`ScaleNorm`); ``causal`` makes the
    depthwise conv see only past frames.
    """

    def __init__(self, dim_in: int, dim_out: int, norm: str = "layernorm", kernel_size: int = 17,
                 dropout: float = 0.1, causal: bool = False):
        super().__init__()
        if norm == "layernorm":
            self.norm = nn.LayerNorm(dim_in)
        elif norm == "scalenorm":
            self.norm = ScaleNorm(dim_in)
        else:
            raise ValueError(f"norm must be 'layernorm' or 'scalenorm', got {norm!r}")
        self.linear = nn.Linear(dim_in, dim_out)
        self.act = nn.SiLU()
        self.conv = ConvModule(dim_out, kernel_size, causal=causal)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):
        return self.dropout(self.conv(self.act(self.linear(self.norm(x)))))


__all__ = ["FFConvM"]
