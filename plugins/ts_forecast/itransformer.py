"""iTransformer (Liu et al., 2024, arXiv 2310.06625): attention across variates, not time.

Each series' whole lookback is embedded as one token; self-attention (the core
:class:`~sigplex.core.ops.attention.MultiHeadAttention`, fused SDPA) mixes variates, a
feed-forward network works per token, and a linear head maps each token to the horizon.
Non-stationary normalisation (per-window mean/std, reversed at the output) wraps the model.

Covariates are extra variate tokens, as in the paper: each past-only covariate's lookback is
embedded like a target series, each future-known covariate's lookback + horizon by its own
embedding; they take part in attention but only target tokens are projected to the horizon.
A token holds a covariate's whole window, which relates series but does not align a known value
with its horizon step (a driver that moves the target on the same step is barely learned from
tokens alone), so the future-known values of each horizon step also enter through a per-step
term added to the forecast (:class:`~.exog.FutureTerm`, zero-initialised), as in D-CTNet. Static
features are embedded and added to their series' token. ``n_quantiles`` widens the head.
"""
from __future__ import annotations

import torch
from torch import nn

from sigplex.core.models import register_model
from sigplex.core.ops.attention import MultiHeadAttention

from .exog import FutureTerm, as_output, check_inputs, set_sizes, split_cov
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
                 n_layers: int = 2, d_ff: int = 256, dropout: float = 0.1, use_norm: bool = True,
                 n_hist: int = 0, n_futr: int = 0, n_stat: int = 0, n_quantiles: int = 1):
        super().__init__()
        set_sizes(self, n_vars, lookback, horizon, n_hist, n_futr, n_stat, n_quantiles)
        self.revin = RevIN(n_vars, affine=False) if use_norm else None
        self.embed = nn.Linear(lookback, d_model)
        self.embed_future = nn.Linear(lookback + horizon, d_model) if n_futr else None
        self.embed_static = nn.Linear(n_stat, d_model) if n_stat else None
        self.embed_drop = nn.Dropout(dropout)
        self.layers = nn.ModuleList(VariateLayer(d_model, n_heads, d_ff, dropout) for _ in range(n_layers))
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, horizon * n_quantiles)
        self.future = FutureTerm(n_futr, n_stat, n_vars, n_quantiles, d_ff) if n_futr else None

    def forward_features(self, x, cov=None, stat=None):
        """Variate tokens ``[B, N, D]`` after the encoder (targets first, then covariates)."""
        tokens = self.embed(x.transpose(1, 2))
        if stat is not None:
            tokens = tokens + self.embed_static(stat)
        if cov is not None:
            hist, futr = split_cov(cov, self.lookback, self.n_hist)
            extra = [self.embed(hist.transpose(1, 2))]
            if self.embed_future is not None:
                extra.append(self.embed_future(futr.transpose(1, 2)))
            tokens = torch.cat([tokens, *extra], 1)
        tokens = self.embed_drop(tokens)
        for layer in self.layers:
            tokens = layer(tokens)
        return self.norm(tokens)

    def forward(self, x, cov=None, stat=None):
        cov = check_inputs(self, cov, stat)
        stats = None
        if self.revin is not None:
            x, stats = self.revin.normalize(x)
        tokens = self.forward_features(x, cov, stat)[:, :self.n_vars]
        b, c = tokens.shape[:2]
        y = self.head(tokens).reshape(b, c, self.horizon, self.n_quantiles).transpose(2, 3)  # [B, C, Q, H]
        if self.future is not None:
            y = y + self.future(split_cov(cov, self.lookback, self.n_hist)[1][:, self.lookback:], stat)
        y = as_output(y, self.n_quantiles)
        return self.revin.denormalize(y, stats) if stats is not None else y
