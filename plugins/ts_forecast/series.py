"""The fitted state of a forecast run and reading series against it.

The training scaler, the series' names and the time step are saved with the run
(``prepared.state``: ``scaler_mean``, ``scaler_std``, ``columns``, ``freq``), so prediction and
``evaluate --data`` normalise new series exactly as training did, with nothing but the run.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from sigplex.core.errors import UserError
from sigplex.datasets.tabular import Scaler, SeriesFrame, read_series, season_length


def read_frame(config, source) -> SeriesFrame:
    """Read a CSV (wide or long) with the run's ``data`` reading options."""
    d = config.data
    return read_series(source, date_column=d.date_column, targets=d.targets or None, fill=d.fill, layout=d.layout,
                       dayfirst=d.dayfirst, hist_exog=d.hist_exog, futr_exog=d.futr_exog)


def fitted_state(scaler: Scaler, frame: SeriesFrame) -> dict:
    """What prediction needs from training: the scaler as arrays, the series' names and the time step."""
    return {"scaler_mean": np.asarray(scaler.mean, np.float64), "scaler_std": np.asarray(scaler.std, np.float64),
            "columns": list(frame.columns), "freq": frame.freq}


def scaler_of(state: dict) -> Scaler:
    if "scaler_mean" not in state or "scaler_std" not in state:
        raise UserError("the run holds no training scaler (prepared.state); was it trained with this task?")
    return Scaler(np.asarray(state["scaler_mean"]), np.asarray(state["scaler_std"]))


def as_trained(frame: SeriesFrame, state: dict) -> SeriesFrame:
    """``frame`` with its series in the training order (matched by name when the names agree).

    The scaler and the model are per series by position: a file with the training series in
    another column order is reordered; a different number of series is an error.
    """
    columns = list(state.get("columns") or [])
    n = len(np.asarray(state.get("scaler_mean", [])))
    if frame.values.shape[1] != n:
        raise UserError(f"{frame.source}: has {frame.values.shape[1]} series but the model was trained on {n}; "
                        "give the same columns (or data.targets) as in training")
    if columns and frame.columns != columns and sorted(frame.columns) == sorted(columns):
        order = [frame.columns.index(c) for c in columns]
        return replace(frame, values=frame.values[:, order], columns=columns)
    return frame


def warn_short_lookback(frame: SeriesFrame, lookback: int) -> None:
    """Warn when ``lookback`` rows do not cover one season of the data (e.g. 96 ten-minute rows < a day)."""
    import warnings

    season = season_length(frame.freq)
    if season and season > lookback:
        warnings.warn(f"{frame.source}: data.lookback={lookback} rows cover less than one cycle of the data "
                      f"({season} rows at {frame.freq} steps), which the model then cannot see; consider "
                      f"--set data.lookback={season} or more", UserWarning, stacklevel=2)


def write_samples(state: dict, lookback: int, folder, data_config=None) -> list:
    """Valid inputs for self-checks: the run's series over ``2 * lookback`` rows at its time step, as a
    comma-separated CSV and as a ';'-separated one with decimal commas. A run with covariate columns
    gets them too, and ``data.horizon`` future rows (empty targets) when some are known ahead."""
    from pathlib import Path

    import pandas as pd

    from sigplex.datasets.tabular.synthetic import make_synthetic

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    columns = list(state.get("columns") or [f"ch{c}" for c in range(len(state["scaler_mean"]))])
    hist, futr = (list(data_config.hist_exog), list(data_config.futr_exog)) if data_config else ([], [])
    ahead = data_config.horizon if futr else 0
    frame = make_synthetic(2 * lookback + ahead, len(columns) + len(hist) + len(futr), seed=5)
    frame = frame.set_axis(["date", *columns, *hist, *futr], axis=1)
    frame["date"] = pd.date_range("2024-01-01", periods=len(frame), freq=state.get("freq") or "h")
    if ahead:
        frame.loc[frame.index[-ahead:], columns + hist] = float("nan")
    comma, semicolon = folder / "series.csv", folder / "series_semicolon.csv"
    frame.to_csv(comma, index=False)
    frame.to_csv(semicolon, index=False, sep=";", decimal=",")
    return [comma, semicolon]
