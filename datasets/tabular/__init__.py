"""Tabular time series: CSV reader (wide ETT layout and long unique_id/ds/y layout), the
long-term forecasting protocol (splits, train-only scaler, sliding windows) and a synthetic
multivariate generator. Needs pandas (``pip install 'sigplex[ts]'``); torch only for windows.
"""
from .covariates import calendar_features, holiday_flags, read_static
from .protocol import Scaler, SplitPlan, WindowDataset, plan_splits, rows_per_month, season_length
from .reader import SeriesFrame, future_dates, read_series, write_series
from .synthetic import embedded_csv, make_synthetic

__all__ = [
    "Scaler", "SeriesFrame", "SplitPlan", "WindowDataset", "calendar_features", "embedded_csv", "future_dates",
    "holiday_flags", "make_synthetic", "plan_splits", "read_series", "read_static", "rows_per_month",
    "season_length", "write_series",
]
