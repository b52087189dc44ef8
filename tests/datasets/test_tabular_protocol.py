"""Forecasting protocol of sigplex.datasets.tabular: ETT/ratio splits, train-only scaler, window counts."""
import numpy as np
import pytest

pytest.importorskip("pandas")

from sigplex.core.errors import UserError
from sigplex.datasets.tabular import Scaler, WindowDataset, make_synthetic, plan_splits, rows_per_month, season_length


def test_ett_split_is_12_4_4_months_for_hourly_and_15_min():
    plan = plan_splits(17420, lookback=96, horizon=96, split="auto", freq="h")
    assert plan.kind == "ett"
    assert plan.borders == [(0, 8640), (8640 - 96, 11520), (11520 - 96, 14400)]
    plan = plan_splits(69680, lookback=96, horizon=96, split="auto", freq="15min")
    assert plan.kind == "ett" and plan.borders[2] == (46080 - 96, 57600)


def test_auto_uses_ratio_for_short_or_non_ett_frequency():
    assert plan_splits(14399, lookback=96, horizon=96, freq="h").kind == "ratio"
    assert plan_splits(20000, lookback=96, horizon=96, freq="D").kind == "ratio"
    plan = plan_splits(1000, lookback=50, horizon=20, split="ratio", freq="h")
    assert plan.borders == [(0, 700), (650, 800), (750, 1000)]
    with pytest.raises(UserError, match="data.split=ett needs at least 20 months"):
        plan_splits(1000, lookback=50, horizon=20, split="ett", freq="h")


def test_too_short_series_error_names_lookback_and_horizon():
    with pytest.raises(UserError, match=r"my\.csv: the series has 150 rows but lookback \+ horizon = 96 \+ 96 = 192"):
        plan_splits(150, lookback=96, horizon=96, freq="h", source="my.csv")
    with pytest.raises(UserError, match="the val split has"):
        plan_splits(400, lookback=96, horizon=96, freq="h")


@pytest.mark.parametrize("lookback,horizon", [(96, 96), (96, 192), (48, 24)])
def test_test_split_keeps_every_window(lookback, horizon):
    n = 3000
    values = np.random.default_rng(0).normal(size=(n, 3))
    plan = plan_splits(n, lookback=lookback, horizon=horizon, split="ratio")
    s, e = plan.borders[2]
    ds = WindowDataset(values, s, e, lookback, horizon)
    assert len(ds) == (e - s) - lookback - horizon + 1
    last = ds[len(ds) - 1]
    np.testing.assert_allclose(last["y"][-1].numpy(), values[e - 1], rtol=1e-6)  # the final row is forecast
    np.testing.assert_allclose(ds[0]["x"][0].numpy(), values[s], rtol=1e-6)
    with pytest.raises(IndexError):
        ds[len(ds)]


def test_scaler_uses_training_rows_only():
    values = np.concatenate([np.full((700, 2), 1.0), np.full((300, 2), 100.0)])
    values[:700:2] += 1.0                                    # train mean 1.5, std 0.5
    plan = plan_splits(1000, lookback=10, horizon=5, split="ratio")
    t0, t1 = plan.train_rows
    scaler = Scaler.fit(values[t0:t1])
    np.testing.assert_allclose(scaler.mean, [1.5, 1.5])
    np.testing.assert_allclose(scaler.std, [0.5, 0.5])
    np.testing.assert_allclose(scaler.inverse(scaler.transform(values)), values)


def test_synthetic_series_is_deterministic_hourly_and_seasonal():
    a, b = make_synthetic(2000, 4, seed=3), make_synthetic(2000, 4, seed=3)
    assert a.equals(b) and list(a.columns) == ["date", "ch0", "ch1", "ch2", "ch3"]
    assert rows_per_month("h") == 720
    x = a["ch0"].to_numpy()
    x = x - x.mean()
    lag24 = np.corrcoef(x[:-24], x[24:])[0, 1]
    lag12 = np.corrcoef(x[:-12], x[12:])[0, 1]
    assert lag24 > 0.5 > lag12                                # daily cycle


@pytest.mark.parametrize("freq, rows", [("h", 24), ("30min", 48), ("15min", 96), ("2h", 12), ("D", 7), ("B", 5),
                                        ("MS", 12), ("ME", 12), ("QS-OCT", 4), ("YS", None), ("W-SUN", 52),
                                        ("7D", None), (None, None), ("not a frequency", None)])
def test_season_length_from_the_time_step(freq, rows):
    assert season_length(freq) == rows
