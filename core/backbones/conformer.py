"""Conformer encoder (Gulati et al., 2020): convolution-augmented transformer blocks.

Each block, on ``[B, T, dim]``:

1. ``x + ½ · ff1(ff1_norm(x))``  (macaron half-step feed-forward, Swish, dropout)
2. ``x + drop(attn(attn_norm(x)))``  (multi-head self-attention)
3. ``x + conv(x)``  (LayerNorm → pointwise conv to 2·dim → GLU → depthwise conv →
   BatchNorm/LayerNorm → Swish → pointwise conv → dropout)
4. ``x + ½ · ff2(ff2_norm(x))``
5. ``norm(x)``  (final LayerNorm)

Feature shapes: input ``[B, T, dim]`` -> output ``[B, T, dim]``;
:meth:`ConformerEncoder.forward_intermediates` returns the ``depth`` block outputs, each
``[B, T, dim]``. ``causal=True`` makes the depthwise conv causal (left padding); pass a
causal ``mask`` for the attention too.

>>> import torch
>>> enc = ConformerEncoder(dim=32, depth=2, heads=4, conv_kernel_size=7)
>>> enc(torch.randn(2, 20, 32)).shape
torch.Size([2, 20, 32])
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..ops.attention import MultiHeadAttention
from .transformer import BlockStack, Mlp


class ConformerConvModule(nn.Module):
    """Conformer convolution module on ``[B, T, dim]`` (no residual; the block adds it).

    Submodules: ``norm`` (LayerNorm), ``pointwise1`` (Conv1d dim→2·dim, k=1), GLU, ``depthwise``
    (Conv1d, groups=dim), ``conv_norm`` (BatchNorm1d or LayerNorm), Swish, ``pointwise2``, ``drop``.
    ``key_padding_mask`` ([B, T], True = padding) zeroes padded frames before the depthwise conv.
    """

    def __init__(self, dim: int, kernel_size: int = 31, dropout: float = 0.0, norm: str = "batch",
                 causal: bool = False):
        super().__init__()
        self.kernel_size, self.causal = kernel_size, causal
        self.norm = nn.LayerNorm(dim)
        self.pointwise1 = nn.Conv1d(dim, 2 * dim, 1)
        self.depthwise = nn.Conv1d(dim, dim, kernel_size, groups=dim)
        if norm == "batch":
            self.conv_norm = nn.BatchNorm1d(dim)
        elif norm == "layer":
            self.conv_norm = _ChannelLayerNorm(dim)
        else:
            raise ValueError(f"conv_norm must be 'batch' or 'layer', got {norm!r}")
        self.act = nn.SiLU()
        self.pointwise2 = nn.Conv1d(dim, dim, 1)
        self.drop = nn.Dropout(dropout)

    def forward(self, x, key_padding_mask=None):
        y = F.glu(self.pointwise1(self.norm(x).transpose(1, 2)), dim=1)  # [B, dim, T]
        if key_padding_mask is not None:
            y = y.masked_fill(key_padding_mask[:, None, :].to(torch.bool), 0.0)
        k = self.kernel_size
        y = F.pad(y, (k - 1, 0) if self.causal else ((k - 1) // 2, k // 2))
        y = self.act(self.conv_norm(self.depthwise(y)))
        return self.drop(self.pointwise2(y).transpose(1, 2))


class _ChannelLayerNorm(nn.LayerNorm):
    """LayerNorm over channels of a ``[B, C, T]`` tensor."""

    def forward(self, x):
        return super().forward(x.transpose(1, 2)).transpose(1, 2)


class ConformerBlock(nn.Module):
    """One conformer block: ``ff1`` (½), ``attn``, ``conv``, ``ff2`` (½), final ``norm``."""

    def __init__(self, dim: int, heads: int, ff_mult: float = 4.0, conv_kernel_size: int = 31,
                 dropout: float = 0.1, attn_dropout: float = 0.0, conv_norm: str = "batch",
                 attn_scale: float | None = None, causal: bool = False):
        super().__init__()
        hidden = int(dim * ff_mult)
        self.ff1_norm = nn.LayerNorm(dim)
        self.ff1 = Mlp(dim, hidden, "silu", dropout)
        self.attn_norm = nn.LayerNorm(dim)
        self.attn = MultiHeadAttention(dim, heads, dropout=attn_dropout, scale=attn_scale)
        self.conv = ConformerConvModule(dim, conv_kernel_size, dropout, conv_norm, causal)
        self.ff2_norm = nn.LayerNorm(dim)
        self.ff2 = Mlp(dim, hidden, "silu", dropout)
        self.norm = nn.LayerNorm(dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x, bias=None, mask=None, key_padding_mask=None):
        x = x + 0.5 * self.drop(self.ff1(self.ff1_norm(x)))
        x = x + self.drop(self.attn(self.attn_norm(x), bias=bias, mask=mask, key_padding_mask=key_padding_mask))
        x = x + self.conv(x, key_padding_mask=key_padding_mask)
        x = x + 0.5 * self.drop(self.ff2(self.ff2_norm(x)))
        return self.norm(x)


class ConformerEncoder(BlockStack):
    """A stack of ``depth`` :class:`ConformerBlock` s: ``[B, T, dim] -> [B, T, dim]``.

    ``forward(x, bias=None, mask=None, key_padding_mask=None)``: ``mask`` True = attend,
    ``key_padding_mask`` ``[B, T]`` True = padding (also zeroed before the depthwise convs).
    """

    adapter_targets = {
        "lora": ("*.attn.qkv", "*.attn.proj"),
        "bottleneck": ("*.ff1", "*.ff2"),
        "conv": ("*.ff1", "*.ff2"),
    }

    def __init__(self, dim: int, depth: int, heads: int, ff_mult: float = 4.0, conv_kernel_size: int = 31,
                 dropout: float = 0.1, attn_dropout: float = 0.0, conv_norm: str = "batch",
                 attn_scale: float | None = None, causal: bool = False):
        super().__init__()
        self.dim, self.depth, self.heads = dim, depth, heads
        self.blocks = nn.ModuleList(
            ConformerBlock(dim, heads, ff_mult, conv_kernel_size, dropout, attn_dropout, conv_norm,
                           attn_scale, causal)
            for _ in range(depth)
        )


__all__ = ["ConformerBlock", "ConformerConvModule", "ConformerEncoder"]
