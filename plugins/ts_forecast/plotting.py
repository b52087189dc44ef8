"""The forecast figure: history, forecast (and the actual values, when known) of the first channels,
with the widest interval of a quantile or conformal forecast shaded."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from sigplex.core.figures import figure
from sigplex.core.infer import run_batched
from sigplex.datasets.tabular import SeriesFrame

from .inputs import model_inputs
from .intervals import bands as forecast_bands
from .intervals import point_of
from .series import scaler_of


def widest(bands: dict) -> tuple[str, np.ndarray, np.ndarray] | None:
    """``(label, lower, upper)`` of the widest interval among ``bands`` (conformal first), or None."""
    for lo, hi, label in [(k, "hi" + k[2:], f"{k[2:]}% conformal") for k in bands if k.startswith("lo")] + \
            [(k, "q" + str(100 - int(k[1:])), f"q{k[1:]}-q{100 - int(k[1:])}") for k in bands
             if k.startswith("q") and int(k[1:]) < 50]:
        if hi in bands:
            return label, bands[lo], bands[hi]
    return None


def forecast_plot(history: SeriesFrame, forecast: SeriesFrame, path: Path, *, truth: np.ndarray | None = None,
                  max_channels: int = 3, bands: dict | None = None) -> list[Path]:
    """Write the PNG atomically; returns ``[path]``, or ``[]`` without matplotlib."""
    n = min(max_channels, len(forecast.columns))
    band = widest(bands or {})
    written: list[Path] = []
    with figure(path, figsize=(9, 2.2 * n), dpi=90, written=written) as fig:
        if fig is not None:
            axes = fig.subplots(n, 1, sharex=True, squeeze=False)[:, 0]
            for c, ax in enumerate(axes):
                ax.plot(history.dates, history.values[:, c], lw=1.0, color="0.3", label="history")
                if truth is not None:
                    ax.plot(forecast.dates, truth[:, c], lw=1.0, color="tab:green", label="actual")
                if band is not None:
                    ax.fill_between(forecast.dates, band[1][:, c], band[2][:, c], color="tab:red", alpha=0.2,
                                    lw=0, label=band[0])
                ax.plot(forecast.dates, forecast.values[:, c], lw=1.3, color="tab:red", ls="--", label="forecast")
                ax.set_ylabel(str(forecast.columns[c]))
            axes[0].legend(loc="upper left", fontsize=8)
            fig.autofmt_xdate()
    return written


def test_plot(model, prepared, path: Path) -> list[Path]:
    """The figure of the last test window (else validation): history, actual values, forecast and band."""
    test = prepared.test if prepared.test is not None and len(prepared.test) else prepared.val
    if test is None or not len(test):
        return []
    i, scaler, cfg = len(test) - 1, scaler_of(prepared.state), prepared.config
    item = test[i]
    batch = {k: v[None] for k, v in item.items() if k != "y"}
    pred = run_batched(model, *model_inputs(batch))[0]
    point = scaler.inverse(point_of(pred, cfg.model.quantiles).double().numpy())
    hist, truth = (scaler.inverse(item[k].numpy().astype(np.float64)) for k in ("x", "y"))
    dates = test.dates[i:i + test.lookback + test.horizon]
    history = SeriesFrame(dates[:test.lookback], hist, test.columns)
    forecast = SeriesFrame(dates[test.lookback:], point, test.columns)
    return forecast_plot(history, forecast, path, truth=truth, bands=forecast_bands(pred, cfg, prepared.state, scaler))
