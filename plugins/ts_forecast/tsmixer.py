"""TSMixer / PatchTSMixer (Ekambaram et al., 2023, arXiv 2306.09364): MLP-Mixer on patches.

The lookback is cut into patches per channel and embedded; each mixer block mixes across
channels (hybrid channel modelling, optional), across patches (inter-patch) and within a patch
(features), every MLP followed by gated attention (``x * softmax(W x)``). A linear head maps the
flattened patches to the horizon; an optional online cross-channel reconciliation head refines
each forecast step from all channels in a small time neighbourhood. RevIN wraps the model.

Covariates as in TSMixer-Ext (Chen et al., 2023, arXiv 2303.06053, "align then mix"): the
backbone's forecast and the past covariates projected from the lookback to the horizon by a
temporal linear layer are aligned with the future-known covariates of each horizon step and the
static features; mixer blocks (time mixing across the horizon, feature mixing across all of
them) give a correction of the forecast, zero-initialised.
"""
from __future__ import annotations

import torch
from torch import nn

from sigplex.core.models import register_model

from .exog import as_output, check_inputs, quantile_head, set_sizes, split_cov
from .revin import RevIN, register_patches


class GatedAttention(nn.Module):
    """Feature gating: ``x * softmax(Linear(x))`` over the last dimension."""

    def __init__(self, dim: int):
        super().__init__()
        self.gate = nn.Linear(dim, dim)

    def forward(self, x):
        return x * torch.softmax(self.gate(x), dim=-1)


class MixerMLP(nn.Module):
    """Two-layer MLP over the last dimension, then gated attention."""

    def __init__(self, dim: int, expansion: int, dropout: float, gated: bool = True):
        super().__init__()
        self.fc1 = nn.Linear(dim, dim * expansion)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(dim * expansion, dim)
        self.drop = nn.Dropout(dropout)
        self.gating = GatedAttention(dim) if gated else nn.Identity()

    def forward(self, x):
        return self.gating(self.drop(self.fc2(self.drop(self.act(self.fc1(x))))))


class MixerBlock(nn.Module):
    """Channel (optional) -> inter-patch -> intra-patch mixing on ``[B, C, N, D]``, each residual."""

    def __init__(self, n_vars: int, n_patches: int, d_model: int, expansion: int, dropout: float,
                 channel_mixing: bool, gated: bool):
        super().__init__()
        self.channel_norm = nn.LayerNorm(d_model) if channel_mixing else None
        self.channel_mlp = MixerMLP(n_vars, expansion, dropout, gated) if channel_mixing else None
        self.patch_norm = nn.LayerNorm(d_model)
        self.patch_mlp = MixerMLP(n_patches, expansion, dropout, gated)
        self.feature_norm = nn.LayerNorm(d_model)
        self.feature_mlp = MixerMLP(d_model, expansion, dropout, gated)

    def forward(self, x):
        if self.channel_mlp is not None:
            h = self.channel_norm(x).permute(0, 3, 2, 1)            # [B, D, N, C]
            x = x + self.channel_mlp(h).permute(0, 3, 2, 1)
        h = self.patch_norm(x).transpose(2, 3)                      # [B, C, D, N]
        x = x + self.patch_mlp(h).transpose(2, 3)
        return x + self.feature_mlp(self.feature_norm(x))


class ReconciliationHead(nn.Module):
    """Online cross-channel reconciliation: each step is corrected from every channel's forecast
    within ``±context`` steps by a linear map (zero-initialised: starts as the identity)."""

    def __init__(self, n_vars: int, horizon: int, context: int = 2):
        super().__init__()
        self.context = context
        self.register_buffer("index", torch.arange(horizon)[:, None] + torch.arange(2 * context + 1)[None, :],
                             persistent=False)
        self.mix = nn.Linear(n_vars * (2 * context + 1), n_vars)
        nn.init.zeros_(self.mix.weight)
        nn.init.zeros_(self.mix.bias)

    def forward(self, y):                                           # y: [B, C, H]
        b, c, h = y.shape
        k = self.context
        padded = torch.cat([y[..., :1].expand(b, c, k), y, y[..., -1:].expand(b, c, k)], dim=-1)
        windows = padded[..., self.index]                           # [B, C, H, 2k+1]
        flat = windows.permute(0, 2, 1, 3).reshape(b, h, c * (2 * k + 1))
        return y + self.mix(flat).transpose(1, 2)


class AuxiliaryMixer(nn.Module):
    """TSMixer-Ext's mixing of aligned features ``[B, H, F]`` -> a correction ``[B, C, Q, H]`` (zero at init)."""

    def __init__(self, n_features: int, horizon: int, n_vars: int, n_quantiles: int, d_model: int,
                 expansion: int, dropout: float, n_layers: int = 2):
        super().__init__()
        self.n_vars, self.n_quantiles = n_vars, n_quantiles
        self.embed = nn.Linear(n_features, d_model)
        self.time_norm = nn.ModuleList(nn.LayerNorm(d_model) for _ in range(n_layers))
        self.time = nn.ModuleList(MixerMLP(horizon, expansion, dropout, gated=False) for _ in range(n_layers))
        self.feature_norm = nn.ModuleList(nn.LayerNorm(d_model) for _ in range(n_layers))
        self.feature = nn.ModuleList(MixerMLP(d_model, expansion, dropout, gated=False) for _ in range(n_layers))
        self.out = nn.Linear(d_model, n_vars * n_quantiles)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, feats):
        h = self.embed(feats)
        for tn, time, fn, feature in zip(self.time_norm, self.time, self.feature_norm, self.feature):
            h = h + time(tn(h).transpose(1, 2)).transpose(1, 2)
            h = h + feature(fn(h))
        b, steps = h.shape[:2]
        return self.out(h).reshape(b, steps, self.n_vars, self.n_quantiles).permute(0, 2, 3, 1)


@register_model("tsmixer", domain="ts_forecast",
                tiny={"n_vars": 3, "lookback": 32, "horizon": 8, "d_model": 8, "n_layers": 1, "patch_len": 8,
                      "stride": 8, "reconcile": True},
                example_input=lambda: torch.randn(2, 32, 3),
                default={"n_vars": 7, "lookback": 96, "horizon": 96})
class TSMixer(nn.Module):
    """``[batch, lookback, n_vars] -> [batch, horizon, n_vars]``; PatchTSMixer-style backbone."""

    adapter_targets = {"lora": ("*.fc1", "*.fc2"), "bottleneck": ("*.feature_mlp",), "conv": ("*.feature_mlp",)}

    def __init__(self, n_vars: int, lookback: int, horizon: int, d_model: int = 64, n_layers: int = 4,
                 patch_len: int = 16, stride: int = 8, expansion: int = 2, dropout: float = 0.1,
                 head_dropout: float = 0.1, channel_mixing: bool = True, gated: bool = True,
                 reconcile: bool = False, reconcile_context: int = 2, n_hist: int = 0, n_futr: int = 0,
                 n_stat: int = 0, n_quantiles: int = 1):
        super().__init__()
        set_sizes(self, n_vars, lookback, horizon, n_hist, n_futr, n_stat, n_quantiles)
        self.revin = RevIN(n_vars, affine=True)
        n_patches = register_patches(self, lookback, patch_len, stride)
        self.embed = nn.Linear(patch_len, d_model)
        self.blocks = nn.ModuleList(MixerBlock(n_vars, n_patches, d_model, expansion, dropout, channel_mixing, gated)
                                    for _ in range(n_layers))
        self.head_drop = nn.Dropout(head_dropout)
        self.head = nn.Linear(n_patches * d_model, horizon * n_quantiles)
        self.reconcile = ReconciliationHead(n_vars, horizon, reconcile_context) if reconcile else None
        self.align = nn.Linear(lookback, horizon) if n_hist + n_futr else None
        n_aux = n_vars * n_quantiles + n_hist + 2 * n_futr + n_vars * n_stat
        self.auxiliary = (AuxiliaryMixer(n_aux, horizon, n_vars, n_quantiles, d_model, expansion, dropout)
                          if n_hist + n_futr + n_stat else None)

    def forward_features(self, x):
        """Patch features ``[B, C, N, D]`` of normalised input ``[B, L, C]``."""
        patches = x.transpose(1, 2)[..., self.patch_idx]           # [B, C, N, P]
        h = self.embed(patches)
        for block in self.blocks:
            h = block(h)
        return h

    def aligned(self, y, cov, stat):
        """TSMixer-Ext's inputs at each horizon step ``[B, H, F]``: the forecast, the lookback covariates
        projected to the horizon, the future-known covariates and the static features."""
        b = y.shape[0]
        feats = [y.permute(0, 3, 1, 2).reshape(b, self.horizon, -1)]
        if cov is not None:
            hist, futr = split_cov(cov, self.lookback, self.n_hist)
            past = torch.cat([hist, futr[:, :self.lookback]], -1)
            feats += [self.align(past.transpose(1, 2)).transpose(1, 2), futr[:, self.lookback:]]
        if stat is not None:
            feats.append(stat.flatten(1)[:, None].expand(-1, self.horizon, -1))
        return torch.cat(feats, -1)

    def forward(self, x, cov=None, stat=None):
        cov = check_inputs(self, cov, stat)
        x, stats = self.revin.normalize(x)
        h = self.forward_features(x)
        b, c = h.shape[:2]
        y = quantile_head(self.head, self.head_drop(h.flatten(2)), self.horizon, self.n_quantiles)
        if self.reconcile is not None:                              # per quantile: [B*Q, C, H]
            q = self.n_quantiles
            y = self.reconcile(y.transpose(1, 2).reshape(b * q, c, -1)).reshape(b, q, c, -1).transpose(1, 2)
        if self.auxiliary is not None:
            y = y + self.auxiliary(self.aligned(y, cov, stat))
        return self.revin.denormalize(as_output(y, self.n_quantiles), stats)
