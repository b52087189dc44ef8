"""Config of the ``chest`` task: model size, grid and pilots, channel models and condition ranges, loss.

Also the facts the config decides: the grid (:func:`grid_of`), the condition ranges of a split
(:func:`conditions_of`) and whether the model takes the priors (:func:`uses_priors`).
"""
from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from sigplex.core.config import ModelConfig, OptimConfig, Section, TaskConfig, TrainerConfig
from sigplex.datasets.ofdm import Conditions, OFDMGrid


class ModelSection(ModelConfig):
    """AdaFortiTran (with priors) or FortiTran (without) and its size."""

    name: Literal["adafortitran", "fortitran"] = "adafortitran"
    patch: tuple[int, int] = Field((3, 2), description="patch (subcarriers, symbols); must divide the grid")
    dim: int = Field(128, ge=4)
    depth: int = Field(6, ge=1)
    heads: int = Field(4, ge=1)
    mlp_ratio: float = Field(4.0, gt=0)
    dropout: float = Field(0.0, ge=0, lt=1, description="the paper's 0.1 is in the 'paper' preset; fresh grids "
                           "every step leave nothing to overfit")

    @model_validator(mode="after")
    def _heads_divide(self):
        if self.dim % self.heads:
            raise ValueError(f"dim={self.dim} must be divisible by heads={self.heads}")
        return self


class DataSection(Section):
    """Grid, pilot pattern, channel models and the train/evaluation condition ranges."""

    n_subcarriers: int = Field(120, ge=2)
    n_symbols: int = Field(14, ge=1)
    pilot_every: int = Field(10, ge=1, description="a pilot on every N-th subcarrier")
    pilot_offset: int = Field(0, ge=0)
    pilot_symbols: list[int] = Field(default_factory=lambda: [2, 11], description="0-based OFDM symbols with pilots")
    subcarrier_spacing: float = Field(30e3, gt=0, description="Hz")
    carrier_frequency: float = Field(3.5e9, gt=0, description="Hz")
    cp_length: int = Field(8, ge=0, description="cyclic prefix, samples of the FFT")
    models: list[str] = Field(default_factory=lambda: ["TDL-A"], min_length=1, description="TDL-A..E, CDL-A..E")
    train_snr_db: tuple[float, float] = (0.0, 30.0)
    train_delay_spread_ns: tuple[float, float] = (50.0, 350.0)
    train_doppler_hz: tuple[float, float] = (200.0, 1400.0)
    eval_snr_db: list[float] = Field(default_factory=lambda: [0.0, 5.0, 10.0, 15.0, 20.0, 25.0], min_length=1)
    eval_delay_spread_ns: tuple[float, float] = (50.0, 300.0)
    eval_doppler_hz: tuple[float, float] = (200.0, 1000.0)
    train_size: int = Field(20000, ge=1, description="grids per epoch (fresh each time)")
    val_size: int = Field(120, ge=1)
    test_size: int = Field(600, ge=1)
    seed: int = 0
    baselines: list[Literal["ls", "lmmse", "genie"]] = Field(default_factory=lambda: ["ls", "lmmse", "genie"])

    @model_validator(mode="after")
    def _grid_and_models(self):
        grid_from(self).check()
        Conditions(tuple(self.models)).check()
        return self


class LossSection(Section):
    """``mse`` on the real/imag grid (the paper's) or ``nmse_db``: the batch mean of each grid's NMSE in dB.

    With SNR drawn uniformly over 0-30 dB, MSE is dominated by the low-SNR grids (their
    error is ~15 dB larger); ``nmse_db`` weighs every grid's relative error alike.
    """

    name: Literal["mse", "nmse_db"] = "nmse_db"


class ChestConfig(TaskConfig):
    model: ModelSection = Field(default_factory=ModelSection)
    data: DataSection = Field(default_factory=DataSection)
    loss: LossSection = Field(default_factory=LossSection)
    trainer: TrainerConfig = Field(default_factory=lambda: TrainerConfig(
        max_steps=2000, batch_size=16, eval_batch_size=64, val_every=250, checkpoint_every=250, log_every=20))
    optim: OptimConfig = Field(default_factory=lambda: OptimConfig(name="adam", lr=1e-3, schedule="cosine",
                                                                   min_lr_ratio=0.02, warmup_steps=200))

    @model_validator(mode="after")
    def _patch_divides_grid(self):
        (pf, ps), d = self.model.patch, self.data
        if d.n_subcarriers % pf or d.n_symbols % ps:
            raise ValueError(f"model.patch={[pf, ps]} must divide the grid {d.n_subcarriers}x{d.n_symbols}")
        return self


def grid_from(d: DataSection) -> OFDMGrid:
    return OFDMGrid(d.n_subcarriers, d.n_symbols, d.pilot_every, d.pilot_offset, tuple(d.pilot_symbols),
                    d.subcarrier_spacing, d.carrier_frequency, d.cp_length)


def grid_of(config) -> OFDMGrid:
    """The resource grid and pilot pattern of ``config.data``."""
    return grid_from(config.data)


def conditions_of(config, split: str) -> Conditions:
    """Training ranges for ``split="train"``, else the evaluation ranges and SNR points."""
    d = config.data
    if split == "train":
        return Conditions(tuple(d.models), d.train_snr_db, d.train_delay_spread_ns, d.train_doppler_hz)
    return Conditions(tuple(d.models), (min(d.eval_snr_db), max(d.eval_snr_db)), d.eval_delay_spread_ns,
                      d.eval_doppler_hz, tuple(d.eval_snr_db))


def uses_priors(config) -> bool:
    """AdaFortiTran takes the priors (SNR dB, delay spread ns, Doppler Hz) as a second input; FortiTran does not."""
    return config.model.name == "adafortitran"
