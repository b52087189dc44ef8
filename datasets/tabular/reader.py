"""Read multivariate series from CSV (wide ETT layout or long ``unique_id, ds, y``) with clear errors.

* **wide** — one date column (``date`` as in ETT, or any name via ``date_column``) and one
  numeric column per series;
* **long** — neuralforecast's layout: ``unique_id``, ``ds``, ``y`` (one row per series and time).

Covariate columns (``hist_exog`` known only in the past, ``futr_exog`` known ahead) are left out of
the targets and read into ``SeriesFrame.exog``. With future-known covariates, rows after the last
observed target value (empty target cells) carry their values for the horizon.

Both give a :class:`SeriesFrame`: sorted timestamps, a float array ``[time, series]`` and the
series names. Problems raise :class:`~sigplex.core.errors.UserError` naming the file, the column
and what was expected (missing date column, non-numeric values, missing values — with the
``data.fill=ffill|interpolate`` fix — duplicate timestamps).

>>> import pandas as pd
>>> df = pd.DataFrame({"date": pd.date_range("2024-01-01", periods=4, freq="h"), "a": [1.0, 2, 3, 4]})
>>> s = read_series(df)
>>> s.values.shape, s.columns, s.freq
((4, 1), ['a'], 'h')
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Sequence

import numpy as np

from sigplex.core.errors import UserError, require
from sigplex.core.limits import check_size

DATE_NAMES = ("date", "ds", "datetime", "timestamp", "time")
LONG_COLUMNS = ("unique_id", "ds", "y")


@dataclass
class SeriesFrame:
    """A multivariate series: ``dates`` (pandas DatetimeIndex), ``values`` float64 ``[T, C]``."""

    dates: "object"
    values: np.ndarray
    columns: list[str]
    source: str = "<frame>"
    layout: str = "wide"
    date_column: str = "date"
    freq: str | None = None
    #: ``read_csv`` options the file was read with (``sep``, ``decimal``); outputs are written alike
    dialect: dict = field(default_factory=dict)
    #: covariates over these rows and the future rows after them (``[T + F, K]``; past-only ones first)
    exog: "SeriesFrame | None" = None
    #: how many of ``exog``'s columns are past-only (``hist_exog``; zero in the future rows)
    n_hist: int = 0

    def __len__(self) -> int:
        return len(self.values)


def _pd():
    return require("pandas", "ts", "reading time series CSV files")


def _line(position: int) -> int:
    """The 1-based file line of data row ``position`` (the header is line 1)."""
    return int(position) + 2


def _pandas_freq(dates) -> str | None:
    """``pd.infer_freq`` of three or more ``dates`` in their order as a string (None: no regular step)."""
    pd = _pd()
    if len(dates) < 3:
        return None
    import warnings

    with warnings.catch_warnings():  # pandas 3 announces an offset return type; keep the string
        warnings.simplefilter("ignore")
        found = pd.infer_freq(pd.DatetimeIndex(dates))
    return getattr(found, "freqstr", found)


def infer_freq(dates) -> str | None:
    """The frequency string of ``dates`` (pandas alias), from ``infer_freq`` or the typical step."""
    pd = _pd()
    if len(dates) < 2:
        return None
    freq = _pandas_freq(dates)
    if freq is None:
        step = pd.Series(dates).diff().dropna().mode()
        if len(step) == 0 or step.iloc[0] <= pd.Timedelta(0):
            return None
        freq = pd.tseries.frequencies.to_offset(step.iloc[0]).freqstr
    return freq


def future_dates(last, freq: str, periods: int):
    """``periods`` timestamps after ``last`` at ``freq``."""
    pd = _pd()
    return pd.date_range(start=last, periods=periods + 1, freq=freq)[1:]


def _numeric(df, columns: Sequence[str], source: str, decimal: str = "."):
    """The ``columns`` as float64; text or an infinite value is a one-line error naming the line. Missing
    values stay NaN (``data.fill`` decides). ``decimal=","``: a column pandas left as text for one bad
    cell still reads its decimal commas, so the error names the bad cell."""
    pd = _pd()
    out = {}
    for col in columns:
        raw = df[col]
        text = raw.astype(str).str.strip()
        as_text = decimal == "," and not pd.api.types.is_numeric_dtype(raw)
        num = pd.to_numeric(text.str.replace(",", ".", regex=False) if as_text else raw, errors="coerce")
        bad = num.isna() & raw.notna() & (text != "")
        if bad.any():
            pos = int(np.flatnonzero(bad.to_numpy())[0])
            raise UserError(f"{source}: column {col!r} is not numeric (value {raw.iloc[pos]!r} on line "
                            f"{_line(pos)}); expected numbers in every series column (choose columns with data.targets)")
        infinite = np.isinf(num.to_numpy(np.float64))
        if infinite.any():
            pos = int(np.flatnonzero(infinite)[0])
            raise UserError(f"{source}: column {col!r} holds an infinite value (value {text.iloc[pos]!r} on line "
                            f"{_line(pos)}); expected finite numbers (missing values may be left empty: data.fill)")
        out[col] = num.astype("float64")
    return pd.DataFrame(out, index=df.index)


def _fill(values, dates, columns, fill: str, source: str, what: str = "column"):
    """Fill or reject missing values; ``values`` is a DataFrame aligned with ``dates``."""
    missing = values.isna()
    if not missing.to_numpy().any():
        return values
    if fill == "ffill":
        return values.ffill().bfill()
    if fill == "interpolate":
        return values.interpolate(method="linear", limit_direction="both")
    counts = missing.sum()
    col = next(c for c in columns if counts[c] > 0)
    first = int(np.flatnonzero(missing[col].to_numpy())[0])
    raise UserError(f"{source}: {what} {col!r} has {int(counts[col])} missing value(s) (first at "
                    f"{dates[first]}); fill them with --set data.fill=ffill or --set data.fill=interpolate")


def _to_datetime(raw, **kwargs):
    """``pd.to_datetime`` with unparsable values as NaT; timestamps whose UTC offsets differ (a
    daylight-saving change) are read as UTC instead of failing."""
    pd = _pd()
    import warnings

    with warnings.catch_warnings():  # pandas warns when it cannot infer one format; NaT says so
        warnings.simplefilter("ignore")
        try:
            return pd.to_datetime(raw, errors="coerce", **kwargs)
        except ValueError as exc:  # "Mixed timezones detected"
            if "timezone" not in str(exc).lower() and "offset" not in str(exc).lower():
                raise
            return pd.to_datetime(raw, errors="coerce", utc=True, **kwargs)


def _regular(dates) -> bool:
    """Whether ``dates`` in file order step regularly (a pandas frequency, calendar-aware: months too)."""
    return len(dates) < 3 or _pandas_freq(dates) is not None


def _parse_dates(raw, source: str, column: str, dayfirst: bool | None = None):
    """Timestamps of ``column``. ``dayfirst`` None: ``13/06/2000`` style dates are read day-first
    when the month-first reading fails on some row or is irregular while the day-first one is
    regular; a file that reads regularly both ways (every day <= 12) stays month-first, as pandas
    reads it. True / False force the order."""
    pd = _pd()
    if dayfirst is not None:
        dates = _to_datetime(raw, dayfirst=dayfirst)
    else:
        dates = _to_datetime(raw)
        if raw.astype(str).str.contains(r"^\s*\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}", regex=True).any():
            day = _to_datetime(raw, dayfirst=True)
            if not day.isna().any() and (dates.isna().any() or (not _regular(dates) and _regular(day))):
                dates = day
    bad = dates.isna().to_numpy()
    if bad.any():
        pos = int(np.flatnonzero(bad)[0])
        raise UserError(f"{source}: column {column!r} value {raw.iloc[pos]!r} on line {_line(pos)} is not a date; "
                        "expected timestamps such as 2016-07-01 00:00:00")
    return pd.DatetimeIndex(dates)


def _csv_dialect(path: Path) -> dict:
    """``read_csv`` options for a header split by ``;`` (decimal commas) or tabs instead of commas."""
    with open(path, encoding="utf-8-sig", errors="replace") as fh:
        header = fh.readline()
    if "," in header:
        return {}
    if ";" in header:
        return {"sep": ";", "decimal": ","}
    if "\t" in header:
        return {"sep": "\t"}
    return {}


def _read_long(df, source: str, targets: Sequence[str] | None, fill: str, dayfirst: bool | None = None,
               hist: Sequence[str] = (), futr: Sequence[str] = ()) -> SeriesFrame:
    pd = _pd()
    missing = [c for c in LONG_COLUMNS if c not in df.columns]
    if missing:
        raise UserError(f"{source}: column {missing[0]!r} is missing; the long layout needs columns unique_id, ds, y")
    absent = [c for c in [*hist, *futr] if c not in df.columns]
    if absent:
        key = "data.hist_exog" if absent[0] in hist else "data.futr_exog"
        raise UserError(f"{source}: covariate column {absent[0]!r} ({key}) not found (columns: "
                        f"{', '.join(map(str, df.columns[:8]))})")
    df = df.copy()
    df["ds"] = _parse_dates(df["ds"], source, "ds", dayfirst)
    df["y"] = _numeric(df, ["y"], source)["y"]
    df["unique_id"] = df["unique_id"].astype(str)
    if targets:
        absent = [t for t in targets if t not in set(df["unique_id"])]
        if absent:
            raise UserError(f"{source}: data.targets: series {absent[0]!r} is not among the unique_id values")
        df = df[df["unique_id"].isin(list(targets))]
    dup = df.duplicated(["unique_id", "ds"])
    if dup.any():
        row = df[dup].iloc[0]
        raise UserError(f"{source}: series {row['unique_id']!r} has two rows for ds={row['ds']}; "
                        "expected one value per unique_id and timestamp")
    wide = df.pivot(index="ds", columns="unique_id", values="y").sort_index()
    columns = list(targets) if targets else [str(c) for c in wide.columns]
    wide = wide[columns]
    dates = pd.DatetimeIndex(wide.index)
    if hist or futr:
        numeric = _numeric(df, [*hist, *futr], source)
        exog = [_per_series(df.assign(**{c: numeric[c]}), c, columns) for c in [*hist, *futr]]
        n_hist = sum(e.shape[1] for e in exog[:len(hist)])
        frame = SeriesFrame(dates, np.empty((0, 0)), columns, source, "long", "ds", infer_freq(dates))
        return _with_exog(frame, wide, pd.concat(exog, axis=1), n_hist, bool(futr), fill, "series")
    wide = _fill(wide, dates, columns, fill, source, what="series")
    return SeriesFrame(dates, wide.to_numpy(np.float64), columns, source, "long", "ds", infer_freq(dates))


def _per_series(df, column: str, series: list[str]):
    """A long covariate column as wide columns: one column ``name`` when every series has the same values
    (a shared driver such as temperature), else ``name[series]`` per series (a price per product)."""
    table = df.pivot(index="ds", columns="unique_id", values=column).sort_index()[series]
    same = table.nunique(axis=1, dropna=False).le(1).all()
    if same:
        return table.iloc[:, :1].set_axis([column], axis=1)
    return table.set_axis([f"{column}[{s}]" for s in series], axis=1)


def _with_exog(frame: SeriesFrame, targets, exog, n_hist: int, future: bool, fill: str, what: str) -> SeriesFrame:
    """``frame`` with its targets and covariates (DataFrames over the same dates). With future-known
    covariates (``future``) the rows after the last observed target are future rows: their covariates
    must be complete, past-only ones are set to 0 there. ``data.fill`` covers the observed rows only."""
    pd = _pd()
    source, dates = frame.source, frame.dates
    observed = np.flatnonzero(targets.notna().any(axis=1).to_numpy())
    n = int(observed[-1]) + 1 if future and len(observed) else len(targets)
    if n == 0:
        raise UserError(f"{source}: no observed target value; expected history before the future rows")
    cols = [str(c) for c in targets.columns]
    values = _fill(targets.iloc[:n], dates[:n], cols, fill, source, what=what)
    names = [str(c) for c in exog.columns]
    past = _fill(exog.iloc[:n], dates[:n], names, fill, source, what="covariate")
    ahead = exog.iloc[n:].copy()
    ahead.iloc[:, :n_hist] = 0.0
    gaps = ahead.isna().any()
    if gaps.any():
        col = str(gaps[gaps].index[0])
        first = dates[n + int(np.flatnonzero(ahead[col].isna().to_numpy())[0])]
        raise UserError(f"{source}: future covariate {col!r} is empty at {first}, after the last observed target; "
                        "expected a value in every future row (data.futr_exog)")
    cov = SeriesFrame(dates, pd.concat([past, ahead]).to_numpy(np.float64), names, source, freq=frame.freq)
    return replace(frame, dates=dates[:n], values=values.to_numpy(np.float64), columns=cols, exog=cov, n_hist=n_hist)


def _find_date_column(columns, date_column: str, source: str) -> str:
    if date_column != "auto":
        if date_column not in columns:
            raise UserError(f"{source}: date column {date_column!r} not found (columns: "
                            f"{', '.join(map(str, columns[:8]))}); set data.date_column to the column of timestamps")
        return date_column
    lower = {str(c).lower(): c for c in columns}
    for name in DATE_NAMES:
        if name in lower:
            return lower[name]
    raise UserError(f"{source}: no date column (looked for {', '.join(DATE_NAMES)}; columns: "
                    f"{', '.join(map(str, columns[:8]))}); add one or set data.date_column=NAME")


def _header(path: Path, dialect: dict) -> list[str]:
    """The column names of ``path``'s first line (read alone: a header is checked before the file is parsed)."""
    import csv

    with open(path, encoding="utf-8-sig", errors="replace", newline="") as fh:
        return [c.strip() for c in next(csv.reader(fh, delimiter=dialect.get("sep", ",")), [])]


def read_series(source, *, date_column: str = "auto", targets: Sequence[str] | None = None,
                fill: str = "none", layout: str = "auto", dayfirst: bool | None = None,
                hist_exog: Sequence[str] = (), futr_exog: Sequence[str] = ()) -> SeriesFrame:
    """Read a CSV path (or a pandas DataFrame) into a :class:`SeriesFrame`.

    ``layout`` is ``auto`` (long when the columns ``unique_id, ds, y`` are present), ``wide``
    or ``long``; ``targets`` picks a subset of series; ``fill`` is ``none``, ``ffill`` or
    ``interpolate``; ``dayfirst`` forces the order of ``dd/mm`` dates (None: recognised).
    Files split by ``;`` (with decimal commas) or tabs are read too; timestamps whose UTC
    offset changes (daylight saving) are read as UTC. ``hist_exog`` / ``futr_exog`` name covariate
    columns (see the module docstring).
    """
    pd = _pd()
    dialect: dict = {}
    if isinstance(source, pd.DataFrame):
        df, name = source.reset_index(drop=True), "<dataframe>"
    else:
        path = Path(source)
        name = str(path)
        if not path.is_file():
            raise UserError(f"{path}: no such file; expected a CSV file of time series")
        # a parsed CSV holds about twice its text in memory (strings while parsing, then float64 columns)
        check_size(2 * path.stat().st_size, path, "the CSV file")
        dialect = _csv_dialect(path)
        header = _header(path, dialect)
        if header and layout != "long" and not set(LONG_COLUMNS) <= set(header):
            _find_date_column(header, date_column, name)  # before parsing thousands of columns
        try:
            df = pd.read_csv(path, **dialect)
        except Exception as exc:  # pandas raises several parser errors
            raise UserError(f"{path}: not a readable CSV file ({type(exc).__name__}: {str(exc).splitlines()[0]})") from None
    if fill not in ("none", "ffill", "interpolate"):
        raise UserError(f"data.fill: expected none, ffill or interpolate, got {fill!r}")
    if len(df) == 0:
        raise UserError(f"{name}: no data rows")
    is_long = set(LONG_COLUMNS) <= set(df.columns)
    if layout == "long" or (layout == "auto" and is_long):
        return replace(_read_long(df, name, targets, fill, dayfirst, hist_exog, futr_exog), dialect=dialect)
    dcol = _find_date_column(list(df.columns), date_column, name)
    dates = _parse_dates(df[dcol], name, dcol, dayfirst)
    exog = [*hist_exog, *futr_exog]
    for key, group in (("data.hist_exog", hist_exog), ("data.futr_exog", futr_exog)):
        absent = [c for c in group if c not in df.columns]
        if absent:
            raise UserError(f"{name}: covariate column {absent[0]!r} ({key}) not found (columns: "
                            f"{', '.join(map(str, df.columns[:8]))})")
    columns = list(targets) if targets else [c for c in df.columns if c != dcol and c not in exog]
    absent = [c for c in columns if c not in df.columns]
    if absent:
        raise UserError(f"{name}: data.targets: column {absent[0]!r} not found (columns: "
                        f"{', '.join(map(str, df.columns[:8]))})")
    if not columns:
        raise UserError(f"{name}: no series columns besides the date column {dcol!r}")
    values = _numeric(df, columns, name, dialect.get("decimal", "."))
    order = np.argsort(dates.values, kind="stable")
    dates, values = dates[order], values.iloc[order].reset_index(drop=True)
    if dates.has_duplicates:
        dup = dates[dates.duplicated()][0]
        raise UserError(f"{name}: column {dcol!r} has the timestamp {dup} twice; expected one row per time")
    if exog:
        covariates = _numeric(df, exog, name, dialect.get("decimal", ".")).iloc[order].reset_index(drop=True)
        frame = SeriesFrame(dates, np.empty((0, 0)), [], name, "wide", str(dcol), infer_freq(dates), dialect)
        return _with_exog(frame, values.set_axis([str(c) for c in columns], axis=1), covariates,
                          len(hist_exog), bool(futr_exog), fill, "column")
    values = _fill(values, dates, columns, fill, name)
    return SeriesFrame(dates, values.to_numpy(np.float64), [str(c) for c in columns], name, "wide", str(dcol),
                       infer_freq(dates), dialect)


def write_series(frame: SeriesFrame, path, *, overwrite: bool = False, bands: dict | None = None) -> Path:
    """Write ``frame`` as CSV in its own layout (wide: date + columns; long: unique_id, ds, y) and
    dialect (a ``;`` file with decimal commas is answered in kind), atomically. ``bands`` (``{suffix:
    [T, C]}``, e.g. quantiles ``q10``) add a column ``<series>_<suffix>`` beside each series (long: ``y_<suffix>``)."""
    pd = _pd()
    from sigplex.core.fileio import atomic_path

    path = Path(path)
    bands = bands or {}
    if frame.layout == "long":
        n, c = frame.values.shape
        df = pd.DataFrame({"unique_id": np.repeat(np.asarray(frame.columns, dtype=object)[None], n, 0).T.ravel(),
                           "ds": np.tile(frame.dates.values, c), "y": frame.values.T.ravel(),
                           **{f"y_{k}": np.asarray(v).T.ravel() for k, v in bands.items()}})
    else:
        parts = {}
        for i, col in enumerate(frame.columns):
            parts[col] = frame.values[:, i]
            parts.update({f"{col}_{k}": np.asarray(v)[:, i] for k, v in bands.items()})
        df = pd.DataFrame(parts)
        df.insert(0, frame.date_column, frame.dates)
    with atomic_path(path, overwrite=overwrite) as tmp:
        df.to_csv(tmp, index=False, float_format="%.7g", **frame.dialect)
    return path
