"""SSMixer: a long-lookback forecaster of state-space token mixers on patches, linear in the lookback.

RevIN, then the lookback of each series is cut into patches (``patch_len``, ``stride``) and
embedded. Each layer mixes along the patches of each series with a state-space model and across
series, in one of two layouts (``mixer``):

* ``"s4d"`` (default) — an S4D token mixer (:class:`sigplex.core.blocks.S4DBlock`: a diagonal
  state-space kernel applied as a long convolution, Gu et al. 2022) and an MLP across series
  (TSMixer's hybrid channel mixing);
* ``"mamba"`` — MambaMixer's dual selective layout (Behrouz et al. 2024, arXiv 2403.19888; TSM2 for
  time series): a causal selective token mixer (:class:`sigplex.core.blocks.MambaBlock`) along the
  patches and a selective channel mixer across series, run both ways and averaged (series have no
  order). Input-dependent (selective), but an order of magnitude slower on a CPU
  (docs/plugins/ts_forecast.md).

As in MambaMixer, each layer's input is a learned weighted average of the embedding and all
earlier layers' outputs (initialised to the latest). A linear head maps each series' patches to the
horizon. Memory and time grow linearly with the number of patches, so lookbacks of 720 or 2000 steps
are cheap. Covariates as in D-CTNet: every covariate's lookback becomes extra channels of the
channel mixing, static features are added to their series' patches, and the future-known values of
each horizon step enter through :class:`~.exog.FutureTerm`.

>>> import torch
>>> model = SSMixer(n_vars=3, lookback=720, horizon=24, d_model=16, n_layers=1)
>>> model(torch.randn(2, 720, 3)).shape
torch.Size([2, 24, 3])
"""
from __future__ import annotations

import torch
from torch import nn

from sigplex.core.blocks import MambaBlock, S4DBlock
from sigplex.core.models import register_model

from .exog import (
    FutureTerm,
    as_output,
    check_inputs,
    covariate_channels,
    quantile_head,
    set_sizes,
    split_cov,
)
from .revin import RevIN, register_patches
from .tsmixer import MixerMLP


class DualMixerLayer(nn.Module):
    """Token mixing along patches, then channel mixing across series, on ``[B, C, N, D]`` (``mixer``: s4d, mamba)."""

    def __init__(self, n_channels: int, d_model: int, state_dim: int, expand: int, dropout: float, mixer: str):
        super().__init__()
        self.mixer = mixer
        self.drop = nn.Dropout(dropout)
        if mixer == "mamba":
            self.token = MambaBlock(d_model, state_dim=state_dim, expand=expand)
            self.channel_fwd = MambaBlock(d_model, state_dim=state_dim, expand=expand)
            self.channel_bwd = MambaBlock(d_model, state_dim=state_dim, expand=expand)
        else:
            self.token = S4DBlock(d_model, state_dim=state_dim)
            self.channel_norm = nn.LayerNorm(d_model)
            self.channel = MixerMLP(n_channels, expand, 0.0, gated=False)

    def forward(self, h):
        b, c, n, d = h.shape
        h = self.token(h.reshape(b * c, n, d)).reshape(b, c, n, d)            # the blocks are residual
        if self.mixer == "mamba":
            tokens = h.transpose(1, 2).reshape(b * n, c, d)
            both = 0.5 * (self.channel_fwd(tokens) + self.channel_bwd(tokens.flip(1)).flip(1))
            return h + self.drop(both.reshape(b, n, c, d).transpose(1, 2) - h)
        return h + self.drop(self.channel(self.channel_norm(h).permute(0, 3, 2, 1)).permute(0, 3, 2, 1))


@register_model("ssmixer", domain="ts_forecast",
                tiny={"n_vars": 3, "lookback": 64, "horizon": 8, "d_model": 8, "n_layers": 1, "patch_len": 8,
                      "stride": 8, "state_dim": 4},
                example_input=lambda: torch.randn(2, 64, 3),
                default={"n_vars": 7, "lookback": 720, "horizon": 96})
class SSMixer(nn.Module):
    """``[batch, lookback, n_vars] -> [batch, horizon, n_vars]``; state-space token and channel mixers on patches."""

    adapter_targets = {"lora": ("*.in_proj", "*.out_proj"), "bottleneck": ("*.out_proj",), "conv": ("*.out_proj",)}

    def __init__(self, n_vars: int, lookback: int, horizon: int, d_model: int = 64, n_layers: int = 2,
                 patch_len: int = 48, stride: int = 24, state_dim: int = 16, expand: int = 2, dropout: float = 0.1,
                 mixer: str = "s4d", n_hist: int = 0, n_futr: int = 0, n_stat: int = 0, n_quantiles: int = 1):
        super().__init__()
        if mixer not in ("s4d", "mamba"):
            raise ValueError(f"mixer={mixer!r}: expected 's4d' or 'mamba'")
        set_sizes(self, n_vars, lookback, horizon, n_hist, n_futr, n_stat, n_quantiles)
        self.revin = RevIN(n_vars, affine=True)
        n_patches = register_patches(self, lookback, patch_len, stride)
        self.embed = nn.Linear(patch_len, d_model)
        self.embed_cov = nn.Linear(patch_len, d_model) if n_hist + n_futr else None
        self.embed_static = nn.Linear(n_stat, d_model) if n_stat else None
        self.pos = nn.Parameter(torch.randn(n_patches, d_model) * 0.02)
        channels = n_vars + n_hist + n_futr
        self.layers = nn.ModuleList(DualMixerLayer(channels, d_model, state_dim, expand, dropout, mixer)
                                    for _ in range(n_layers))
        self.mix = nn.ParameterList(nn.Parameter(torch.eye(n_layers + 1)[i, :i + 1]) for i in range(n_layers))
        self.norm = nn.LayerNorm(d_model)
        self.head_drop = nn.Dropout(dropout)
        self.head = nn.Linear(n_patches * d_model, horizon * n_quantiles)
        self.future = FutureTerm(n_futr, n_stat, n_vars, n_quantiles, 2 * d_model) if n_futr else None

    def patches(self, embed, x):
        """``[B, L, C]`` -> embedded patches with positions ``[B, C, N, D]``."""
        return embed(x.transpose(1, 2)[..., self.patch_idx]) + self.pos

    def forward_features(self, x, cov=None, stat=None):
        """Patch features ``[B, C(+K), N, D]`` of normalised input ``[B, L, C]`` (covariate channels last)."""
        h = self.patches(self.embed, x)
        h = covariate_channels(self, h, cov, stat)
        outputs = [h]
        for layer, weights in zip(self.layers, self.mix):
            mixed = sum(w * o for w, o in zip(weights, outputs))          # MambaMixer's weighted averaging
            outputs.append(layer(mixed))
        return self.norm(outputs[-1])

    def forward(self, x, cov=None, stat=None):
        cov = check_inputs(self, cov, stat)
        x, stats = self.revin.normalize(x)
        h = self.forward_features(x, cov, stat)[:, :self.n_vars]
        y = quantile_head(self.head, self.head_drop(h.flatten(2)), self.horizon, self.n_quantiles)
        if self.future is not None:
            y = y + self.future(split_cov(cov, self.lookback, self.n_hist)[1][:, self.lookback:], stat)
        return self.revin.denormalize(as_output(y, self.n_quantiles), stats)
