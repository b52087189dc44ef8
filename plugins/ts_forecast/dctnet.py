"""D-CTNet (Wang et al., 2025, arXiv 2512.00925): dual-branch channel-temporal forecasting.

RevIN, then a patch embedding (Conv1d with kernel = patch length, stride = patch stride, plus a
learnable position embedding). Each layer runs two branches in parallel on ``[B, C, N, D]``: a
linear temporal branch mixing patches per channel and feature, and a channel-attention branch
attending across variables per patch; their sum is fused by global inter-patch self-attention
(per channel) and a feed-forward network. A linear head gives the horizon, and a
frequency-domain stationarity correction rescales the forecast spectrum with learnable complex
per-frequency gains (initialised to the identity) before RevIN is reversed.

Covariates (our design; the paper has none): the lookback of every covariate is patch-embedded
(its own Conv1d) into extra channels, so the channel-attention branch attends across targets and
covariates in each patch and the temporal and fusion parts see them too; only target channels
reach the head. Static features are embedded and added to their series' patches. The future-known
covariates of each horizon step enter through a per-step MLP added to the forecast before the
frequency correction (:class:`~.exog.FutureTerm`, zero-initialised).

The paper's exact correction formula is not public in the sources we could read; this is our
reading of "spectrum alignment": a learned per-frequency alignment of the forecast spectrum.
"""
from __future__ import annotations

import torch
from torch import nn

from sigplex.core.models import register_model
from sigplex.core.ops.attention import MultiHeadAttention

from .exog import (
    FutureTerm,
    as_output,
    check_inputs,
    covariate_channels,
    quantile_head,
    set_sizes,
    split_cov,
)
from .revin import RevIN, dft_bases, patch_layout


class DualBranchLayer(nn.Module):
    """Temporal branch ∥ channel-attention branch, then global inter-patch attention fusion."""

    def __init__(self, n_patches: int, d_model: int, n_heads: int, d_ff: int, dropout: float):
        super().__init__()
        self.temporal = nn.Linear(n_patches, n_patches)
        self.act = nn.GELU()
        self.channel_norm = nn.LayerNorm(d_model)
        self.channel_attn = MultiHeadAttention(d_model, n_heads, dropout=dropout)
        self.fuse_norm = nn.LayerNorm(d_model)
        self.patch_attn = MultiHeadAttention(d_model, n_heads, dropout=dropout)
        self.ffn_norm = nn.LayerNorm(d_model)
        self.ffn = nn.Sequential(nn.Linear(d_model, d_ff), nn.GELU(), nn.Dropout(dropout), nn.Linear(d_ff, d_model))
        self.drop = nn.Dropout(dropout)

    def forward(self, x):                                           # [B, C, N, D]
        b, c, n, d = x.shape
        temporal = self.act(self.temporal(x.transpose(2, 3))).transpose(2, 3)
        tokens = self.channel_norm(x).permute(0, 2, 1, 3).reshape(b * n, c, d)
        channel = self.channel_attn(tokens).reshape(b, n, c, d).permute(0, 2, 1, 3)
        x = x + self.drop(temporal) + self.drop(channel)
        patches = self.fuse_norm(x).reshape(b * c, n, d)
        x = x + self.drop(self.patch_attn(patches)).reshape(b, c, n, d)
        return x + self.drop(self.ffn(self.ffn_norm(x)))


class FrequencyCorrection(nn.Module):
    """Learnable complex gain per frequency bin of a ``[B, C, H]`` forecast (identity at init)."""

    def __init__(self, horizon: int):
        super().__init__()
        cos, sin, icos, isin = dft_bases(horizon)
        for name, t in (("cos", cos), ("sin", sin), ("icos", icos), ("isin", isin)):
            self.register_buffer(name, t, persistent=False)
        n_freq = horizon // 2 + 1
        self.gain_re = nn.Parameter(torch.ones(n_freq))
        self.gain_im = nn.Parameter(torch.zeros(n_freq))

    def forward(self, y):
        re, im = y @ self.cos, -(y @ self.sin)
        re2 = re * self.gain_re - im * self.gain_im
        im2 = re * self.gain_im + im * self.gain_re
        return re2 @ self.icos - im2 @ self.isin


@register_model("dctnet", domain="ts_forecast",
                tiny={"n_vars": 3, "lookback": 32, "horizon": 8, "d_model": 16, "n_heads": 2, "n_layers": 1,
                      "d_ff": 32, "patch_len": 8, "stride": 8},
                example_input=lambda: torch.randn(2, 32, 3),
                default={"n_vars": 7, "lookback": 96, "horizon": 96})
class DCTNet(nn.Module):
    """``[batch, lookback, n_vars] -> [batch, horizon, n_vars]``; the D-CTNet forecaster."""

    adapter_targets = {"lora": ("*.qkv", "*.proj"), "bottleneck": ("*.ffn",), "conv": ("*.ffn",)}

    def __init__(self, n_vars: int, lookback: int, horizon: int, d_model: int = 64, n_heads: int = 4,
                 n_layers: int = 2, d_ff: int = 128, patch_len: int = 16, stride: int = 8, dropout: float = 0.1,
                 freq_correction: bool = True, n_hist: int = 0, n_futr: int = 0, n_stat: int = 0,
                 n_quantiles: int = 1):
        super().__init__()
        set_sizes(self, n_vars, lookback, horizon, n_hist, n_futr, n_stat, n_quantiles)
        self.revin = RevIN(n_vars, affine=True)
        n_patches, self.offset = patch_layout(lookback, patch_len, stride)
        self.embed = nn.Conv1d(1, d_model, kernel_size=patch_len, stride=stride)
        self.embed_cov = nn.Conv1d(1, d_model, kernel_size=patch_len, stride=stride) if n_hist + n_futr else None
        self.embed_static = nn.Linear(n_stat, d_model) if n_stat else None
        self.future = FutureTerm(n_futr, n_stat, n_vars, n_quantiles, d_ff) if n_futr else None
        self.pos = nn.Parameter(torch.randn(n_patches, d_model) * 0.02)
        self.layers = nn.ModuleList(DualBranchLayer(n_patches, d_model, n_heads, d_ff, dropout)
                                    for _ in range(n_layers))
        self.norm = nn.LayerNorm(d_model)
        self.head_drop = nn.Dropout(dropout)
        self.head = nn.Linear(n_patches * d_model, horizon * n_quantiles)
        self.correction = FrequencyCorrection(horizon) if freq_correction else None

    def patches(self, embed, x):
        """``[B, L, C]`` -> patch tokens ``[B, C, N, D]`` with positions."""
        b, length, c = x.shape
        series = x[:, self.offset:].transpose(1, 2).reshape(b * c, 1, length - self.offset)
        h = embed(series).transpose(1, 2)                           # [B*C, N, D]
        return (h + self.pos).reshape(b, c, h.shape[1], h.shape[2])

    def forward_features(self, x, cov=None, stat=None):
        """Patch features ``[B, C(+K), N, D]`` of normalised input ``[B, L, C]`` (covariate channels last)."""
        h = self.patches(self.embed, x)
        h = covariate_channels(self, h, cov, stat)
        for layer in self.layers:
            h = layer(h)
        return self.norm(h)

    def forward(self, x, cov=None, stat=None):
        cov = check_inputs(self, cov, stat)
        x, stats = self.revin.normalize(x)
        h = self.forward_features(x, cov, stat)[:, :self.n_vars]
        y = quantile_head(self.head, self.head_drop(h.flatten(2)), self.horizon, self.n_quantiles)
        if self.future is not None:
            y = y + self.future(split_cov(cov, self.lookback, self.n_hist)[1][:, self.lookback:], stat)
        if self.correction is not None:
            y = self.correction(y)                                  # [B, C, Q, H]: per quantile
        return self.revin.denormalize(as_output(y, self.n_quantiles), stats)
