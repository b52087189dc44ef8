"""Config of the ``forecast`` task: which forecaster and its size, CSV reading and the protocol.

``model.n_vars`` left unset is completed from the data by ``ForecastTask.build_data`` (and
saved with the run, so ``predict`` rebuilds the same model).
"""
from __future__ import annotations

from typing import Literal, Optional

from pydantic import Field, model_validator

from sigplex.core.config import ModelConfig, OptimConfig, Section, TaskConfig, TrainerConfig


class ModelSection(ModelConfig):
    """Which forecaster and its size (fields a model does not use are ignored by it)."""

    name: Literal["itransformer", "tsmixer", "dctnet", "ssmixer"] = "itransformer"
    n_vars: Optional[int] = Field(None, ge=1, description="number of series; default: the data's")
    d_model: int = Field(128, ge=1)
    n_heads: int = Field(8, ge=1, description="itransformer, dctnet")
    n_layers: int = Field(2, ge=1)
    d_ff: int = Field(256, ge=1, description="itransformer, dctnet")
    dropout: float = Field(0.1, ge=0, lt=1)
    patch_len: Optional[int] = Field(None, ge=1, description="tsmixer, dctnet, ssmixer (default 16; 48 for "
                                     "ssmixer)")
    stride: Optional[int] = Field(None, ge=1, description="tsmixer, dctnet, ssmixer (default 8; 24 for ssmixer)")
    state_dim: int = Field(16, ge=1, description="ssmixer: SSM state size")
    mixer: Literal["s4d", "mamba"] = Field("s4d", description="ssmixer: S4D token mixer + channel MLP, or "
                                           "MambaMixer's dual selective (Mamba) token and channel mixers")
    expansion: int = Field(2, ge=1, description="tsmixer MLP expansion")
    channel_mixing: bool = Field(True, description="tsmixer: hybrid channel mixing in every block")
    reconcile: bool = Field(False, description="tsmixer: online cross-channel reconciliation head")
    quantiles: list[float] = Field(default_factory=list, description="quantile forecasts trained with the pinball "
                                   "loss, e.g. [0.1, 0.5, 0.9] (must hold 0.5, the point forecast); [] = point")
    conformal: bool = Field(False, description="split-conformal intervals calibrated on the validation split")
    level: float = Field(0.8, gt=0, lt=1, description="conformal interval level of a point model")
    n_hist: Optional[int] = Field(None, ge=0, description="past-only covariate columns; default: the data's")
    n_futr: Optional[int] = Field(None, ge=0, description="future-known covariate columns (calendar included)")
    n_stat: Optional[int] = Field(None, ge=0, description="static features per series; default: the data's")

    def patching(self) -> tuple[int, int]:
        """``(patch_len, stride)``: the configured ones, else 16 and 8 (48 and 24 for ssmixer's long lookbacks)."""
        long = self.name == "ssmixer"
        return self.patch_len or (48 if long else 16), self.stride or (24 if long else 8)

    def arguments(self) -> dict:
        """The fields the model ``name`` takes (``n_vars``, ``lookback`` and ``horizon`` come from the data)."""
        common = dict(d_model=self.d_model, n_layers=self.n_layers, dropout=self.dropout, n_hist=self.n_hist or 0,
                      n_futr=self.n_futr or 0, n_stat=self.n_stat or 0, n_quantiles=max(len(self.quantiles), 1))
        if self.name == "itransformer":
            return dict(common, n_heads=self.n_heads, d_ff=self.d_ff)
        patch_len, stride = self.patching()
        if self.name == "ssmixer":
            return dict(common, patch_len=patch_len, stride=stride, state_dim=self.state_dim, expand=self.expansion,
                        mixer=self.mixer)
        if self.name == "tsmixer":
            return dict(common, patch_len=patch_len, stride=stride, expansion=self.expansion,
                        head_dropout=self.dropout, channel_mixing=self.channel_mixing, reconcile=self.reconcile)
        return dict(common, n_heads=self.n_heads, d_ff=self.d_ff, patch_len=patch_len, stride=stride)

    @model_validator(mode="after")
    def _quantiles_hold_the_median(self):
        q = self.quantiles
        if q and (sorted(set(q)) != q or q[0] <= 0 or q[-1] >= 1 or 0.5 not in q):
            raise ValueError(f"model.quantiles={q}: expected increasing levels in (0, 1) holding 0.5, "
                             "e.g. [0.1, 0.5, 0.9]")
        return self

    @model_validator(mode="after")
    def _heads_divide(self):
        if self.name in ("itransformer", "dctnet") and self.d_model % self.n_heads:
            raise ValueError(f"d_model={self.d_model} must be divisible by n_heads={self.n_heads}")
        return self


class DataSection(Section):
    """CSV reading, protocol and the embedded synthetic series."""

    layout: Literal["auto", "wide", "long"] = "auto"
    date_column: str = Field("auto", description="wide layout: column of timestamps ('auto': date, ds, ...)")
    targets: list[str] = Field(default_factory=list, description="series to model (default: all)")
    dayfirst: Optional[bool] = Field(None, description="dd/mm dates: true or false forces the order (default: "
                                     "recognised; a file that reads regularly both ways is read month-first)")
    fill: Literal["none", "ffill", "interpolate"] = "none"
    split: Literal["auto", "ett", "ratio"] = "auto"
    ratios: tuple[float, float, float] = (0.7, 0.1, 0.2)
    lookback: int = Field(96, ge=2)
    horizon: int = Field(96, ge=1)
    season: Optional[int] = Field(None, ge=0, description="rows per season of the seasonal-naive baseline "
                                  "(default: from the time step, e.g. 24 for hourly; 0: none)")
    rolling_origins: int = Field(0, ge=0, description="extra scores at N forecast origins spaced by the horizon")
    cutoffs: list[str] = Field(default_factory=list, description="explicit forecast origins (timestamps)")
    hist_exog: list[str] = Field(default_factory=list, description="covariate columns known only in the past")
    futr_exog: list[str] = Field(default_factory=list, description="covariate columns known for the horizon too "
                                 "(predict input: rows after the last target value carry them)")
    stat_exog: list[str] = Field(default_factory=list, description="static feature columns of data.static")
    static: Optional[str] = Field(None, description="long layout: CSV of unique_id + data.stat_exog, one row a series")
    calendar: list[Literal["hour", "dow", "dom", "doy", "month"]] = Field(
        default_factory=list, description="future-known sine/cosine features of the time index")
    holidays: Optional[str] = Field(None, description="country code of a public-holiday flag (needs `holidays`)")
    synthetic_rows: int = Field(14400, ge=200)
    synthetic_channels: int = Field(7, ge=1)
    synthetic_seed: int = 0

    @model_validator(mode="after")
    def _static_needs_columns(self):
        if bool(self.stat_exog) != bool(self.static):
            raise ValueError("data.stat_exog and data.static go together: the columns and the CSV that holds them")
        return self


class ForecastConfig(TaskConfig):
    model: ModelSection = Field(default_factory=ModelSection)
    data: DataSection = Field(default_factory=DataSection)
    trainer: TrainerConfig = Field(default_factory=lambda: TrainerConfig(
        max_steps=300, batch_size=32, eval_batch_size=256, val_every=100, checkpoint_every=100, log_every=20))
    optim: OptimConfig = Field(default_factory=lambda: OptimConfig(lr=1e-3, schedule="cosine", warmup_steps=20))

    @model_validator(mode="after")
    def _patch_fits(self):
        m = self.model
        if m.name != "itransformer" and m.patching()[0] > self.data.lookback:
            raise ValueError(f"model.patch_len={m.patching()[0]} is longer than data.lookback={self.data.lookback}")
        return self


def n_vars_of(config) -> int:
    """The number of series the model takes: ``model.n_vars``, else the targets or synthetic channels."""
    m, d = config.model, config.data
    if m.n_vars is not None:
        return m.n_vars
    return len(d.targets) if d.targets else d.synthetic_channels
