"""Covariates: reading (left out of the targets, future rows, fill, long layout, static side file), the models
use them without looking ahead, a driver that only covariates explain is learned, and bad input is one line."""
import re

import numpy as np
import pytest
import torch
from helpers import run_cli

pd = pytest.importorskip("pandas")

import sigplex.core as sp
from sigplex.core.errors import UserError
from sigplex.core.models import create_model
from sigplex.datasets.tabular import calendar_features, read_series, read_static
from sigplex.plugins.ts_forecast import dctnet, itransformer, ssmixer, tsmixer  # noqa: F401  (register)

TINY = {"model.d_model": 16, "model.n_heads": 2, "model.d_ff": 32, "model.n_layers": 1, "data.lookback": 24,
        "data.horizon": 6, "trainer.max_steps": 100, "trainer.val_every": 100, "trainer.checkpoint_every": 100,
        "trainer.progress": "none", "trainer.tensorboard": False, "optim.lr": 3e-3}


def driven(n=800, seed=0):
    """Hourly target = 2 * a future-known random driver + a daily cycle + noise, with a past-only lagged input."""
    rng = np.random.default_rng(seed)
    drive = rng.normal(size=n)
    t = np.arange(n)
    y = 2.0 * drive + np.sin(2 * np.pi * t / 24) + 0.1 * rng.normal(size=n)
    return pd.DataFrame({"date": pd.date_range("2024-01-01", periods=n, freq="h"), "y": y, "drive": drive,
                         "lagged": np.roll(y, 1)})


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("cov")
    driven().to_csv(root / "d.csv", index=False)
    cov = {"data.futr_exog": ["drive"], "data.hist_exog": ["lagged"], "data.calendar": ["hour"]}
    with_cov = sp.fit("ts_forecast", data=root / "d.csv", overrides={**TINY, **cov}, out=root / "cov")
    plain = sp.fit("ts_forecast", data=root / "d.csv", overrides={**TINY, "data.targets": ["y"]}, out=root / "plain")
    return root, with_cov, plain


def test_reader_leaves_covariates_out_and_splits_future_rows(tmp_path):
    df = driven(60)
    df.loc[50:, ["y", "lagged"]] = np.nan                       # ten future rows: targets empty
    frame = read_series(df, hist_exog=["lagged"], futr_exog=["drive"])
    assert frame.columns == ["y"] and len(frame) == 50 and frame.values.shape == (50, 1)
    assert frame.exog.columns == ["lagged", "drive"] and frame.n_hist == 1 and len(frame.exog) == 60
    np.testing.assert_array_equal(frame.exog.values[50:, 0], 0.0)   # past-only: zero ahead
    np.testing.assert_allclose(frame.exog.values[:, 1], df["drive"].to_numpy())
    # without future-known covariates trailing empty targets stay missing values
    with pytest.raises(UserError, match="column 'y' has 10 missing value"):
        read_series(df, hist_exog=["lagged"])
    gap = driven(60)
    gap.loc[20, "drive"] = np.nan
    with pytest.raises(UserError, match=r"covariate 'drive' has 1 missing value.*data.fill=ffill"):
        read_series(gap, futr_exog=["drive"])
    assert not np.isnan(read_series(gap, futr_exog=["drive"], fill="interpolate").exog.values).any()
    ahead = df.copy()
    ahead.loc[55, "drive"] = np.nan
    with pytest.raises(UserError, match=r"future covariate 'drive' is empty at 2024-01-03 07:00"):
        read_series(ahead, hist_exog=["lagged"], futr_exog=["drive"], fill="ffill")
    with pytest.raises(UserError, match=r"covariate column 'price' \(data.futr_exog\) not found"):
        read_series(df, futr_exog=["price"])


def test_long_layout_covariates_and_static_features(tmp_path):
    dates = pd.date_range("2024-01-01", periods=30, freq="D")
    long = pd.concat([pd.DataFrame({"unique_id": uid, "ds": dates, "y": np.arange(30.0) * k,
                                    "temp": np.cos(np.arange(30.0)), "price": np.arange(30.0) + k})
                      for k, uid in ((1, "a"), (2, "b"))])
    frame = read_series(long, futr_exog=["temp", "price"])
    assert frame.layout == "long" and frame.columns == ["a", "b"]
    assert frame.exog.columns == ["temp", "price[a]", "price[b]"]     # a shared driver once, a per-series one each
    (tmp_path / "static.csv").write_text("unique_id,size,region\nb,2,0\na,1,1\n")
    np.testing.assert_array_equal(read_static(tmp_path / "static.csv", ["a", "b"], ["size"]), [[1.0], [2.0]])
    with pytest.raises(UserError, match=r"data.static: .*static.csv: no row for series 'c'"):
        read_static(tmp_path / "static.csv", ["a", "c"], ["size"])
    with pytest.raises(UserError, match=r"column 'weight' is missing"):
        read_static(tmp_path / "static.csv", ["a"], ["weight"])


def test_calendar_features_follow_the_time_index():
    dates = pd.date_range("2024-01-01", periods=14, freq="D")             # a Monday
    values, names = calendar_features(dates, ["dow", "month"])
    assert names == ["dow_sin", "dow_cos", "month_sin", "month_cos"]
    np.testing.assert_allclose(values[0], [0.0, 1.0, 0.0, 1.0], atol=1e-12)
    np.testing.assert_allclose(values[7], values[0], atol=1e-12)           # a week later: the same weekday
    with pytest.raises(UserError, match="data.calendar: unknown feature 'week'"):
        calendar_features(dates, ["week"])


@pytest.mark.parametrize("name", ["itransformer", "tsmixer", "dctnet", "ssmixer"])
def test_models_use_future_covariates_and_never_past_only_ones_ahead(name):
    torch.manual_seed(0)
    kw = {"d_model": 16, "n_layers": 1, "patch_len": 8, "stride": 8} if name != "itransformer" else {"d_model": 16}
    if name in ("itransformer", "dctnet"):
        kw.update(n_heads=2, d_ff=32)
    model = create_model(name, n_vars=2, lookback=32, horizon=8, n_hist=1, n_futr=2, n_stat=1, n_quantiles=3, **kw)
    for module in model.modules():                                       # leave the zero initialisation
        if isinstance(module, torch.nn.Linear) and not module.weight.abs().sum():
            torch.nn.init.normal_(module.weight, std=0.3)
    model.eval()
    x, cov, stat = torch.randn(2, 32, 2), torch.randn(2, 40, 3), torch.randn(2, 2, 1)
    with torch.no_grad():
        base = model(x, cov, stat)
        assert base.shape == (2, 8, 2, 3)
        ahead = cov.clone()
        ahead[:, 36, 1:] += 5.0                                           # a future-known value in the horizon
        assert not torch.allclose(model(x, ahead, stat), base)
        peek = cov.clone()
        peek[:, 32:, 0] += 5.0                                            # a past-only value in the horizon
        torch.testing.assert_close(model(x, peek, stat), base)
        assert not torch.allclose(model(x, cov, stat + 1.0), base)
    with pytest.raises(ValueError, match="built with n_hist=1, n_futr=2, n_stat=1; got cov=no"):
        model(x)


def test_covariates_are_learned_and_old_configs_are_unchanged(runs):
    root, with_cov, plain = runs
    cov, base = with_cov.summary["test"], plain.summary["test"]
    assert cov["mse"] < 0.5 * base["mse"], (cov, base)                    # the driver explains most of y
    config = with_cov.config_dict
    assert config["model"]["n_hist"] == 1 and config["model"]["n_futr"] == 3   # lagged | drive, hour sin/cos
    assert plain.config_dict["model"]["n_hist"] == 0 and plain.config_dict["model"]["n_futr"] == 0
    state = sp.load_run(with_cov).prepared.state
    assert state["cov_columns"] == ["lagged", "drive", "hour_sin", "hour_cos"] and state["n_hist"] == 1


def test_predict_reads_future_rows_and_refuses_bad_covariates_in_one_line(runs, tmp_path):
    root, run, _ = runs
    df = driven(60, seed=3)
    df.loc[54:, ["y", "lagged"]] = np.nan                                # 6 future rows = the horizon
    df.to_csv(tmp_path / "in.csv", index=False)
    out = sp.predict(run, str(tmp_path / "in.csv"), output=tmp_path / "fc.csv")[0]
    fc = pd.read_csv(out, parse_dates=["date"])
    assert list(fc.columns) == ["date", "y"] and len(fc) == 6
    assert (fc["date"] == df["date"].iloc[54:].reset_index(drop=True)).all()
    drive = df["drive"].iloc[54:].to_numpy()
    assert np.corrcoef(fc["y"], drive)[0, 1] > 0.8                       # the forecast follows the known driver
    cases = {"short": (df.iloc[:-1], r"future covariate 'drive' has 5 row\(s\) after the last observed target; "
                                     r"the horizon needs 6"),
             "missing": (df.drop(columns="drive"), r"covariate column 'drive' \(data.futr_exog\) not found"),
             "nan": (df.assign(lagged=df["lagged"].where(df.index != 30)), r"covariate 'lagged' has 1 missing")}
    for name, (frame, message) in cases.items():
        frame.to_csv(tmp_path / f"{name}.csv", index=False)
        with pytest.raises(UserError, match=message):
            sp.predict(run, str(tmp_path / f"{name}.csv"))
    res = run_cli("predict", "--checkpoint", run.path, "--input", tmp_path / "short.csv", "--output", tmp_path / "o.csv")
    lines = [ln for ln in res.stderr.splitlines() if ln.strip() and not ln.startswith(("warning:", "using "))]
    assert res.returncode == 2 and len(lines) == 1 and re.search(cases["short"][1], lines[0]), res.stderr


def test_hostile_covariate_inputs_are_answered_or_refused_in_one_line(runs, tmp_path):
    from helpers import check_hostile

    _, run, _ = runs
    report = check_hostile(sp.load_run(run), tmp_path, ["--checkpoint", run.path], "series.csv", evaluate=0)
    assert report["ok"] >= 2, report


def test_holiday_flags_come_from_the_holidays_package(monkeypatch):
    """The flag marks the package's dates (a stand-in module here: holidays needs python-dateutil < 3, the
    pinned stack has 4); without the package the error says what to install."""
    import datetime
    import sys
    import types

    from sigplex.datasets.tabular import holiday_flags

    fake = types.ModuleType("holidays")
    fake.country_holidays = lambda code, years: {datetime.date(2024, 12, 25)} if code == "US" else {}[code]
    monkeypatch.setitem(sys.modules, "holidays", fake)
    dates = pd.date_range("2024-12-24", periods=3, freq="D")
    np.testing.assert_array_equal(holiday_flags(dates, "US").ravel(), [0.0, 1.0, 0.0])
    with pytest.raises(UserError, match="data.holidays: unknown country code 'XX'"):
        holiday_flags(dates, "XX")
    monkeypatch.setitem(sys.modules, "holidays", None)
    with pytest.raises(UserError, match=r"data.holidays needs the holidays package \(pip install holidays\)"):
        holiday_flags(dates, "US")


def test_the_shipped_bike_rentals_read_with_their_weather():
    """The committed real series (UCI bike sharing, CC BY 4.0): the weather columns are covariates, not targets."""
    from helpers import ROOT

    frame = read_series(ROOT / "tests" / "fixtures" / "ts" / "bike_sharing_daily.csv", targets=["cnt"],
                        futr_exog=["temp", "hum", "weathersit", "workingday"])
    assert frame.columns == ["cnt"] and frame.values.shape == (731, 1) and frame.freq == "D"
    assert frame.exog.columns == ["temp", "hum", "weathersit", "workingday"] and frame.exog.values.shape == (731, 4)
    assert np.corrcoef(frame.values[:, 0], frame.exog.values[:, 0])[0, 1] > 0.5   # warmer days, more rentals


def test_static_features_in_the_long_layout_train_and_predict(tmp_path):
    """data.static: one row per unique_id, standardised across series, saved with the run (predict needs no side file)."""
    dates = pd.date_range("2024-01-01", periods=200, freq="h")
    rng = np.random.default_rng(0)
    long = pd.concat([pd.DataFrame({"unique_id": uid, "ds": dates, "y": level + rng.normal(size=200)})
                      for uid, level in (("a", 1.0), ("b", 5.0), ("c", 9.0))])
    long.to_csv(tmp_path / "long.csv", index=False)
    (tmp_path / "static.csv").write_text("unique_id,size\nc,30\na,10\nb,20\n")
    overrides = {**TINY, "trainer.max_steps": 4, "data.stat_exog": ["size"], "data.static": str(tmp_path / "static.csv")}
    run = sp.fit("ts_forecast", data=tmp_path / "long.csv", overrides=overrides, out=tmp_path / "run")
    state = sp.load_run(run).prepared.state
    np.testing.assert_allclose(state["static"].ravel(), [-1.2247449, 0.0, 1.2247449], rtol=1e-6)   # a, b, c
    assert run.config_dict["model"]["n_stat"] == 1 and np.isfinite(run.summary["test"]["mse"])
    (tmp_path / "static.csv").unlink()
    fc = pd.read_csv(sp.predict(run, str(tmp_path / "long.csv"), output=tmp_path / "fc.csv")[0])
    assert list(fc.columns) == ["unique_id", "ds", "y"] and len(fc) == 3 * 6
    wide = long.pivot(index="ds", columns="unique_id", values="y").reset_index().rename(columns={"ds": "date"})
    wide.to_csv(tmp_path / "wide.csv", index=False)
    with pytest.raises(UserError, match=r"data.static: .*wide.csv is in the wide layout"):
        sp.fit("ts_forecast", data=tmp_path / "wide.csv", overrides={**overrides, "data.static": str(tmp_path / "x.csv")},
               out=tmp_path / "run2")
