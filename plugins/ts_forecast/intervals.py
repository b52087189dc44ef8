"""Quantile forecasts and prediction intervals: the pinball loss, quantile pairs and split-conformal calibration.

A quantile model returns ``[B, H, C, Q]``; its point forecast is the median. Each quantile
``q < 0.5`` whose mirror ``1 - q`` is also forecast makes an interval at level ``1 - 2q``.
``model.conformal`` calibrates on the validation split (split conformal, Vovk et al. 2005;
Angelopoulos & Bates 2021): for a point model the interval is the forecast ± the conformal
quantile of the absolute errors; for a quantile model each pair is widened (or narrowed) by the
conformal quantile of ``max(lo - y, y - hi)`` (conformalised quantile regression, Romano et al.
2019). Offsets are per horizon step and series, in normalised units, saved with the run.

>>> import torch
>>> y = torch.zeros(1, 1, 1)
>>> round(float(pinball_loss(torch.tensor([[[[-1.0, 0.0, 1.0]]]]), y, [0.1, 0.5, 0.9])), 4)
0.0667
"""
from __future__ import annotations

import math

import torch

from sigplex.core.infer import iterate_batches, model_device

from .inputs import model_inputs


def pinball_loss(pred: torch.Tensor, y: torch.Tensor, quantiles) -> torch.Tensor:
    """Mean pinball (quantile) loss of ``pred`` ``[..., Q]`` against ``y`` ``[...]``."""
    q = torch.as_tensor(quantiles, dtype=pred.dtype, device=pred.device)
    diff = y[..., None] - pred
    return torch.maximum(q * diff, (q - 1) * diff).mean()


def pairs(quantiles) -> list[tuple[int, int, float]]:
    """``(lower index, upper index, level)`` of each symmetric quantile pair, the widest first."""
    q = [round(float(v), 6) for v in quantiles]
    return [(i, q.index(round(1 - v, 6)), round(1 - 2 * v, 6)) for i, v in enumerate(q)
            if v < 0.5 and round(1 - v, 6) in q]


def sorted_quantiles(pred: torch.Tensor, quantiles) -> torch.Tensor:
    """Quantiles put in increasing order along the last axis (no crossing), a no-op for point forecasts."""
    return pred.sort(-1).values if quantiles else pred


def point_of(pred: torch.Tensor, quantiles) -> torch.Tensor:
    """The point forecast ``[..., H, C]`` of a model output: the median of the sorted quantiles."""
    return sorted_quantiles(pred, quantiles)[..., list(quantiles).index(0.5)] if quantiles else pred


def conformal_quantile(scores: torch.Tensor, level: float) -> torch.Tensor:
    """The ``ceil((n + 1) level) / n`` empirical quantile of ``scores`` over the first axis (``n`` windows)."""
    n = scores.shape[0]
    k = min(math.ceil((n + 1) * level), n)
    return scores.sort(0).values[k - 1]


def calibrate(pred: torch.Tensor, y: torch.Tensor, quantiles, level: float) -> torch.Tensor:
    """Conformal offsets ``[P, H, C]`` from validation forecasts ``pred`` and truths ``y`` ``[N, H, C]``:
    one per interval (point model: the half-width of the ``level`` interval; quantile model: per pair)."""
    if not quantiles:
        return conformal_quantile((pred - y).abs(), level)[None]
    pred = sorted_quantiles(pred, quantiles)
    return torch.stack([conformal_quantile(torch.maximum(pred[..., lo] - y, y - pred[..., hi]), lvl)
                        for lo, hi, lvl in pairs(quantiles)])


def intervals(pred: torch.Tensor, quantiles, offsets: torch.Tensor | None, level: float):
    """``[(name, level, lower, upper)]`` of a forecast ``pred``: the quantile pairs (conformalised by
    ``offsets`` when given), or a point forecast ± the conformal ``offsets`` (``lo80``/``hi80`` style)."""
    found = []
    if quantiles:
        pred = sorted_quantiles(pred, quantiles)
        for p, (lo, hi, lvl) in enumerate(pairs(quantiles)):
            shift = 0.0 if offsets is None else offsets[p]
            found.append((f"{round(100 * lvl)}", lvl, pred[..., lo] - shift, pred[..., hi] + shift))
    elif offsets is not None:
        found.append((f"{round(100 * level)}", level, pred - offsets[0], pred + offsets[0]))
    return found


def calibrate_model(model, dataset, config) -> dict:
    """``model.conformal``: the run's conformal offsets (``{"conformal": [P, H, C]}``) from every window of
    ``dataset`` (the validation split); ``{}`` without ``model.conformal`` or without validation windows."""
    m = config.model
    if not m.conformal or dataset is None or not len(dataset):
        return {}
    preds, truths = [], []
    for batch in iterate_batches(dataset, config.trainer.eval_batch, device=model_device(model)):
        preds.append(model(*model_inputs(batch)).float().cpu())
        truths.append(batch["y"].float().cpu())
    return {"conformal": calibrate(torch.cat(preds), torch.cat(truths), m.quantiles, m.level).double().numpy()}


def bands(pred: torch.Tensor, config, state: dict, scaler) -> dict:
    """The quantiles (``q10``...) and conformal intervals (``lo80``, ``hi80``) of one forecast ``[H, C(, Q)]``
    in original units (``scaler``: the training one)."""
    m, found = config.model, {}
    pred = sorted_quantiles(pred, m.quantiles)
    for i, q in enumerate(m.quantiles):
        found[f"q{round(100 * q)}"] = scaler.inverse(pred[..., i].double().numpy())
    offsets = state.get("conformal")
    if offsets is not None:
        for name, _, lo, hi in intervals(pred, m.quantiles, torch.as_tensor(offsets).float(), m.level):
            found[f"lo{name}"], found[f"hi{name}"] = (scaler.inverse(b.double().numpy()) for b in (lo, hi))
    return found
