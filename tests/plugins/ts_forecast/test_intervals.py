"""Quantile forecasts and split-conformal intervals: the pinball loss and conformal quantiles against naive
loops, the finite-sample coverage, CQR widening, and a quantile + conformal run end to end (state, metrics,
predicted columns)."""
import math

import numpy as np
import pytest
import torch

pd = pytest.importorskip("pandas")

import sigplex.core as sp
from sigplex.core.errors import UserError
from sigplex.datasets.tabular import embedded_csv
from sigplex.plugins.ts_forecast.intervals import calibrate, conformal_quantile, intervals, pairs, pinball_loss

SMALL = {"model.d_model": 16, "model.n_heads": 2, "model.d_ff": 32, "model.n_layers": 1, "data.synthetic_rows": 1200,
         "data.lookback": 48, "data.horizon": 12, "trainer.max_steps": 60, "trainer.val_every": 60,
         "trainer.checkpoint_every": 60, "trainer.progress": "none", "trainer.tensorboard": False}


def test_pinball_loss_equals_a_loop_in_float64():
    torch.manual_seed(0)
    q = [0.1, 0.5, 0.9]
    pred, y = torch.randn(4, 6, 3, 3, dtype=torch.float64), torch.randn(4, 6, 3, dtype=torch.float64)
    total = 0.0
    for idx in np.ndindex(*y.shape):
        for k, level in enumerate(q):
            d = float(y[idx] - pred[idx][k])
            total += max(level * d, (level - 1) * d)
    assert float(pinball_loss(pred, y, q)) == pytest.approx(total / pred.numel(), rel=1e-12)


def test_conformal_quantile_is_the_finite_sample_order_statistic():
    scores = torch.arange(1.0, 20.0)[torch.randperm(19)][:, None]         # 19 scores: 1..19
    assert float(conformal_quantile(scores, 0.8)[0]) == 16.0              # ceil(20 * 0.8) = 16th smallest
    assert float(conformal_quantile(scores, 0.99)[0]) == 19.0             # capped at the largest
    gen = torch.Generator().manual_seed(0)
    cal, fresh = torch.randn(999, 1, 1, generator=gen), torch.randn(20000, 1, 1, generator=gen)
    offsets = calibrate(torch.zeros_like(cal), cal, [], 0.8)              # point model: +- conformal |error|
    covered = float((fresh.abs() <= offsets[0]).double().mean())
    assert offsets.shape == (1, 1, 1) and 0.78 < covered < 0.82
    assert float(offsets[0, 0, 0]) == pytest.approx(1.2816, abs=0.1)      # the 80 % two-sided normal quantile


def test_conformalised_quantiles_widen_too_narrow_intervals():
    assert pairs([0.05, 0.1, 0.5, 0.9, 0.95]) == [(0, 4, 0.9), (1, 3, 0.8)]
    gen = torch.Generator().manual_seed(1)
    y = torch.randn(500, 2, 1, generator=gen)
    narrow = torch.stack([torch.full_like(y, -0.5), torch.zeros_like(y), torch.full_like(y, 0.5)], -1)
    offsets = calibrate(narrow, y, [0.1, 0.5, 0.9], 0.8)
    assert offsets.shape == (1, 2, 1) and (offsets > 0.5).all()           # +-0.5 covers ~38 %: widened
    (_, level, lo, hi), = intervals(narrow, [0.1, 0.5, 0.9], offsets, 0.8)
    assert level == 0.8 and 0.76 < float(((y >= lo) & (y <= hi)).double().mean()) < 0.84


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    overrides = {**SMALL, "model.quantiles": [0.1, 0.5, 0.9], "model.conformal": True}
    return sp.fit("ts_forecast", overrides=overrides, out=tmp_path_factory.mktemp("q") / "run")


def test_quantile_conformal_run_reports_and_predicts_intervals(run, tmp_path):
    test = run.summary["test"]
    for key in ("mse", "pinball", "coverage", "width", "conformal_coverage", "conformal_width"):
        assert math.isfinite(test[key]) and test[key] >= 0, key
    assert test["interval"] == 0.8 and 0 <= test["coverage"] <= 1
    predictor = sp.load_run(run)
    assert predictor.prepared.state["conformal"].shape == (1, 12, 7)     # one pair, per step and series
    again = predictor.evaluate()
    assert again["conformal_coverage"] == pytest.approx(test["conformal_coverage"], rel=1e-6)
    frame = pd.read_csv(embedded_csv(1200, 7, 0)).iloc[:200]
    frame.to_csv(tmp_path / "in.csv", index=False)
    out, png = sp.predict(run, str(tmp_path / "in.csv"), output=tmp_path / "fc.csv")
    fc = pd.read_csv(out)
    assert list(fc.columns[:7]) == ["date", "ch0", "ch0_q10", "ch0_q50", "ch0_q90", "ch0_lo80", "ch0_hi80"]
    assert len(fc.columns) == 1 + 7 * 6 and png.is_file()
    np.testing.assert_allclose(fc["ch0"], fc["ch0_q50"], rtol=1e-6)      # the median is the point forecast
    assert (fc["ch0_q10"] <= fc["ch0_q50"]).all() and (fc["ch0_q50"] <= fc["ch0_q90"]).all()
    assert (fc["ch0_lo80"] <= fc["ch0_hi80"]).all()


def test_quantiles_must_hold_the_median():
    from sigplex.core.api import load_task

    with pytest.raises(UserError, match=r"model.quantiles=\[0.1, 0.9\]: expected increasing levels"):
        load_task("ts_forecast", overrides=["model.quantiles=[0.1,0.9]"])


def test_long_layout_gets_quantile_columns(run, tmp_path):
    wide = pd.read_csv(embedded_csv(1200, 7, 0), parse_dates=["date"]).iloc[:100]
    long = wide.melt(id_vars="date", var_name="unique_id", value_name="y").rename(columns={"date": "ds"})
    long[["unique_id", "ds", "y"]].to_csv(tmp_path / "long.csv", index=False)
    fc = pd.read_csv(sp.predict(run, str(tmp_path / "long.csv"), output=tmp_path / "fc.csv")[0])
    assert list(fc.columns) == ["unique_id", "ds", "y", "y_q10", "y_q50", "y_q90", "y_lo80", "y_hi80"]
    assert len(fc) == 7 * 12 and (fc["y_q10"] <= fc["y_q90"]).all()
