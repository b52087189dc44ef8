"""The forecaster's inputs besides the targets: covariates and static features, scaled as in training.

Covariate columns, in this order: past-only (``data.hist_exog``), future-known (``data.futr_exog``),
calendar features (``data.calendar``) and the holiday flag (``data.holidays``); the last three are
known ahead. They are standardised with statistics of the training rows (``cov_mean``,
``cov_std`` in the run's state, with their names ``cov_columns``); static features
(``data.static``) are standardised across the series and saved with the run (``static``), so
``predict`` needs no side file.
"""
from __future__ import annotations

import numpy as np

from sigplex.core.errors import UserError
from sigplex.datasets.tabular import (
    Scaler,
    SeriesFrame,
    WindowDataset,
    calendar_features,
    future_dates,
    holiday_flags,
    read_static,
)


def covariates(config, frame: SeriesFrame, horizon: int = 0, freq: str | None = None):
    """``(values [len(frame) + horizon, K] or None, names, n_hist)``, unscaled. ``horizon > 0``: the rows
    after the frame's last target value, from its future rows (data.futr_exog) and the time index."""
    d, n = config.data, len(frame)
    blocks, names, n_hist = [], [], 0
    dates = frame.dates if not horizon else frame.dates.append(future_dates(frame.dates[-1], freq, horizon))
    if frame.exog is not None:
        exog, n_hist = frame.exog, frame.n_hist
        values = exog.values[:n + horizon]
        if horizon and exog.values.shape[1] > n_hist:
            ahead = len(exog) - n
            if ahead < horizon:
                raise UserError(f"{frame.source}: future covariate {exog.columns[n_hist]!r} has {ahead} row(s) after "
                                f"the last observed target; the horizon needs {horizon} (rows with empty target "
                                "cells carrying the future-known values)")
            if not (exog.dates[n:n + horizon] == dates[n:]).all():
                raise UserError(f"{frame.source}: the future rows start at {exog.dates[n]}; expected the "
                                f"{horizon} steps after {frame.dates[-1]} at the series' time step ({freq})")
        elif horizon:
            values = np.concatenate([values, np.zeros((horizon, values.shape[1]))])
        blocks.append(values)
        names += list(exog.columns)
    if d.calendar:
        values, columns = calendar_features(dates, d.calendar)
        blocks.append(values)
        names += columns
    if d.holidays:
        blocks.append(holiday_flags(dates, d.holidays))
        names.append(f"holiday_{d.holidays}")
    return (np.concatenate(blocks, 1) if blocks else None), names, n_hist


def covariate_state(config, frame: SeriesFrame, train_rows: tuple[int, int]) -> tuple[dict, np.ndarray | None]:
    """The fitted state of the covariates and static features, and the scaled covariates ``[T, K]``."""
    cov, names, n_hist = covariates(config, frame)
    state: dict = {}
    if cov is not None:
        cov = cov[:len(frame)]
        scaler = Scaler.fit(cov[train_rows[0]:train_rows[1]])
        state.update(cov_mean=scaler.mean, cov_std=scaler.std, cov_columns=names, n_hist=n_hist)
        cov = scaler.transform(cov)
    d = config.data
    if d.static:
        if frame.layout != "long":
            raise UserError(f"data.static: {frame.source} is in the wide layout; static features apply to the long "
                            "layout (one unique_id per series)")
        stat = read_static(d.static, frame.columns, d.stat_exog)
        state["static"] = Scaler.fit(stat).transform(stat)
    return state, cov


def exog_sizes(state: dict) -> dict:
    """``model.n_hist``, ``n_futr`` and ``n_stat`` of a run's state."""
    n_cov, n_hist = len(state.get("cov_columns") or []), int(state.get("n_hist") or 0)
    stat = state.get("static")
    return {"n_hist": n_hist, "n_futr": n_cov - n_hist, "n_stat": 0 if stat is None else int(np.shape(stat)[1])}


def scaled_covariates(config, state: dict, frame: SeriesFrame, horizon: int = 0, freq: str | None = None):
    """The frame's covariates (+ ``horizon`` future rows) scaled with the run's statistics, or None when the
    run has none; a covariate of the run missing from the frame is a one-line error naming it."""
    if not state.get("cov_columns"):
        return None
    values, names, _ = covariates(config, frame, horizon, freq)
    expected = list(state["cov_columns"])
    if names != expected:
        missing = [c for c in expected if c not in names] or expected
        raise UserError(f"{frame.source}: covariate column {missing[0]!r} is missing; the run was trained with "
                        f"covariates {', '.join(expected)}")
    return Scaler(state["cov_mean"], state["cov_std"]).transform(values[:len(frame) + horizon])


def predict_inputs(config, state: dict, frame: SeriesFrame, freq: str):
    """``(cov [1, L + H, K], stat [1, C, S])`` tensors for the window ending at the frame's last row, or
    what of them the run has none of (None)."""
    import torch

    d = config.data
    cov = scaled_covariates(config, state, frame, d.horizon, freq)
    if cov is not None:
        cov = torch.as_tensor(cov[-(d.lookback + d.horizon):], dtype=torch.float32)[None]
    stat = state.get("static")
    return cov, (None if stat is None else torch.as_tensor(np.asarray(stat), dtype=torch.float32)[None])


def model_inputs(batch: dict, cov=None, stat=None) -> tuple:
    """The model's positional inputs ``(x[, cov[, stat]])`` of a batch (or of ``x`` and the given tensors):
    static features alone come with an empty ``cov``."""
    x = batch["x"]
    cov = batch.get("cov", cov)
    stat = batch.get("stat", stat)
    if stat is not None:
        if stat.shape[0] != x.shape[0]:
            stat = stat.expand(x.shape[0], -1, -1)
        return x, (cov if cov is not None else x.new_zeros((x.shape[0], 0, 0))), stat
    return (x,) if cov is None else (x, cov)


def windows(values, frame: SeriesFrame, start: int, end: int, config, scaler: Scaler, cov=None,
            state=None) -> WindowDataset:
    """Sliding windows over rows ``[start, end)`` with the run's covariates and static features."""
    d, state = config.data, state or {}
    return WindowDataset(values, start, end, d.lookback, d.horizon, scaler=scaler, dates=frame.dates,
                         columns=frame.columns, cov=cov, n_hist=int(state.get("n_hist") or 0), stat=state.get("static"))


def example_inputs(config, state: dict):
    """A random input of the model (for export and checks): ``x``, or ``(x, cov[, stat])`` with covariates."""
    import torch

    d, m = config.data, config.model
    x = torch.randn(1, d.lookback, m.n_vars or len(state.get("columns") or []) or 1)
    n_cov = len(state.get("cov_columns") or [])
    stat = state.get("static")
    cov = torch.randn(1, d.lookback + d.horizon, n_cov) if n_cov else None
    inputs = model_inputs({"x": x}, cov, None if stat is None else torch.randn(1, *np.shape(stat)))
    return inputs[0] if len(inputs) == 1 else inputs
