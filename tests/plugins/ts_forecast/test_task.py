"""The forecast task end to end: short training beats repeat-last, the training scaler is fitted
state of the run (not model buffers), predict continues the timestamps in original units,
evaluate --data scores every window with the training scaler, errors name file and column."""
import dataclasses
import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from helpers import run_cli

pd = pytest.importorskip("pandas")

import sigplex.core as sp
from sigplex.core.api import load_task
from sigplex.core.errors import UserError
from sigplex.core.task import Prepared
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


def test_run_state_carries_the_training_scaler(run):
    predictor = sp.load_run(run)
    frame = read_series(embedded_csv(3000, 7, 0))
    t0, t1 = plan_splits(len(frame), lookback=96, horizon=96, freq=frame.freq).train_rows
    expected = Scaler.fit(frame.values[t0:t1])
    state = predictor.prepared.state
    np.testing.assert_allclose(state["scaler_mean"], expected.mean, rtol=1e-12)
    np.testing.assert_allclose(state["scaler_std"], expected.std, rtol=1e-12)
    assert state["columns"] == [f"ch{i}" for i in range(7)] and state["freq"] == "h"
    whole = Scaler.fit(frame.values)                          # not the statistics of all rows
    assert not np.allclose(state["scaler_mean"], whole.mean, rtol=1e-3)
    # the model is the bare registered forecaster: no scaler buffers in the weights
    assert type(predictor.model).__name__ == "ITransformer"
    assert not [k for k in predictor.model.state_dict() if "scaler" in k]
    assert predictor.config.model.n_vars == 7                 # completed from the data and saved with the run


def test_predict_uses_only_the_saved_state(run, tmp_path):
    """A model stand-in that sees only tensors: predict normalises and denormalises with prepared.state."""
    predictor = sp.load_run(run)
    frame = pd.read_csv(embedded_csv(3000, 7, 0), parse_dates=["date"]).iloc[:300]
    src = tmp_path / "s.csv"
    frame.to_csv(src, index=False)
    state = predictor.prepared.state
    seen = []

    def last_value(x):                                        # repeat-last-value "model" on normalised input
        seen.append(x)
        return x[:, -1:, :].expand(-1, 96, -1)

    fc = predictor.task.predict(last_value, str(src), predictor.prepared)
    x = seen[0][0].numpy()
    expected_x = (frame.iloc[-96:, 1:].to_numpy() - state["scaler_mean"]) / state["scaler_std"]
    np.testing.assert_allclose(x, expected_x, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(fc.frame.values, np.repeat(frame.iloc[-1:, 1:].to_numpy(), 96, 0), rtol=1e-5)
    # a stored copy of the state (what load_run reads back) gives the same forecast as the real model
    again = predictor.task.predict(predictor.model, str(src), Prepared(predictor.config, state=dict(state)))
    np.testing.assert_allclose(again.frame.values, predictor.predict(str(src)).frame.values)


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
    assert sp.predict(run, str(src), output=tmp_path / "fc.csv") == written  # same model and input: kept
    frame.iloc[:300].to_csv(tmp_path / "other.csv", index=False)
    with pytest.raises(UserError, match="already exists"):
        sp.predict(run, str(tmp_path / "other.csv"), output=tmp_path / "fc.csv")
    (tmp_path / "fc.csv").unlink()  # one output gone: the same model and input complete it (resume)
    assert [p.name for p in sp.predict(run, str(src), output=tmp_path / "fc.csv")] == ["fc.csv", "fc.png"]
    (tmp_path / "fc.csv").unlink()
    with pytest.raises(UserError, match=r"fc\.png: already exists"):  # another input's plot is not overwritten
        sp.predict(run, str(tmp_path / "other.csv"), output=tmp_path / "fc.csv")
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
    prepared = task.build_data(cfg, tmp_path / "two.csv")
    assert prepared.config.model.n_vars == 2 and prepared.state["columns"] == ["a", "b"]
    assert cfg.model.n_vars is None                           # the given config is not changed


def test_rolling_origin_scores(run):
    from sigplex.core.config import resolve_config
    from sigplex.plugins.ts_forecast.config import ForecastConfig
    from sigplex.plugins.ts_forecast.scores import origins

    predictor = sp.load_run(run)
    task = predictor.task
    cfg = resolve_config(ForecastConfig, config=run.config_dict, overrides=["data.rolling_origins=3"])
    prepared = task.build_data(cfg, None)
    test = prepared.test
    assert origins(test, cfg.data) == [len(test) - 1 - 2 * 96, len(test) - 1 - 96, len(test) - 1]
    with torch.no_grad():                                     # as the core calls it
        metrics = task.evaluate(predictor.model, test, prepared)
    assert metrics["rolling_n"] == 3 and metrics["rolling_mse"] > 0
    assert metrics["mse"] == pytest.approx(run.summary["test"]["mse"], rel=1e-6)
    cut = str(test.cutoff(5))
    cfg = resolve_config(ForecastConfig, config=run.config_dict, overrides=[f"data.cutoffs=['{cut}']"])
    assert origins(test, cfg.data) == [5]
    cfg = resolve_config(ForecastConfig, config=run.config_dict, overrides=["data.cutoffs=['1999-01-01']"])
    with pytest.raises(UserError, match="is not a forecast origin"):
        origins(test, cfg.data)


def test_evaluate_data_scores_every_window_with_the_training_scaler(run, tmp_path):
    frame = pd.read_csv(embedded_csv(3000, 7, 0))
    start, end = plan_splits(3000, lookback=96, horizon=96, freq="h").borders[2]
    src = tmp_path / "test_rows.csv"
    frame.iloc[start:end].to_csv(src, index=False)            # exactly the rows of the run's test split
    metrics = sp.evaluate(run, data=src)
    expected = run.summary["test"]
    assert metrics["n_windows"] == end - start - 96 - 96 + 1 == expected["n_windows"]
    for key in ("mse", "mae", "mse_orig", "naive_mse"):       # the same numbers: the training scaler, not its own
        assert metrics[key] == pytest.approx(expected[key], rel=1e-6), key
    # one window is enough; fewer rows than lookback + horizon is an error naming the file
    frame.iloc[start:start + 192].to_csv(tmp_path / "one.csv", index=False)
    assert sp.evaluate(run, data=tmp_path / "one.csv")["n_windows"] == 1
    frame.iloc[:100].to_csv(tmp_path / "few.csv", index=False)
    with pytest.raises(UserError, match=r"few\.csv: has 100 rows; evaluating needs at least .* = 192"):
        sp.evaluate(run, data=tmp_path / "few.csv")


def test_predict_matches_series_by_name(run, tmp_path):
    frame = pd.read_csv(embedded_csv(3000, 7, 0)).iloc[:300]
    frame.to_csv(tmp_path / "in_order.csv", index=False)
    shuffled = ["date", "ch4", "ch0", "ch6", "ch1", "ch3", "ch2", "ch5"]
    frame[shuffled].to_csv(tmp_path / "shuffled.csv", index=False)
    a = sp.predict(run, str(tmp_path / "in_order.csv")).frame
    b = sp.predict(run, str(tmp_path / "shuffled.csv")).frame
    assert b.columns == a.columns
    np.testing.assert_allclose(b.values, a.values, rtol=1e-6)


def test_eval_batch_size_null_uses_the_batch_size(tmp_path):
    out = tmp_path / "run"
    res = run_cli("train", "--plugin", "ts_forecast", "--max-steps", 2, "--out", out,
                  "--set", "trainer.eval_batch_size=null",
                  "--set", "data.synthetic_rows=1000", "--set", "model.d_model=16", "--set", "model.n_heads=2",
                  "--set", "trainer.progress=none", "--set", "trainer.tensorboard=false")
    assert res.returncode == 0, res.stderr
    assert "v1 task contract" not in res.stderr and "Traceback" not in res.stderr
    test = json.loads((out / "summary.json").read_text())["test"]
    assert test["n_windows"] == 200 - 96 - 96 + 1 + 96 and np.isfinite(test["mse"])


def test_config_rejects_inconsistent_sizes():
    with pytest.raises(UserError, match="d_model=30 must be divisible by n_heads=4"):
        load_task("ts_forecast", overrides=["model.d_model=30", "model.n_heads=4"])
    with pytest.raises(UserError, match="patch_len=64 is longer than data.lookback=48"):
        load_task("ts_forecast", overrides=["model.name=tsmixer", "model.patch_len=64", "data.lookback=48"])


@pytest.mark.parametrize("name", ["tsmixer", "dctnet", "ssmixer"])
def test_other_models_train_through_the_task(name, tmp_path):
    overrides = {**SMALL, "model.name": name, "model.d_model": 16, "model.n_heads": 2, "model.n_layers": 1,
                 "trainer.max_steps": 20, "trainer.val_every": 20, "trainer.checkpoint_every": 20}
    run = sp.fit("ts_forecast", overrides=overrides, out=tmp_path / name)
    assert np.isfinite(run.summary["test"]["mse"])


def test_onnx_export_has_a_dynamic_batch(run, tmp_path):
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    predictor = sp.load_run(run)
    assert predictor.task.export_axes(predictor.prepared) == {0: {0: "batch"}}
    out = sp.export(run, format="onnx", output=tmp_path / "fc.onnx")
    session = ort.InferenceSession(str(out["path"]), providers=["CPUExecutionProvider"])
    x = torch.randn(3, 96, 7)
    (y,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    with torch.no_grad():
        np.testing.assert_allclose(y, predictor.model(x).numpy(), atol=1e-4)


def test_seasonal_naive_baseline_equals_a_loop_over_windows(run):
    """snaive_* repeat the last season of each input window (24 rows for the hourly embedded series)."""
    from sigplex.core.config import resolve_config
    from sigplex.plugins.ts_forecast.config import ForecastConfig
    from sigplex.plugins.ts_forecast.scores import seasonal_naive

    test = run.summary["test"]
    assert test["season"] == 24 and test["snaive_mse"] < test["naive_mse"]  # daily cycle: a real baseline
    predictor = sp.load_run(run)
    prepared = predictor.task.build_data(predictor.prepared.config, None)
    se, n = 0.0, 0
    for i in range(len(prepared.test)):                       # a naive loop over every window
        item = prepared.test[i]
        x, y = item["x"].double().numpy(), item["y"].double().numpy()
        pred = np.stack([x[len(x) - 24 + h % 24] for h in range(len(y))])
        se += float(((pred - y) ** 2).sum())
        n += y.size
        batch = seasonal_naive(item["x"][None], 24, len(y))[0].double().numpy()
        np.testing.assert_array_equal(batch, pred)
    assert se / n == pytest.approx(test["snaive_mse"], rel=1e-5)
    # a season longer than the lookback is not offered (the model sees only lookback rows); 0 turns it off
    for season in ("200", "0"):
        cfg = resolve_config(ForecastConfig, config=run.config_dict, overrides=[f"data.season={season}"])
        with torch.no_grad():
            metrics = predictor.task.evaluate(predictor.model, prepared.test, dataclasses.replace(prepared, config=cfg))
        assert "snaive_mse" not in metrics and metrics["mse"] == pytest.approx(test["mse"], rel=1e-6)


def test_a_lookback_shorter_than_one_cycle_is_warned_about(tmp_path):
    from sigplex.core.config import resolve_config
    from sigplex.plugins.ts_forecast.config import ForecastConfig
    from sigplex.plugins.ts_forecast.task import ForecastTask

    dates = pd.date_range("2021-01-01", periods=2000, freq="10min")            # a day is 144 rows
    pd.DataFrame({"date": dates, "a": np.sin(np.arange(2000) * 2 * np.pi / 144)}).to_csv(tmp_path / "w.csv", index=False)
    task = ForecastTask()
    with pytest.warns(UserWarning, match=r"w\.csv: data.lookback=96 rows cover less than one cycle .*144 rows at 10min"):
        task.build_data(resolve_config(ForecastConfig), tmp_path / "w.csv")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")                                        # a lookback of a day or more: silent
        task.build_data(resolve_config(ForecastConfig, overrides=["data.lookback=144"]), tmp_path / "w.csv")


def test_a_semicolon_file_is_forecast_into_a_semicolon_file(run, tmp_path):
    """A European spreadsheet export (';' and decimal commas) in, the same dialect out, same numbers."""
    frame = pd.read_csv(embedded_csv(3000, 7, 0)).iloc[:300]
    frame.to_csv(tmp_path / "comma.csv", index=False)
    frame.to_csv(tmp_path / "semi.csv", sep=";", decimal=",", index=False)
    sp.predict(run, str(tmp_path / "comma.csv"), output=tmp_path / "comma_out.csv")
    sp.predict(run, str(tmp_path / "semi.csv"), output=tmp_path / "semi_out.csv")
    text = (tmp_path / "semi_out.csv").read_text()
    assert text.splitlines()[0] == "date;" + ";".join(f"ch{i}" for i in range(7)) and "," in text.splitlines()[1]
    semi = pd.read_csv(tmp_path / "semi_out.csv", sep=";", decimal=",")
    comma = pd.read_csv(tmp_path / "comma_out.csv")
    assert len(semi) == 96 and list(semi["date"]) == list(comma["date"])
    np.testing.assert_allclose(semi.drop(columns="date").to_numpy(), comma.drop(columns="date").to_numpy(), rtol=1e-6)


def test_hostile_inputs_are_answered_or_refused_in_one_line(run, tmp_path):
    """The core's harness on this task's sample inputs and its format's variants: predict, serve, evaluate."""
    from helpers import check_hostile

    import sigplex.core as sp

    report = check_hostile(sp.load_run(run), tmp_path, ["--checkpoint", run], "series.csv")
    assert report["ok"] >= 2, report
