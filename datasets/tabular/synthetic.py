"""A synthetic hourly multivariate series (the ts_forecast embedded default) and its cached CSV.

Each channel has a level and trend, daily and weekly seasonality with its own amplitudes and
phases, a lagged copy of the previous channel (cross-channel lag), AR(1) noise and white noise.
The CSV is written once, atomically, under ``$SIGPLEX_CACHE/ts_forecast/`` (default
``~/.cache/sigplex``) and read back through :func:`~sigplex.datasets.tabular.read_series`.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from sigplex.core.cache import cache_root


def make_synthetic(n_rows: int = 14400, n_channels: int = 7, seed: int = 0, start: str = "2020-01-01"):
    """The generated series as a wide pandas DataFrame: ``date`` + ``ch0 .. ch{n-1}`` (hourly)."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    lag_max = 24
    t = np.arange(-lag_max, n_rows, dtype=np.float64)[:, None]  # extra history for the lags
    daily_amp = rng.uniform(0.8, 2.0, n_channels)
    weekly_amp = rng.uniform(0.3, 1.0, n_channels)
    phase_d = rng.uniform(0, 2 * np.pi, n_channels)
    phase_w = rng.uniform(0, 2 * np.pi, n_channels)
    trend = rng.uniform(-1.0, 1.0, n_channels) / n_rows * 3
    level = rng.uniform(-2, 5, n_channels)
    base = (level + trend * t
            + daily_amp * np.sin(2 * np.pi * t / 24 + phase_d)
            + 0.3 * daily_amp * np.sin(4 * np.pi * t / 24 + 2 * phase_d)
            + weekly_amp * np.sin(2 * np.pi * t / 168 + phase_w))
    ar = np.zeros_like(base)
    eps = rng.normal(0, 0.15, base.shape)
    for i in range(1, len(ar)):  # data generation, not a forward pass
        ar[i] = 0.9 * ar[i - 1] + eps[i]
    signal = base + ar
    lags = rng.integers(2, lag_max + 1, n_channels)
    mixed = signal[lag_max:].copy()
    for c in range(1, n_channels):  # channel c follows channel c-1 with a lag
        mixed[:, c] += 0.6 * signal[lag_max - lags[c]: lag_max - lags[c] + n_rows, c - 1]
    mixed += rng.normal(0, 0.1, mixed.shape)
    df = pd.DataFrame(mixed.astype(np.float32), columns=[f"ch{c}" for c in range(n_channels)])
    df.insert(0, "date", pd.date_range(start, periods=n_rows, freq="h"))
    return df


def cache_dir() -> Path:
    """``$SIGPLEX_CACHE/ts_forecast`` (default ``~/.cache/sigplex/ts_forecast``)."""
    return cache_root() / "ts_forecast"


def embedded_csv(n_rows: int = 14400, n_channels: int = 7, seed: int = 0) -> Path:
    """Path of the generated CSV, writing it atomically on first use."""
    from sigplex.core.fileio import atomic_path

    path = cache_dir() / f"synthetic_v1_r{n_rows}_c{n_channels}_s{seed}.csv"
    if not path.is_file():
        df = make_synthetic(n_rows, n_channels, seed)
        with atomic_path(path, overwrite=True) as tmp:
            df.to_csv(tmp, index=False, float_format="%.5f")
    return path
