"""The forecast task end to end: short training beats repeat-last, the scaler travels with the
checkpoint, predict continues the timestamps in original units, errors name file and column."""
import subprocess
import sys

import numpy as np
import pytest

pd = pytest.importorskip("pandas")

import sigplex.core as sp
from sigplex.core.errors import UserError
from sigplex.datasets.tabular import Scaler, embedded_csv, plan_splits, read_series

SMALL = {"model.d_model": 32, "model.n_heads": 4, "model.d_ff": 64, "data.synthetic_rows": 3000,
         "trainer.max_steps": 150, "trainer.val_every": 150, "trainer.checkpoint_every": 150,
         "trainer.progress": "none", "trainer.tensorboard": False}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return sp.fit("ts_forecast", overrides=SMALL, out=tmp_path_factory.mktemp("ts") / "run")


def test_plugin_registration_is_light():
    code = ("import sys; from sigplex.core.plugins import PluginManager; pm = PluginManager();"
            "r = pm.records['ts_forecast']; print(r.status, [t.name for t in r.tasks],"
            "'torch' in sys.modules, 'pandas' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split()[0] == "ok" and "'forecast'" in out and out.split()[-2:] == ["False", "False"]


def test_short_training_beats_repeat_last_value(run):
    test = run.summary["test"]
    assert test["n_windows"] == 600 - 96 - 96 + 1 + 96       # ratio split: 20% of 3000 rows plus lookback
    assert test["mse"] < 0.5 * test["naive_mse"], test
    assert test["mae"] < test["naive_mae"]
    assert test["mse_orig"] > 0 and (run.path / "plots" / "forecast_test.png").is_file()


def test_checkpoint_carries_the_training_scaler(run):
    predictor = sp.load_run(run)
    frame = read_series(embedded_csv(3000, 7, 0))
    t0, t1 = plan_splits(len(frame), lookback=96, horizon=96, freq=frame.freq).train_rows
    expected = Scaler.fit(frame.values[t0:t1])
    model = predictor.model
    np.testing.assert_allclose(model.scaler_mean.numpy(), expected.mean, rtol=1e-5)
    np.testing.assert_allclose(model.scaler_std.numpy(), expected.std, rtol=1e-5)
    whole = Scaler.fit(frame.values)                          # not the statistics of all rows
    assert not np.allclose(model.scaler_mean.numpy(), whole.mean, rtol=1e-3)


def test_predict_continues_timestamps_in_original_units(run, tmp_path):
    frame = pd.read_csv(embedded_csv(3000, 7, 0), parse_dates=["date"]).iloc[:400]
    frame["ch3"] += 1000.0                                    # far outside the normalised range
    src = tmp_path / "series.csv"
    frame.to_csv(src, index=False)
    written = sp.predict(run, str(src), output=tmp_path / "fc.csv")
    assert [p.name for p in written] == ["fc.csv", "fc.png"]
    fc = pd.read_csv(written[0], parse_dates=["date"])
    assert list(fc.columns) == list(frame.columns) and len(fc) == 96
    expected = pd.date_range(frame["date"].iloc[-1], periods=97, freq="h")[1:]
    assert (fc["date"] == expected).all()
    assert fc["ch3"].mean() > 900                              # original units, not normalised
    with pytest.raises(UserError, match="already exists"):
        sp.predict(run, str(src), output=tmp_path / "fc.csv")
    (tmp_path / "fc.csv").unlink()
    with pytest.raises(UserError, match=r"fc\.png: already exists"):  # the plot is not overwritten either
        sp.predict(run, str(src), output=tmp_path / "fc.csv")
    assert len(sp.predict(run, str(src), output=tmp_path / "fc.csv", overwrite=True)) == 2


def test_predict_long_layout_writes_long(run, tmp_path):
    wide = pd.read_csv(embedded_csv(3000, 7, 0), parse_dates=["date"]).iloc[:200]
    long = wide.melt(id_vars="date", var_name="unique_id", value_name="y").rename(columns={"date": "ds"})
    src = tmp_path / "long.csv"
    long[["unique_id", "ds", "y"]].to_csv(src, index=False)
    out = sp.predict(run, str(src), output=tmp_path / "fc_long.csv")[0]
    fc = pd.read_csv(out, parse_dates=["ds"])
    assert list(fc.columns) == ["unique_id", "ds", "y"] and len(fc) == 7 * 96
    assert fc["ds"].min() == wide["date"].iloc[-1] + pd.Timedelta(hours=1)


def test_predict_errors(run, tmp_path):
    short = pd.read_csv(embedded_csv(3000, 7, 0)).iloc[:50]
    src = tmp_path / "short.csv"
    short.to_csv(src, index=False)
    with pytest.raises(UserError, match=r"short\.csv: has 50 rows; the model needs the last data.lookback = 96"):
        sp.predict(run, str(src))
    narrow = pd.read_csv(embedded_csv(3000, 7, 0)).iloc[:200, :4]
    narrow.to_csv(src, index=False)
    with pytest.raises(UserError, match="has 3 series but the model was trained on 7"):
        sp.predict(run, str(src))


def test_data_errors_through_the_task(tmp_path):
    from sigplex.core.config import resolve_config
    from sigplex.plugins.ts_forecast.task import ForecastConfig, ForecastTask

    task = ForecastTask()
    df = pd.DataFrame({"date": pd.date_range("2020-01-01", periods=150, freq="h"), "a": np.arange(150.0)})
    path = tmp_path / "tiny.csv"
    df.to_csv(path, index=False)
    cfg = resolve_config(ForecastConfig, overrides=["model.n_vars=1"])
    with pytest.raises(UserError, match=r"tiny\.csv: the series has 150 rows but lookback \+ horizon"):
        task.build_data(cfg, path)
    cfg = resolve_config(ForecastConfig, overrides=["model.n_vars=7"])
    msg = r"tiny\.csv: has 1 series but the model is configured for 7; pass --set model.n_vars=1"
    with pytest.raises(UserError, match=msg):
        task.build_data(cfg, path)
    # without n_vars the task takes it from the data
    long = pd.DataFrame({"date": pd.date_range("2020-01-01", periods=2000, freq="h"), "a": np.arange(2000.0),
                         "b": np.sin(np.arange(2000.0))})
    long.to_csv(tmp_path / "two.csv", index=False)
    cfg = resolve_config(ForecastConfig)
    splits = task.build_data(cfg, tmp_path / "two.csv")
    assert task.configure(cfg, splits).model.n_vars == 2


def test_rolling_origin_scores(run):
    from sigplex.core.config import resolve_config
    from sigplex.plugins.ts_forecast.task import ForecastConfig, ForecastTask

    predictor = sp.load_run(run)
    task = ForecastTask()
    cfg = resolve_config(ForecastConfig, config=run.config_dict, overrides=["data.rolling_origins=3"])
    test = task.build_data(cfg, None).test
    origins = task.origins(test, cfg)
    assert origins == [len(test) - 1 - 2 * 96, len(test) - 1 - 96, len(test) - 1]
    metrics = task.evaluate(predictor.model, test, cfg)
    assert metrics["rolling_n"] == 3 and metrics["rolling_mse"] > 0
    cut = str(test.cutoff(5))
    cfg = resolve_config(ForecastConfig, config=run.config_dict, overrides=[f"data.cutoffs=['{cut}']"])
    assert task.origins(test, cfg) == [5]
    cfg = resolve_config(ForecastConfig, config=run.config_dict, overrides=["data.cutoffs=['1999-01-01']"])
    with pytest.raises(UserError, match="is not a forecast origin"):
        task.origins(test, cfg)


@pytest.mark.parametrize("name", ["tsmixer", "dctnet"])
def test_other_models_train_through_the_task(name, tmp_path):
    overrides = {**SMALL, "model.name": name, "model.d_model": 16, "model.n_heads": 2, "model.n_layers": 1,
                 "trainer.max_steps": 20, "trainer.val_every": 20, "trainer.checkpoint_every": 20}
    run = sp.fit("ts_forecast", overrides=overrides, out=tmp_path / name)
    assert np.isfinite(run.summary["test"]["mse"])
