"""The long-term forecasting protocol: splits, a train-only scaler and sliding windows.

Splits follow Time-Series-Library: for ETT-like files (hourly or 15-minute steps with at least
20 months of rows) 12/4/4 months of 30 days; otherwise 70/10/20 of the rows. The validation and
test splits start ``lookback`` rows early so that their first window's input is history, and
**every** test window is kept (no ``drop_last``): a split of ``n`` rows holds
``n - lookback - horizon + 1`` windows.

>>> plan = plan_splits(1000, lookback=96, horizon=24, split="ratio", freq="D")
>>> plan.kind, plan.borders
('ratio', [(0, 700), (604, 800), (704, 1000)])
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sigplex.core.errors import UserError


def rows_per_month(freq: str | None) -> int | None:
    """Rows in 30 days at ``freq`` (None when the frequency is unknown or irregular)."""
    if not freq:
        return None
    import pandas as pd

    try:
        step = pd.Timedelta(pd.tseries.frequencies.to_offset(freq))
    except (ValueError, TypeError):
        return None
    if step <= pd.Timedelta(0):
        return None
    return int(round(pd.Timedelta(days=30) / step))


def season_length(freq: str | None) -> int | None:
    """Rows in one season of a series at ``freq``: a day for sub-daily steps, else a week of days
    (7, or 5 business days), a year of weeks (52), months (12) or quarters (4); None otherwise.

    >>> season_length("30min"), season_length("h"), season_length("D"), season_length("MS"), season_length("YS")
    (48, 24, 7, 12, None)
    """
    if not freq:
        return None
    import pandas as pd

    try:
        offset = pd.tseries.frequencies.to_offset(freq)
    except (ValueError, TypeError):
        return None
    name = offset.rule_code.split("-")[0]
    if offset.n == 1 and name in ("B", "C"):
        return 5
    if offset.n == 1 and name in ("M", "ME", "MS", "BM", "BME", "BMS", "SM", "SME", "SMS"):
        return 24 if name.startswith("S") else 12
    if offset.n == 1 and name in ("Q", "QE", "QS", "BQ", "BQE", "BQS"):
        return 4
    if offset.n == 1 and name == "W":
        return 52  # a year of weeks, as statsforecast's season_length for weekly data
    try:
        step = pd.Timedelta(offset)
    except (ValueError, TypeError):
        return None
    for span in (pd.Timedelta(days=1), pd.Timedelta(days=7)):
        if pd.Timedelta(0) < step < span and span % step == pd.Timedelta(0):
            return int(span // step)
    return None


@dataclass
class SplitPlan:
    """Row ranges ``[(start, end)]`` of train/val/test (val/test include ``lookback`` rows of history)."""

    kind: str
    borders: list[tuple[int, int]]

    @property
    def train_rows(self) -> tuple[int, int]:
        return self.borders[0]


def plan_splits(n_rows: int, *, lookback: int, horizon: int, split: str = "auto", freq: str | None = None,
                ratios: tuple[float, float, float] = (0.7, 0.1, 0.2), source: str = "data") -> SplitPlan:
    """Train/val/test borders under the ETT (12/4/4 months) or ratio (70/10/20) protocol."""
    need = lookback + horizon
    if n_rows < need:
        raise UserError(f"{source}: the series has {n_rows} rows but lookback + horizon = {lookback} + {horizon} = "
                        f"{need}; give a longer series or lower data.lookback / data.horizon")
    month = rows_per_month(freq)
    ett_ok = month in (720, 2880) and n_rows >= 20 * month
    kind = split
    if split == "auto":
        kind = "ett" if ett_ok else "ratio"
    if kind == "ett":
        if month is None or n_rows < 20 * month:
            raise UserError(f"{source}: data.split=ett needs at least 20 months of rows at a regular frequency "
                            f"(got {n_rows} rows, frequency {freq}); use data.split=ratio")
        a, b, c = 12 * month, 16 * month, 20 * month
        borders = [(0, a), (a - lookback, b), (b - lookback, c)]
    elif kind == "ratio":
        if abs(sum(ratios) - 1.0) > 1e-6 or min(ratios) <= 0:
            raise UserError(f"data.ratios: expected three positive fractions summing to 1, got {list(ratios)}")
        n_train = int(n_rows * ratios[0])
        n_test = int(n_rows * ratios[2])
        n_val = n_rows - n_train - n_test
        borders = [(0, n_train), (n_train - lookback, n_train + n_val), (n_rows - n_test - lookback, n_rows)]
    else:
        raise UserError(f"data.split: expected auto, ett or ratio, got {split!r}")
    for name, (s, e) in zip(("train", "val", "test"), borders):
        if s < 0 or e - s < need:
            raise UserError(f"{source}: the {name} split has {max(e - max(s, 0), 0)} rows, fewer than lookback + "
                            f"horizon = {need}; give a longer series (it has {n_rows} rows) or lower "
                            "data.lookback / data.horizon")
    return SplitPlan(kind, borders)


class Scaler:
    """Per-series standardisation ``(x - mean) / std`` fitted on the training rows only."""

    def __init__(self, mean: np.ndarray, std: np.ndarray):
        self.mean = np.asarray(mean, dtype=np.float64)
        std = np.asarray(std, dtype=np.float64)
        self.std = np.where(std > 1e-12, std, 1.0)

    @classmethod
    def fit(cls, values: np.ndarray) -> "Scaler":
        return cls(values.mean(axis=0), values.std(axis=0))

    def transform(self, values: np.ndarray) -> np.ndarray:
        return (values - self.mean) / self.std

    def inverse(self, values: np.ndarray) -> np.ndarray:
        return values * self.std + self.mean


class WindowDataset:
    """Sliding windows over rows ``[start, end)`` of a normalised series: item i is
    ``{"x": rows[start+i : start+i+lookback], "y": the next horizon rows}`` (float32 tensors).

    With covariates ``cov`` (``[T, K]``, aligned with ``values``) an item also holds ``"cov"``, the
    covariates over the lookback and the horizon, whose first ``n_hist`` (past-only) columns are zero
    over the horizon; with static features ``stat`` (``[n_series, S]``) it holds ``"stat"``."""

    def __init__(self, values: np.ndarray, start: int, end: int, lookback: int, horizon: int, *,
                 scaler: Scaler | None = None, dates=None, columns=None, cov: np.ndarray | None = None,
                 n_hist: int = 0, stat: np.ndarray | None = None):
        import torch

        self.data = torch.as_tensor(np.ascontiguousarray(values[start:end]), dtype=torch.float32)
        self.start, self.end, self.lookback, self.horizon = start, end, lookback, horizon
        self.scaler, self.columns = scaler, list(columns or [])
        self.dates = None if dates is None else dates[start:end]
        self.cov = None if cov is None else torch.as_tensor(np.ascontiguousarray(cov[start:end]), dtype=torch.float32)
        self.n_hist = n_hist
        self.stat = None if stat is None else torch.as_tensor(stat, dtype=torch.float32)

    def __len__(self) -> int:
        return max(len(self.data) - self.lookback - self.horizon + 1, 0)

    def __getitem__(self, i: int):
        if not 0 <= i < len(self):
            raise IndexError(i)
        x = self.data[i:i + self.lookback]
        item = {"x": x, "y": self.data[i + self.lookback:i + self.lookback + self.horizon]}
        if self.cov is not None:
            cov = self.cov[i:i + self.lookback + self.horizon].clone()
            cov[self.lookback:, :self.n_hist] = 0.0          # past-only covariates are unknown ahead
            item["cov"] = cov
        if self.stat is not None:
            item["stat"] = self.stat
        return item

    def cutoff(self, i: int):
        """The last input timestamp of window ``i`` (the forecast origin)."""
        return None if self.dates is None else self.dates[i + self.lookback - 1]

    def window_at(self, cutoff) -> int:
        """Index of the window whose forecast origin is ``cutoff`` (a timestamp or its string)."""
        import pandas as pd

        if self.dates is None:
            raise UserError("data.cutoffs: this split has no timestamps")
        ts = pd.Timestamp(cutoff)
        if self.dates.tz is not None and ts.tzinfo is None:  # a naive cut-off on a UTC-offset series
            ts = ts.tz_localize(self.dates.tz)
        pos = self.dates.get_indexer([ts])[0]
        i = pos - self.lookback + 1
        if pos < 0 or not 0 <= i < len(self):
            first, last = self.cutoff(0), self.cutoff(len(self) - 1)
            raise UserError(f"data.cutoffs: {cutoff!r} is not a forecast origin of this split "
                            f"(expected a timestamp between {first} and {last})")
        return int(i)
