"""What every forecaster shares about covariates and quantile outputs.

A model built with covariates is called ``model(x, cov, stat)``: ``x`` ``[B, L, C]`` the targets,
``cov`` ``[B, L + H, K]`` the covariates over the lookback and the horizon (the first ``n_hist``
columns are past-only and zero over the horizon; the other ``n_futr`` are known ahead, calendar
features included) and ``stat`` ``[B, C, S]`` static features of each target series. Covariates
arrive scaled by the training scaler; the models' instance normalisation applies to targets only.

A model with ``n_quantiles > 1`` returns ``[B, H, C, Q]`` instead of ``[B, H, C]``.
"""
from __future__ import annotations

import torch
from torch import nn


def set_sizes(model: nn.Module, n_vars: int, lookback: int, horizon: int, n_hist: int = 0, n_futr: int = 0,
              n_stat: int = 0, n_quantiles: int = 1) -> None:
    """Record every forecaster's sizes on ``model`` (the series, windows, covariates and quantiles it takes)."""
    model.n_vars, model.lookback, model.horizon = n_vars, lookback, horizon
    model.n_hist, model.n_futr, model.n_stat, model.n_quantiles = n_hist, n_futr, n_stat, n_quantiles


def split_cov(cov: torch.Tensor, lookback: int, n_hist: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(hist, futr)``: past-only covariates over the lookback ``[B, L, n_hist]`` and future-known ones
    over lookback and horizon ``[B, L + H, n_futr]``."""
    return cov[:, :lookback, :n_hist], cov[:, :, n_hist:]


def check_inputs(model, cov, stat):
    """``cov`` (None when it has no column: static features alone come as ``(x, empty cov, stat)``), or a
    one-line error when the covariates given do not match what ``model`` was built for."""
    if cov is not None and cov.shape[-1] == 0:
        cov = None
    want_cov, want_stat = model.n_hist + model.n_futr > 0, model.n_stat > 0
    if (cov is not None) != want_cov or (stat is not None) != want_stat:
        raise ValueError(f"{type(model).__name__} was built with n_hist={model.n_hist}, n_futr={model.n_futr}, "
                         f"n_stat={model.n_stat}; got cov={'yes' if cov is not None else 'no'}, "
                         f"stat={'yes' if stat is not None else 'no'}")
    return cov


def quantile_head(head: nn.Module, features: torch.Tensor, horizon: int, n_quantiles: int) -> torch.Tensor:
    """A linear ``head`` on features ``[B, C, F]`` -> ``[B, C, Q, H]``."""
    b, c = features.shape[:2]
    return head(features).reshape(b, c, horizon, n_quantiles).transpose(2, 3)


def covariate_channels(model, h: torch.Tensor, cov, stat) -> torch.Tensor:
    """Patch features ``[B, C, N, D]`` with the static features added to their series' patches and every
    covariate's lookback patch-embedded (``model.patches(model.embed_cov, ...)``) as extra channels."""
    if stat is not None:
        h = h + model.embed_static(stat)[:, :, None]
    if cov is not None:
        hist, futr = split_cov(cov, model.lookback, model.n_hist)
        h = torch.cat([h, model.patches(model.embed_cov, torch.cat([hist, futr[:, :model.lookback]], -1))], 1)
    return h


def as_output(y: torch.Tensor, n_quantiles: int) -> torch.Tensor:
    """``[B, C, Q, H]`` head output -> ``[B, H, C]`` (one quantile: a point forecast) or ``[B, H, C, Q]``."""
    y = y.permute(0, 3, 1, 2)
    return y[..., 0] if n_quantiles == 1 else y


class FutureTerm(nn.Module):
    """A forecast correction from the future-known covariates of each horizon step (and the static
    features): a two-layer MLP per step over ``[futr_t, stat of all series]`` giving ``[B, C, Q, H]``,
    zero-initialised (a model starts as if it had no covariates)."""

    def __init__(self, n_futr: int, n_stat: int, n_vars: int, n_quantiles: int, hidden: int):
        super().__init__()
        self.n_vars, self.n_quantiles = n_vars, n_quantiles
        self.mlp = nn.Sequential(nn.Linear(n_futr + n_vars * n_stat, hidden), nn.GELU(),
                                 nn.Linear(hidden, n_vars * n_quantiles))
        nn.init.zeros_(self.mlp[-1].weight)
        nn.init.zeros_(self.mlp[-1].bias)

    def forward(self, futr_ahead: torch.Tensor, stat: torch.Tensor | None) -> torch.Tensor:
        feats = futr_ahead                                           # [B, H, Kf]
        if stat is not None:
            feats = torch.cat([feats, stat.flatten(1)[:, None].expand(-1, feats.shape[1], -1)], -1)
        b, h = feats.shape[:2]
        return self.mlp(feats).reshape(b, h, self.n_vars, self.n_quantiles).permute(0, 2, 3, 1)
