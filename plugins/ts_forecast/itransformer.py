"""iTransformer (Liu et al., 2024, arXiv 2310.06625): attention across variates, not time.

Each series' whole lookback is embedded as one token; self-attention (the core
:class:`~sigplex.core.ops.attention.MultiHeadAttention`, fused SDPA) mixes variates, a
feed-forward network works per token, and a linear head maps each token to the horizon.
Non-stationary normalisation (per-window mean/std, reversed at the output) wraps the model.
"""
from __future__ import annotations

import torch
from torch import nn

from sigplex.core.models import register_model
from sigplex.core.ops.attention import MultiHeadAttention

from .revin import RevIN


class VariateLayer(nn.Module):
    """Post-norm encoder layer over variate tokens ``[B, N, D]``: attention then feed-forward."""

    def __init__(self, d_model: int, n_heads: int, d_ff: int, dropout: float):
        super().__init__()
        self.attn = MultiHeadAttention(d_model, n_heads, dropout=dropout)
        self.norm1 = nn.LayerNorm(d_model)
        self.ffn = nn.Sequential(nn.Linear(d_model, d_ff), nn.GELU(), nn.Dropout(dropout), nn.Linear(d_ff, d_model))
        self.norm2 = nn.LayerNorm(d_model)
        self.drop = nn.Dropout(dropout)

    def forward(self, x):
        x = self.norm1(x + self.drop(self.attn(x)))
        return self.norm2(x + self.drop(self.ffn(x)))


@register_model("itransformer", domain="ts_forecast",
                tiny={"n_vars": 3, "lookback": 32, "horizon": 8, "d_model": 16, "n_heads": 2, "n_layers": 1, "d_ff": 32},
                example_input=lambda: torch.randn(2, 32, 3),
                default={"n_vars": 7, "lookback": 96, "horizon": 96})
class ITransformer(nn.Module):
    """``[batch, lookback, n_vars] -> [batch, horizon, n_vars]``; variates are the tokens."""

    adapter_targets = {"lora": ("*.attn.qkv", "*.attn.proj"), "bottleneck": ("*.ffn",), "conv": ("*.ffn",)}

    def __init__(self, n_vars: int, lookback: int, horizon: int, d_model: int = 128, n_heads: int = 8,
                 n_layers: int = 2, d_ff: int = 256, dropout: float = 0.1, use_norm: bool = True):
        super().__init__()
        self.n_vars, self.lookback, self.horizon = n_vars, lookback, horizon
        self.revin = RevIN(n_vars, affine=False) if use_norm else None
        self.embed = nn.Linear(lookback, d_model)
        self.embed_drop = nn.Dropout(dropout)
        self.layers = nn.ModuleList(VariateLayer(d_model, n_heads, d_ff, dropout) for _ in range(n_layers))
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, horizon)

    def forward_features(self, x):
        """Variate tokens ``[B, N, D]`` after the encoder."""
        tokens = self.embed_drop(self.embed(x.transpose(1, 2)))
        for layer in self.layers:
            tokens = layer(tokens)
        return self.norm(tokens)

    def forward(self, x):
        stats = None
        if self.revin is not None:
            x, stats = self.revin.normalize(x)
        y = self.head(self.forward_features(x)).transpose(1, 2)
        return self.revin.denormalize(y, stats) if stats is not None else y
