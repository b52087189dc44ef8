"""Pre-LayerNorm transformer encoder over token sequences (EEG Conformer, AdaFortiTran, ...).

Each block is ``x + drop(attn(norm1(x)))`` then ``x + drop(mlp(norm2(x)))`` with
:class:`~sigplex.core.ops.attention.MultiHeadAttention` (``attn.qkv``, ``attn.proj``) and an
:class:`Mlp` (``mlp.fc1`` → activation → dropout → ``mlp.fc2``).

Feature shapes: input ``[B, T, dim]`` -> output ``[B, T, dim]`` (after the final LayerNorm
when ``final_norm=True``); :meth:`TransformerEncoder.forward_intermediates` returns the
``depth`` block outputs, each ``[B, T, dim]``, before the final norm.

>>> import torch
>>> enc = TransformerEncoder(dim=40, depth=2, heads=10, attn_scale=40 ** -0.5)
>>> enc(torch.randn(2, 7, 40)).shape
torch.Size([2, 7, 40])
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from ..ops.attention import MultiHeadAttention

_ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "gelu": nn.GELU,
    "relu": nn.ReLU,
    "silu": nn.SiLU,
    "swish": nn.SiLU,
    "elu": nn.ELU,
    "tanh": nn.Tanh,
}


def make_activation(activation: str | Callable[[], nn.Module]) -> nn.Module:
    """An activation module from a name (gelu, relu, silu/swish, elu, tanh) or a factory."""
    if callable(activation):
        return activation()
    try:
        return _ACTIVATIONS[activation]()
    except KeyError:
        raise ValueError(
            f"activation: unknown {activation!r}; expected one of {', '.join(sorted(_ACTIVATIONS))}"
        ) from None


class Mlp(nn.Module):
    """Two-layer feed-forward: ``fc1`` → activation → dropout → ``fc2``."""

    def __init__(self, dim: int, hidden_dim: int, activation="gelu", dropout: float = 0.0,
                 out_dim: int | None = None):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.act = make_activation(activation)
        self.drop = nn.Dropout(dropout)
        self.fc2 = nn.Linear(hidden_dim, out_dim or dim)

    def forward(self, x):
        return self.fc2(self.drop(self.act(self.fc1(x))))


class TransformerBlock(nn.Module):
    """One pre-LN block: ``norm1``, ``attn``, ``norm2``, ``mlp`` and residual dropout ``drop``."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float = 4.0, dropout: float = 0.0,
                 attn_dropout: float = 0.0, attn_scale: float | None = None, activation="gelu",
                 norm_eps: float = 1e-5):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=norm_eps)
        self.attn = MultiHeadAttention(dim, heads, dropout=attn_dropout, scale=attn_scale)
        self.norm2 = nn.LayerNorm(dim, eps=norm_eps)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), activation, dropout)
        self.drop = nn.Dropout(dropout)

    def forward(self, x, bias=None, mask=None, key_padding_mask=None):
        x = x + self.drop(self.attn(self.norm1(x), bias=bias, mask=mask, key_padding_mask=key_padding_mask))
        return x + self.drop(self.mlp(self.norm2(x)))


class BlockStack(nn.Module):
    """Runs ``self.blocks`` in turn, each called as ``block(x, bias=, mask=, key_padding_mask=)``.

    The shared body of :class:`TransformerEncoder` and the conformer encoder.
    """

    blocks: nn.ModuleList

    def forward_intermediates(self, x, bias=None, mask=None, key_padding_mask=None) -> list[torch.Tensor]:
        """Every block's output ``[B, T, dim]`` (before any final norm)."""
        outs = []
        for block in self.blocks:
            x = block(x, bias=bias, mask=mask, key_padding_mask=key_padding_mask)
            outs.append(x)
        return outs

    def forward(self, x, bias=None, mask=None, key_padding_mask=None):
        for block in self.blocks:
            x = block(x, bias=bias, mask=mask, key_padding_mask=key_padding_mask)
        return x


class TransformerEncoder(BlockStack):
    """A stack of ``depth`` pre-LN :class:`TransformerBlock` s (+ final LayerNorm): ``[B, T, dim] -> [B, T, dim]``.

    ``attn_scale`` overrides ``1/sqrt(dim/heads)`` in every block; ``dropout`` is used in the
    MLP and on both residual branches, ``attn_dropout`` on the attention weights. ``forward``
    passes ``bias``, ``mask`` (True = attend) and ``key_padding_mask`` ([B, T], True = padding)
    to every block.
    """

    adapter_targets = {"lora": ("*.attn.qkv", "*.attn.proj"), "bottleneck": ("*.mlp",), "conv": ("*.mlp",)}

    def __init__(self, dim: int, depth: int, heads: int, mlp_ratio: float = 4.0, dropout: float = 0.0,
                 attn_scale: float | None = None, activation="gelu", attn_dropout: float = 0.0,
                 final_norm: bool = True, norm_eps: float = 1e-5):
        super().__init__()
        self.dim, self.depth, self.heads = dim, depth, heads
        self.blocks = nn.ModuleList(
            TransformerBlock(dim, heads, mlp_ratio, dropout, attn_dropout, attn_scale, activation, norm_eps)
            for _ in range(depth)
        )
        self.norm = nn.LayerNorm(dim, eps=norm_eps) if final_norm else nn.Identity()

    def forward(self, x, bias=None, mask=None, key_padding_mask=None):
        return self.norm(super().forward(x, bias=bias, mask=mask, key_padding_mask=key_padding_mask))


__all__ = ["BlockStack", "Mlp", "TransformerBlock", "TransformerEncoder", "make_activation"]
