"""Config sections of the eeg_conformer tasks (model, data: reading, preprocessing, windows, protocol).

The training montage lives in ``data.channels`` (the order is the model's input order). Left
unset (``null``), it is resolved from the data (the EEG channels of the first recording) by the
task's ``build_data`` before the model is built; the completed config (``config.yaml``) and the
run's prepared state both carry it, so prediction matches channels by name.
"""
from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from sigplex.core.config import ModelConfig, OptimConfig, Section, TaskConfig, TrainerConfig
from sigplex.datasets.eeg.simulate import MI_CLASSES


class ModelSection(ModelConfig):
    """DBConformer arguments (n_chans, n_outputs, n_times, sfreq come from ``data``)."""

    name: Literal["dbconformer"] = "dbconformer"
    emb_dim: int = Field(40, ge=2)
    heads: int = Field(10, ge=1)
    temporal_depth: int = Field(2, ge=0)
    spatial_depth: int = Field(2, ge=0)
    mlp_ratio: float = Field(4.0, gt=0)
    dropout: float = Field(0.5, ge=0, lt=1)
    attn_dropout: float = Field(0.0, ge=0, lt=1)
    temporal_kernel: int | None = Field(None, ge=1, description="samples; default 0.25 s")
    pool_size: int | None = Field(None, ge=1, description="samples; default 0.5 s")
    pool_stride: int | None = Field(None, ge=1)
    spatial_filters: int = Field(16, ge=1)
    spatial_kernel: int | None = Field(None, ge=1, description="samples; default 0.1 s")
    spatial_stride: int | None = Field(None, ge=1, description="samples; default 0.02 s")
    attn_scale: Literal["embed", "head"] = "embed"

    @model_validator(mode="after")
    def _heads_divide(self):
        if self.emb_dim % self.heads:
            raise ValueError(f"emb_dim={self.emb_dim} must be divisible by heads={self.heads}")
        return self


class EEGDataSection(Section):
    """Reading, preprocessing and splitting shared by both tasks."""

    channels: list[str] | None = Field(None, min_length=1, description="training montage: channel names in "
                                       "model input order; null = the EEG channels of the first recording")
    sfreq: float = Field(250.0, gt=0, description="sampling rate the model runs at")
    resample: bool = Field(False, description="resample recordings whose rate differs from sfreq")
    reference: Literal["average"] | list[str] | None = "average"
    notch: list[float] = Field(default_factory=lambda: [50.0])
    l_freq: float | None = Field(4.0, ge=0)
    h_freq: float | None = Field(40.0, gt=0)
    window_s: float = Field(4.0, gt=0, description="window length in seconds")
    scale: float = Field(1e6, gt=0, description="multiply signals by this (volts -> microvolts)")
    euclidean_alignment: bool = Field(True, description="whiten each subject by its mean covariance")
    subjects: list[str] | None = Field(None, description="use only these subjects")
    protocol: Literal["loso", "within", "kfold"] = "loso"
    test_subject: str | None = Field(None, description="loso: held-out subject (default: subjects[fold])")
    val_subject: str | None = Field(None, description="loso: validation subject (default: the one before)")
    fold: int = Field(-1, description="loso: index of the held-out subject; kfold: index of the test fold")
    n_folds: int = Field(5, ge=2)
    test_fraction: float = Field(0.2, gt=0, lt=1, description="within: last fraction of each subject's epochs")
    val_fraction: float = Field(0.2, ge=0, lt=1, description="within/kfold: last fraction of training epochs")
    # embedded default data
    sim_subjects: int = Field(8, ge=2)
    sim_seed: int = 0

    @field_validator("channels")
    @classmethod
    def _unique(cls, v):
        if v is None:
            return v
        dupes = sorted({c for c in v if v.count(c) > 1})
        if dupes:
            raise ValueError(f"duplicate channel names {dupes}")
        return v

    @model_validator(mode="after")
    def _fold_in_range(self):
        if self.protocol == "kfold" and not -self.n_folds <= self.fold < self.n_folds:
            raise ValueError(f"data.fold={self.fold} is out of range for data.n_folds={self.n_folds}")
        return self

    @property
    def n_times(self) -> int:
        return int(round(self.window_s * self.sfreq))


class MIDataSection(EEGDataSection):
    """Motor imagery: epochs after class events."""

    classes: list[str] = Field(default_factory=lambda: list(MI_CLASSES), min_length=2)
    event_id: dict[str, str | int] = Field(
        default_factory=dict, description="class -> annotation description or stim code (default: the class name)")
    tmin: float = Field(0.0, description="window start relative to the event (s)")
    baseline: tuple[float, float] | None = Field(None, description="(start, stop) s relative to the event")
    sim_trials: int = Field(60, ge=4)

    @model_validator(mode="after")
    def _event_keys(self):
        unknown = [k for k in self.event_id if k not in self.classes]
        if unknown:
            raise ValueError(f"event_id keys {unknown} are not in classes {self.classes}")
        return self

    def event_map(self) -> dict[str, str | int]:
        return {c: self.event_id.get(c, c) for c in self.classes}


class SeizureDataSection(EEGDataSection):
    """Seizure detection: sliding windows, labels from annotations."""

    sfreq: float = Field(128.0, gt=0)
    l_freq: float | None = Field(1.0, ge=0)
    h_freq: float | None = Field(40.0, gt=0)
    window_s: float = Field(4.0, gt=0)
    stride_s: float = Field(2.0, gt=0, description="step between windows (s)")
    seizure_labels: list[str] = Field(default_factory=lambda: ["seizure", "sz"], min_length=1,
                                      description="annotation descriptions marking seizures (case-insensitive)")
    min_overlap: float = Field(0.5, gt=0, le=1, description="seizure fraction that makes a window positive")
    threshold: float = Field(0.5, gt=0, lt=1, description="seizure probability for an alarm")
    classes: list[str] = Field(default_factory=lambda: ["background", "seizure"], min_length=2, max_length=2)
    sim_subjects: int = Field(6, ge=2)
    sim_minutes: float = Field(10.0, gt=1)


class MotorImageryConfig(TaskConfig):
    model: ModelSection = Field(default_factory=ModelSection)
    data: MIDataSection = Field(default_factory=MIDataSection)
    trainer: TrainerConfig = Field(default_factory=lambda: TrainerConfig(
        max_steps=300, batch_size=32, val_every=30, checkpoint_every=30, log_every=10, early_stopping_patience=4))
    optim: OptimConfig = Field(default_factory=lambda: OptimConfig(name="adam", lr=1e-3))


class SeizureConfig(TaskConfig):
    model: ModelSection = Field(default_factory=ModelSection)
    data: SeizureDataSection = Field(default_factory=SeizureDataSection)
    trainer: TrainerConfig = Field(default_factory=lambda: TrainerConfig(
        max_steps=400, batch_size=32, val_every=50, checkpoint_every=50, log_every=20))
    optim: OptimConfig = Field(default_factory=lambda: OptimConfig(name="adam", lr=1e-3))


__all__ = ["EEGDataSection", "MIDataSection", "ModelSection", "MotorImageryConfig", "SeizureConfig",
           "SeizureDataSection"]
