"""The ``forecast`` task: long-term multivariate forecasting under the standard protocol.

Data: a CSV (wide ETT layout or long ``unique_id, ds, y``) read by :mod:`sigplex.datasets.tabular`,
split 12/4/4 months (ETT-like) or 70/10/20, standardised with training statistics only, cut
into sliding windows (every test window kept). Loss: MSE on normalised data. Metrics: MSE/MAE
normalised and in original units, the repeat-last-value baseline, optional rolling-origin
scores. The training scaler travels with the checkpoint as buffers of :class:`Forecaster`, so
``predict`` forecasts in original units with nothing but the run directory.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Optional

import numpy as np
import torch
from pydantic import Field
from torch import nn

from sigplex.core.config import OptimConfig, Section, TaskConfig, TrainerConfig
from sigplex.core.errors import UserError
from sigplex.core.fileio import atomic_path
from sigplex.core.task import DataSplits, Task
from sigplex.datasets.tabular import (
    Scaler,
    SeriesFrame,
    WindowDataset,
    embedded_csv,
    future_dates,
    plan_splits,
    read_series,
    write_series,
)

MODEL_NAMES = ("itransformer", "tsmixer", "dctnet")


class ModelSection(Section):
    """Which forecaster and its size (fields a model does not use are ignored by it)."""

    name: Literal["itransformer", "tsmixer", "dctnet"] = "itransformer"
    n_vars: Optional[int] = Field(None, ge=1, description="number of series; default: the embedded data's channels")
    d_model: int = Field(128, ge=1)
    n_heads: int = Field(8, ge=1, description="itransformer, dctnet")
    n_layers: int = Field(2, ge=1)
    d_ff: int = Field(256, ge=1, description="itransformer, dctnet")
    dropout: float = Field(0.1, ge=0, lt=1)
    patch_len: int = Field(16, ge=1, description="tsmixer, dctnet")
    stride: int = Field(8, ge=1, description="tsmixer, dctnet")
    expansion: int = Field(2, ge=1, description="tsmixer MLP expansion")
    channel_mixing: bool = Field(True, description="tsmixer: hybrid channel mixing in every block")
    reconcile: bool = Field(False, description="tsmixer: online cross-channel reconciliation head")


class DataSection(Section):
    """CSV reading, protocol and the embedded synthetic series."""

    layout: Literal["auto", "wide", "long"] = "auto"
    date_column: str = Field("auto", description="wide layout: column of timestamps ('auto': date, ds, ...)")
    targets: list[str] = Field(default_factory=list, description="series to model (default: all)")
    fill: Literal["none", "ffill", "interpolate"] = "none"
    split: Literal["auto", "ett", "ratio"] = "auto"
    ratios: tuple[float, float, float] = (0.7, 0.1, 0.2)
    lookback: int = Field(96, ge=2)
    horizon: int = Field(96, ge=1)
    rolling_origins: int = Field(0, ge=0, description="extra scores at N forecast origins spaced by the horizon")
    cutoffs: list[str] = Field(default_factory=list, description="explicit forecast origins (timestamps)")
    synthetic_rows: int = Field(14400, ge=200)
    synthetic_channels: int = Field(7, ge=1)
    synthetic_seed: int = 0


class ForecastConfig(TaskConfig):
    model: ModelSection = Field(default_factory=ModelSection)
    data: DataSection = Field(default_factory=DataSection)
    trainer: TrainerConfig = Field(default_factory=lambda: TrainerConfig(
        max_steps=300, batch_size=32, eval_batch_size=256, val_every=100, checkpoint_every=100, log_every=20))
    optim: OptimConfig = Field(default_factory=lambda: OptimConfig(lr=1e-3, schedule="cosine", warmup_steps=20))


def n_vars_of(config) -> int:
    m, d = config.model, config.data
    if m.n_vars is not None:
        return m.n_vars
    return len(d.targets) if d.targets else d.synthetic_channels


class Forecaster(nn.Module):
    """A registered forecaster plus the training scaler as buffers (saved with every checkpoint).

    ``forward`` works on normalised data (what the trainer feeds); :meth:`forecast` takes and
    returns original units.
    """

    def __init__(self, net: nn.Module, n_vars: int):
        super().__init__()
        self.net = net
        self.register_buffer("scaler_mean", torch.zeros(n_vars))
        self.register_buffer("scaler_std", torch.ones(n_vars))
        self.register_buffer("scaler_fitted", torch.zeros(()))

    def forward(self, x):
        return self.net(x)

    @torch.no_grad()
    def set_scaler(self, scaler: Scaler) -> None:
        self.scaler_mean.copy_(torch.as_tensor(scaler.mean, dtype=self.scaler_mean.dtype))
        self.scaler_std.copy_(torch.as_tensor(scaler.std, dtype=self.scaler_std.dtype))
        self.scaler_fitted.fill_(1.0)

    def forecast(self, x_raw):
        """Original-unit history ``[B, L, C]`` -> original-unit forecast ``[B, H, C]``."""
        y = self.net((x_raw - self.scaler_mean) / self.scaler_std)
        return y * self.scaler_std + self.scaler_mean


def _unwrap(model):
    return getattr(model, "module", model)


@dataclass
class Forecast:
    """``predict``'s output: future timestamps, values ``[H, C]`` in original units, and the history."""

    frame: SeriesFrame
    history: SeriesFrame


class ForecastTask(Task):
    name = "forecast"
    config_class = ForecastConfig
    presets = {f"h{h}": {"data": {"horizon": h}} for h in (96, 192, 336, 720)}
    presets["long"] = {"trainer": {"max_steps": 3000, "val_every": 500, "checkpoint_every": 500,
                                   "early_stopping_patience": 3}}
    monitor, monitor_mode = "mse", "min"
    random_items = False  # windows are deterministic: no per-item seeding

    def configure(self, config, data):
        """Fill ``model.n_vars`` from the data when it was not given."""
        if config.model.n_vars is None:
            n = len(data.info.get("columns") or []) or n_vars_of(config)
            return config.model_copy(update={"model": config.model.model_copy(update={"n_vars": n})})
        return config

    def __init__(self):
        self._train_scaler: Scaler | None = None

    # --- building -------------------------------------------------------------------
    def build_model(self, config):
        from sigplex.core.models import create_model

        from . import dctnet, itransformer, tsmixer  # noqa: F401  (register the models)

        m, d = config.model, config.data
        n = n_vars_of(config)
        common = dict(n_vars=n, lookback=d.lookback, horizon=d.horizon, d_model=m.d_model, n_layers=m.n_layers,
                      dropout=m.dropout)
        if m.name in ("tsmixer", "dctnet") and m.patch_len > d.lookback:
            raise UserError(f"model.patch_len={m.patch_len} is longer than data.lookback={d.lookback}")
        if m.name in ("itransformer", "dctnet") and m.d_model % m.n_heads:
            raise UserError(f"model.d_model={m.d_model} must be divisible by model.n_heads={m.n_heads}")
        if m.name == "itransformer":
            kw = dict(n_heads=m.n_heads, d_ff=m.d_ff)
        elif m.name == "tsmixer":
            kw = dict(patch_len=m.patch_len, stride=m.stride, expansion=m.expansion, head_dropout=m.dropout,
                      channel_mixing=m.channel_mixing, reconcile=m.reconcile)
        else:
            kw = dict(n_heads=m.n_heads, d_ff=m.d_ff, patch_len=m.patch_len, stride=m.stride)
        return Forecaster(create_model(m.name, **common, **kw), n)

    def read(self, config, source) -> SeriesFrame:
        d = config.data
        return read_series(source, date_column=d.date_column, targets=d.targets or None, fill=d.fill, layout=d.layout)

    def build_data(self, config, data):
        d = config.data
        if data is None:
            frame = read_series(embedded_csv(d.synthetic_rows, d.synthetic_channels, d.synthetic_seed),
                                targets=d.targets or None)
        else:
            frame = self.read(config, data)
        n = config.model.n_vars or frame.values.shape[1]
        if frame.values.shape[1] != n:
            raise UserError(f"{frame.source}: has {frame.values.shape[1]} series but the model is configured for {n}; "
                            f"pass --set model.n_vars={frame.values.shape[1]} (or pick series with data.targets)")
        plan = plan_splits(len(frame), lookback=d.lookback, horizon=d.horizon, split=d.split, freq=frame.freq,
                           ratios=d.ratios, source=frame.source)
        t0, t1 = plan.train_rows
        scaler = Scaler.fit(frame.values[t0:t1])
        self._train_scaler = scaler
        values = scaler.transform(frame.values)
        sets = [WindowDataset(values, s, e, d.lookback, d.horizon, scaler=scaler, dates=frame.dates,
                              columns=frame.columns) for s, e in plan.borders]
        info = {"split": plan.kind, "borders": plan.borders, "freq": frame.freq, "columns": frame.columns,
                "source": frame.source}
        return DataSplits(*sets, info=info)

    # --- training -------------------------------------------------------------------
    def training_step(self, model, batch, config):
        if self._train_scaler is not None:
            _unwrap(model).set_scaler(self._train_scaler)
        pred = model(batch["x"])
        return torch.nn.functional.mse_loss(pred.float(), batch["y"].float())

    @torch.no_grad()
    def evaluate(self, model, dataset, config):
        device = next(model.parameters()).device
        loader = torch.utils.data.DataLoader(dataset, batch_size=config.trainer.eval_batch_size, shuffle=False,
                                             drop_last=False)
        std = torch.as_tensor(dataset.scaler.std, dtype=torch.float64) if dataset.scaler is not None else None
        sums = {"se": 0.0, "ae": 0.0, "se_o": 0.0, "ae_o": 0.0, "nse": 0.0, "nae": 0.0}
        count = 0
        per_window = []
        want_rolling = config.data.rolling_origins > 0 or bool(config.data.cutoffs)
        for batch in loader:
            x, y = batch["x"].to(device), batch["y"].to(device)
            err = (model(x).float() - y).double().cpu()
            naive = (x[:, -1:, :] - y).double().cpu()
            sums["se"] += float(err.pow(2).sum())
            sums["ae"] += float(err.abs().sum())
            sums["nse"] += float(naive.pow(2).sum())
            sums["nae"] += float(naive.abs().sum())
            if std is not None:
                sums["se_o"] += float((err * std).pow(2).sum())
                sums["ae_o"] += float((err.abs() * std).sum())
            count += err.numel()
            if want_rolling:
                per_window.append(torch.stack([err.pow(2).mean((1, 2)), err.abs().mean((1, 2))], 1))
        if count == 0:
            raise UserError("the evaluation split holds no window; lower data.lookback / data.horizon")
        out = {"mse": sums["se"] / count, "mae": sums["ae"] / count,
               "naive_mse": sums["nse"] / count, "naive_mae": sums["nae"] / count,
               "n_windows": float(len(dataset))}
        if std is not None:
            out.update(mse_orig=sums["se_o"] / count, mae_orig=sums["ae_o"] / count)
        if want_rolling:
            scores = torch.cat(per_window)
            origins = self.origins(dataset, config)
            out.update(rolling_mse=float(scores[origins, 0].mean()), rolling_mae=float(scores[origins, 1].mean()),
                       rolling_n=float(len(origins)))
        return out

    @staticmethod
    def origins(dataset: WindowDataset, config) -> list[int]:
        """Window indices of the rolling-origin evaluation: explicit cut-offs, else N spaced by the horizon."""
        d = config.data
        if d.cutoffs:
            return [dataset.window_at(c) for c in d.cutoffs]
        last = len(dataset) - 1
        idx = [last - j * d.horizon for j in range(d.rolling_origins) if last - j * d.horizon >= 0]
        return sorted(idx)

    # --- using ----------------------------------------------------------------------
    def predict(self, model, inputs, config):
        d = config.data
        frame = self.read(config, inputs)
        net = _unwrap(model)
        if float(net.scaler_fitted) != 1.0:
            raise UserError("the checkpoint holds no training scaler (was it trained with this task?)")
        n = net.scaler_mean.numel()
        if frame.values.shape[1] != n:
            raise UserError(f"{frame.source}: has {frame.values.shape[1]} series but the model was trained on {n}; "
                            "give the same columns (or data.targets) as in training")
        if len(frame) < d.lookback:
            raise UserError(f"{frame.source}: has {len(frame)} rows; the model needs the last data.lookback = "
                            f"{d.lookback} rows to forecast")
        if frame.freq is None:
            raise UserError(f"{frame.source}: cannot infer the time step from column {frame.date_column!r}; "
                            "expected regularly spaced timestamps")
        device = net.scaler_mean.device
        x = torch.as_tensor(np.array(frame.values[-d.lookback:], dtype=np.float32), device=device)[None]
        y = net.forecast(x)[0].double().cpu().numpy()
        dates = future_dates(frame.dates[-1], frame.freq, d.horizon)
        out = SeriesFrame(dates, y, list(frame.columns), frame.source, frame.layout, frame.date_column, frame.freq)
        keep = min(len(frame), max(d.lookback, 2 * d.horizon))
        history = SeriesFrame(frame.dates[-keep:], frame.values[-keep:], list(frame.columns), frame.source,
                              frame.layout, frame.date_column, frame.freq)
        return Forecast(out, history)

    def write_prediction(self, prediction, output: Path, *, source=None, overwrite: bool = False) -> list[Path]:
        output = Path(output)
        if output.suffix.lower() != ".csv":
            raise UserError(f"--output {output}: expected a .csv file name")
        plot = output.with_suffix(".png")
        for path in (output, plot):
            if path.exists() and not overwrite:
                raise UserError(f"--output {path}: already exists; choose another path or pass --overwrite")
        written = [write_series(prediction.frame, output, overwrite=overwrite)]
        png = forecast_plot(prediction.history, prediction.frame, plot, overwrite=overwrite)
        if png is not None:
            written.append(png)
        return written

    def example_input(self, config):
        return torch.randn(1, config.data.lookback, n_vars_of(config))

    def plots(self, model, data: DataSplits, config, run_dir: Path) -> list[Path]:
        test = data.test if data.test is not None and len(data.test) else data.val
        if test is None or not len(test):
            return []
        item = test[len(test) - 1]
        device = next(model.parameters()).device
        pred = model(item["x"][None].to(device))[0].float().cpu().numpy()
        scaler = test.scaler
        hist = scaler.inverse(item["x"].numpy().astype(np.float64))
        truth = scaler.inverse(item["y"].numpy().astype(np.float64))
        pred = scaler.inverse(pred.astype(np.float64))
        i = len(test) - 1
        dates = test.dates[i:i + test.lookback + test.horizon]
        history = SeriesFrame(dates[:test.lookback], hist, test.columns)
        forecast = SeriesFrame(dates[test.lookback:], pred, test.columns)
        path = forecast_plot(history, forecast, Path(run_dir) / "plots" / "forecast_test.png", overwrite=True,
                             truth=truth)
        return [path] if path is not None else []


def forecast_plot(history: SeriesFrame, forecast: SeriesFrame, path: Path, *, overwrite: bool = False,
                  truth: np.ndarray | None = None, max_channels: int = 3) -> Path | None:
    """History and forecast of the first few channels as a PNG (None without matplotlib)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    n = min(max_channels, len(forecast.columns))
    fig, axes = plt.subplots(n, 1, figsize=(9, 2.2 * n), sharex=True, squeeze=False)
    for c in range(n):
        ax = axes[c, 0]
        ax.plot(history.dates, history.values[:, c], lw=1.0, color="0.3", label="history")
        if truth is not None:
            ax.plot(forecast.dates, truth[:, c], lw=1.0, color="tab:green", label="actual")
        ax.plot(forecast.dates, forecast.values[:, c], lw=1.3, color="tab:red", ls="--", label="forecast")
        ax.set_ylabel(str(forecast.columns[c]))
    axes[0, 0].legend(loc="upper left", fontsize=8)
    fig.autofmt_xdate()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path, overwrite=overwrite) as tmp:
        fig.savefig(tmp, format="png", dpi=90)
    plt.close(fig)
    return path
