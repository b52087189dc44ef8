"""Covariates made from the time index (calendar, holidays) and static per-series features.

Calendar features need no network: each of ``hour``, ``dow`` (day of week), ``dom`` (day of
month), ``doy`` (day of year) and ``month`` becomes a sine and a cosine of its phase, so December
is next to January. Holidays come from the ``holidays`` package (``pip install holidays``; not a
dependency: it needs python-dateutil < 3, the pinned stack has 4), as a 0/1 column for one
country code. Static features come from a side CSV in the long layout: one row per ``unique_id``.

>>> import pandas as pd
>>> values, names = calendar_features(pd.date_range("2024-01-01", periods=3, freq="6h"), ["hour"])
>>> names, values.round(3).tolist()
(['hour_sin', 'hour_cos'], [[0.0, 1.0], [1.0, 0.0], [0.0, -1.0]])
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from sigplex.core.errors import UserError, require

#: calendar feature -> (what it counts from the time index, period)
CALENDAR = {"hour": ("hour", 24), "dow": ("dayofweek", 7), "dom": ("day", 31), "doy": ("dayofyear", 366),
            "month": ("month", 12)}


def calendar_features(dates, names: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """``[len(dates), 2 * len(names)]`` sine/cosine features of ``dates`` and their column names."""
    columns, out = [], []
    for name in names:
        if name not in CALENDAR:
            raise UserError(f"data.calendar: unknown feature {name!r}; expected some of {', '.join(CALENDAR)}")
        attribute, period = CALENDAR[name]
        count = np.asarray(getattr(dates, attribute), dtype=np.float64) - (attribute in ("day", "dayofyear", "month"))
        angle = 2 * np.pi * count / period
        out += [np.sin(angle), np.cos(angle)]
        columns += [f"{name}_sin", f"{name}_cos"]
    return np.stack(out, 1) if out else np.zeros((len(dates), 0)), columns


def holiday_flags(dates, country: str) -> np.ndarray:
    """``[len(dates), 1]``: 1.0 on the public holidays of ``country`` (e.g. ``US``, ``DE``), else 0.0."""
    try:
        import holidays
    except ImportError:
        raise UserError("data.holidays needs the holidays package (pip install holidays); it is not installed") from None
    try:
        calendar = holidays.country_holidays(country, years=sorted(set(int(y) for y in dates.year)))
    except (KeyError, NotImplementedError):
        raise UserError(f"data.holidays: unknown country code {country!r}; expected one such as US, GB or DE") from None
    return np.asarray([d.date() in calendar for d in dates], dtype=np.float64)[:, None]


def read_static(path, series: Sequence[str], columns: Sequence[str]) -> np.ndarray:
    """``[len(series), len(columns)]`` static features of each series from a long-layout side CSV
    (``unique_id`` and the numeric ``columns``, one row per series)."""
    pd = require("pandas", "ts", "reading static features")
    path = Path(path)
    if not path.is_file():
        raise UserError(f"data.static: {path}: no such file; expected a CSV with unique_id and the data.stat_exog columns")
    try:
        df = pd.read_csv(path)
    except Exception as exc:  # pandas raises several parser errors
        raise UserError(f"data.static: {path}: not a readable CSV file ({type(exc).__name__})") from None
    for col in ["unique_id", *columns]:
        if col not in df.columns:
            raise UserError(f"data.static: {path}: column {col!r} is missing; expected unique_id and "
                            f"{', '.join(columns)}")
    df["unique_id"] = df["unique_id"].astype(str)
    if df["unique_id"].duplicated().any():
        raise UserError(f"data.static: {path}: series {df['unique_id'][df['unique_id'].duplicated()].iloc[0]!r} has "
                        "two rows; expected one row per unique_id")
    table = df.set_index("unique_id")
    absent = [s for s in series if s not in table.index]
    if absent:
        raise UserError(f"data.static: {path}: no row for series {absent[0]!r}; expected one row per unique_id")
    values = table.loc[list(series), list(columns)].apply(pd.to_numeric, errors="coerce")
    bad = values.isna().any()
    if bad.any():
        raise UserError(f"data.static: {path}: column {str(bad[bad].index[0])!r} is not numeric or is empty; "
                        "expected a number for every series")
    return values.to_numpy(np.float64)
