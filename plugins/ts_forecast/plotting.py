"""The forecast figure: history, forecast (and the actual values, when known) of the first channels."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from sigplex.core.figures import figure
from sigplex.datasets.tabular import SeriesFrame


def forecast_plot(history: SeriesFrame, forecast: SeriesFrame, path: Path, *, truth: np.ndarray | None = None,
                  max_channels: int = 3) -> list[Path]:
    """Write the PNG atomically; returns ``[path]``, or ``[]`` without matplotlib."""
    n = min(max_channels, len(forecast.columns))
    written: list[Path] = []
    with figure(path, figsize=(9, 2.2 * n), dpi=90, written=written) as fig:
        if fig is not None:
            axes = fig.subplots(n, 1, sharex=True, squeeze=False)[:, 0]
            for c, ax in enumerate(axes):
                ax.plot(history.dates, history.values[:, c], lw=1.0, color="0.3", label="history")
                if truth is not None:
                    ax.plot(forecast.dates, truth[:, c], lw=1.0, color="tab:green", label="actual")
                ax.plot(forecast.dates, forecast.values[:, c], lw=1.3, color="tab:red", ls="--", label="forecast")
                ax.set_ylabel(str(forecast.columns[c]))
            axes[0].legend(loc="upper left", fontsize=8)
            fig.autofmt_xdate()
    return written
