"""Forecast scores over every window of a split: MSE/MAE normalised and in original units, the
repeat-last-value and seasonal-naive baselines, rolling-origin scores and, for quantile or
conformal forecasts, the pinball loss and the coverage and width of the widest interval."""
from __future__ import annotations

import numpy as np
import torch

from sigplex.core.errors import UserError
from sigplex.core.infer import iterate_batches, model_device
from sigplex.datasets.tabular import WindowDataset, season_length

from .inputs import model_inputs
from .intervals import intervals, pinball_loss, point_of


def baseline_season(data_config, freq: str | None) -> int | None:
    """Rows per season of the seasonal-naive baseline: ``data.season``, else from the time step.

    None when there is none (``data.season=0``, an unknown step) or when a season is longer than
    ``data.lookback``: the baseline sees the same input window as the model.
    """
    season = data_config.season if data_config.season is not None else season_length(freq)
    if not season or season < 2 or season > data_config.lookback:
        return None
    return season


def seasonal_naive(x: torch.Tensor, season: int, horizon: int) -> torch.Tensor:
    """Repeat the last ``season`` rows of ``x`` ``[B, L, V]`` over ``horizon`` steps: ``[B, horizon, V]``."""
    index = x.shape[1] - season + torch.arange(horizon, device=x.device) % season
    return x.index_select(1, index)


def origins(dataset: WindowDataset, data_config) -> list[int]:
    """Window indices of the rolling-origin evaluation: explicit cut-offs, else N spaced by the horizon."""
    d = data_config
    if d.cutoffs:
        return [dataset.window_at(c) for c in d.cutoffs]
    last = len(dataset) - 1
    return sorted(last - j * d.horizon for j in range(d.rolling_origins) if last - j * d.horizon >= 0)


def interval_sums(sums: dict, pred, y, quantiles, offsets, level: float) -> None:
    """Add the pinball loss and the hits and widths of the widest raw and conformal intervals to ``sums``."""
    if quantiles:
        sums["pinball"] = sums.get("pinball", 0.0) + float(pinball_loss(pred.double(), y.double(), quantiles)) * y.numel()
    raw = intervals(pred, quantiles, None, level)[:1]
    conformal = intervals(pred, quantiles, offsets, level)[:1] if offsets is not None else []
    for prefix, found in (("", raw), ("conformal_", conformal)):
        for _, lvl, lo, hi in found:
            sums[prefix + "hits"] = sums.get(prefix + "hits", 0.0) + float(((y >= lo) & (y <= hi)).sum())
            sums[prefix + "width"] = sums.get(prefix + "width", 0.0) + float((hi - lo).double().sum())
            sums["interval"] = lvl


def window_scores(model, dataset: WindowDataset, std: np.ndarray, batch_size: int, data_config,
                  season: int | None = None, quantiles=(), offsets=None, level: float = 0.8) -> dict[str, float]:
    """Scores of ``model`` on every window of ``dataset`` (normalised with the training scaler of std ``std``).

    ``season``: rows per season for the seasonal-naive baseline (``snaive_mse``, ``snaive_mae``),
    or None for none. ``quantiles``: the model's (the median is the point forecast); ``offsets``:
    conformal offsets of the run (:mod:`.intervals`).
    """
    std = torch.as_tensor(std, dtype=torch.float64)
    sums = dict.fromkeys(("se", "ae", "se_o", "ae_o", "nse", "nae", "sse", "sae"), 0.0)
    count, per_window = 0, []
    rolling = data_config.rolling_origins > 0 or bool(data_config.cutoffs)
    for batch in iterate_batches(dataset, batch_size, device=model_device(model)):
        x, y = batch["x"], batch["y"]
        pred = model(*model_inputs(batch)).float()
        if quantiles or offsets is not None:
            interval_sums(sums, pred.cpu(), y.cpu(), quantiles, offsets, level)
        err = (point_of(pred, quantiles) - y).double().cpu()
        naive = (x[:, -1:, :] - y).double().cpu()
        sums["se"] += float(err.pow(2).sum())
        sums["ae"] += float(err.abs().sum())
        sums["nse"] += float(naive.pow(2).sum())
        sums["nae"] += float(naive.abs().sum())
        if season:
            seasonal = (seasonal_naive(x, season, y.shape[1]) - y).double().cpu()
            sums["sse"] += float(seasonal.pow(2).sum())
            sums["sae"] += float(seasonal.abs().sum())
        sums["se_o"] += float((err * std).pow(2).sum())
        sums["ae_o"] += float((err.abs() * std).sum())
        count += err.numel()
        if rolling:
            per_window.append(torch.stack([err.pow(2).mean((1, 2)), err.abs().mean((1, 2))], 1))
    if count == 0:
        raise UserError("the evaluation split holds no window; lower data.lookback / data.horizon")
    out = {"mse": sums["se"] / count, "mae": sums["ae"] / count, "naive_mse": sums["nse"] / count,
           "naive_mae": sums["nae"] / count, "mse_orig": sums["se_o"] / count, "mae_orig": sums["ae_o"] / count,
           "n_windows": float(len(dataset))}
    if season:
        out.update(snaive_mse=sums["sse"] / count, snaive_mae=sums["sae"] / count, season=float(season))
    out.update({k: sums[k] / count for k in ("pinball", "conformal_width", "width") if k in sums})
    out.update({k.replace("hits", "coverage"): sums[k] / count for k in ("hits", "conformal_hits") if k in sums})
    if "interval" in sums:
        out["interval"] = sums["interval"]
    if rolling:
        scores, idx = torch.cat(per_window), origins(dataset, data_config)
        out.update(rolling_mse=float(scores[idx, 0].mean()), rolling_mae=float(scores[idx, 1].mean()),
                   rolling_n=float(len(idx)))
    return out
