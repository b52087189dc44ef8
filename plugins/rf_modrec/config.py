"""The ``classify`` task's config: model choice and options, data (generated or RadioML files), trainer defaults."""
from __future__ import annotations

import inspect
from typing import Any, Optional

from pydantic import Field, model_validator

from sigplex.core.config import ModelConfig, OptimConfig, Section, TaskConfig, TrainerConfig

FIXED_ARGS = ("n_classes", "n_samples", "in_channels", "dropout")


class ModelSection(ModelConfig):
    """``name``: a registered rf model (clst, kd_cnn, kd_mobilenet, vtcnn2); ``options``: its other arguments."""

    name: str = "clst"
    dropout: Optional[float] = Field(None, ge=0, lt=1, description="the model's default if unset")
    options: dict[str, Any] = Field(default_factory=dict, description="e.g. dims=[32, 64, 128] for clst")

    def arguments(self) -> dict[str, Any]:
        """``options``, and ``dropout`` when set (else the model's default)."""
        return dict(self.options, **({"dropout": self.dropout} if self.dropout is not None else {}))

    @model_validator(mode="after")
    def _known_options(self):
        from sigplex.core.errors import UserError
        from sigplex.core.models import model_entry

        try:
            entry = model_entry(self.name)
        except UserError as exc:
            raise ValueError(str(exc).removeprefix("model.name: ")) from None
        if entry.domain != "rf":
            raise ValueError(f"{self.name!r} is a {entry.domain} model; expected an rf model (clst, kd_cnn, "
                             "kd_mobilenet, vtcnn2)")
        accepted = set(inspect.signature(entry.cls).parameters) - set(FIXED_ARGS)
        unknown = sorted(set(self.options) - accepted)
        if unknown:
            raise ValueError(f"options {unknown} are not arguments of {self.name}; expected some of {sorted(accepted)}")
        return self


class ChannelSection(Section):
    """Impairments of the generated frames (see sigplex.datasets.rf.generator.Impairments)."""

    fading: bool = True
    max_delay: float = Field(2.5, ge=0, description="largest multipath delay, samples")
    max_sro: float = Field(0.005, ge=0, lt=0.1, description="largest relative sample-rate offset")
    max_cfo: float = Field(0.002, ge=0, lt=0.5, description="largest carrier offset, cycles/sample")
    silence: float = Field(0.1, ge=0, le=1, description="share of analog frames that are an audio pause")


class DataSection(Section):
    """Generated frames (no --data) or a RadioML file; ``classes``/``n_samples`` are completed from the data."""

    classes: Optional[list[str]] = None
    n_samples: int = Field(128, ge=8, description="samples per frame (the generated length; a file's own)")
    snrs: list[float] = Field(default_factory=lambda: [float(s) for s in range(-20, 20, 2)])
    train_per: int = Field(100, ge=1, description="generated training frames per class and SNR")
    val_per: int = Field(5, ge=1)
    test_per: int = Field(50, ge=1, description="frames per class and SNR of the fixed held-out test set")
    seed: int = Field(0, ge=0, description="training/validation frames; the test set uses test_seed")
    test_seed: int = Field(2016, ge=0)
    fresh_noise: bool = Field(True, description="draw new noise and carrier phase on every access of a training frame")
    channel: ChannelSection = Field(default_factory=ChannelSection)
    normalize: bool = Field(True, description="scale every frame to unit mean power (as generated)")
    split: tuple[float, float, float] = (0.8, 0.1, 0.1)
    max_frames: Optional[int] = Field(None, ge=1, description="read at most this many frames of a file")
    high_snr: float = Field(10.0, description="SNR (dB) from which acc_high and the confusion matrix count")

    @model_validator(mode="after")
    def _distinct_seeds(self):
        if self.test_seed in (self.seed, self.seed + 10_000):
            raise ValueError(f"test_seed={self.test_seed} must differ from seed and seed + 10000 (validation)")
        return self


class ClassifyConfig(TaskConfig):
    model: ModelSection = Field(default_factory=ModelSection)
    data: DataSection = Field(default_factory=DataSection)
    trainer: TrainerConfig = Field(default_factory=lambda: TrainerConfig(
        max_steps=900, batch_size=128, eval_batch_size=1024, val_every=300, checkpoint_every=300, log_every=50))
    optim: OptimConfig = Field(default_factory=lambda: OptimConfig(lr=2e-3, weight_decay=0.01, schedule="cosine",
                                                                   warmup_steps=50, min_lr_ratio=0.05))
