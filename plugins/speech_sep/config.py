"""Config of the ``separate`` task: the separator (``model``), audio and mixing (``data``), presets.

The defaults are a small CPU model; the ``paper`` preset is MossFormer2 at the paper's size and
recipe. Values that cannot work together are rejected here, before anything is built.
"""
from __future__ import annotations

from typing import Literal, Optional

from pydantic import Field, model_validator

from sigplex.core.config import ModelConfig, OptimConfig, Section, TaskConfig, TrainerConfig


class ModelSection(ModelConfig):
    """Which separator and its size; the defaults are a small CPU model (see the ``paper`` preset)."""

    name: Literal["mossformer2", "mossformer"] = "mossformer2"
    variant: Literal["sigplex", "clearvoice"] = Field(
        "sigplex", description="mossformer2: 'clearvoice' is ClearerVoice-Studio's form of the network, the one "
                               "their MossFormer2_SS checkpoints need (presets clearvoice-16k, clearvoice-8k)")
    num_spks: int = Field(2, ge=1, le=8)
    dim: int = Field(64, ge=4, description="encoder channels N (512 in the paper); even (sinusoidal positions)")
    num_layers: int = Field(4, ge=1, description="MossFormer(2) blocks (24 in the paper)")
    kernel_size: int = Field(16, ge=2, description="encoder/decoder kernel")
    stride: int = Field(8, ge=1, description="encoder/decoder stride")
    group_size: int = Field(64, ge=2, description="local attention chunk in frames (256 in the paper)")
    query_key_dim: int = Field(32, ge=4, description="shared qk width (128 in the paper)")
    expansion_factor: float = Field(2.0, gt=0)
    rotary_dim: int = Field(16, ge=0, description="rotary channels of q/k (32 in the paper)")
    fsmn_inner: int = Field(32, ge=2, description="mossformer2: recurrent module width (256 in the paper)")
    fsmn_kernel: int = Field(15, ge=1, description="mossformer2: FSMN memory kernel (39 in the paper)")
    dropout: float = Field(0.0, ge=0, lt=1)
    attn_dropout: float = Field(0.0, ge=0, lt=1)

    @model_validator(mode="after")
    def _consistent(self):
        if self.dim % 2:
            raise ValueError(f"model.dim={self.dim}: expected an even number (sinusoidal positions)")
        if self.rotary_dim and (self.rotary_dim % 2 or self.rotary_dim > self.query_key_dim):
            raise ValueError(f"model.rotary_dim={self.rotary_dim}: expected an even number <= model.query_key_dim="
                             f"{self.query_key_dim}")
        if self.variant == "clearvoice" and self.name != "mossformer2":
            raise ValueError(f"model.variant=clearvoice: only model.name=mossformer2 has it, not {self.name}")
        if self.kernel_size < self.stride:
            raise ValueError(f"model.kernel_size={self.kernel_size}: expected >= model.stride={self.stride}")
        return self

    def arguments(self) -> dict:
        """Keyword arguments of the registered model ``name``."""
        kw = self.model_dump(exclude={"name", "fsmn_inner", "fsmn_kernel", "variant"})
        if self.name == "mossformer2":
            kw.update(fsmn_inner=self.fsmn_inner, fsmn_kernel=self.fsmn_kernel, variant=self.variant)
        return kw


class DataSection(Section):
    """Audio format, segments, mixing and long-audio inference."""

    sample_rate: int = Field(8000, ge=1000, description="Hz; the embedded corpus is resampled to it")
    resample: bool = Field(False, description="resample files at another rate instead of stopping with an error")
    segment_seconds: float = Field(1.0, gt=0, description="training crop length")
    eval_seconds: Optional[float] = Field(3.0, gt=0, description="evaluation crop (None: whole files)")
    dynamic_mixing: bool = Field(True, description="train on fresh random mixtures of the training sources")
    gain_db: float = Field(2.5, ge=0, description="dynamic mixing: per-source gain in [-gain_db, gain_db] dB")
    speed_perturb: float = Field(0.1, ge=0, lt=0.5, description="dynamic mixing: speed factors 1 +- p, 1 +- p/2, 1")
    formant_shift: float = Field(0.0, ge=0, lt=0.5, description="dynamic mixing: formant shift up to +- this (relative)")
    tempo_perturb: float = Field(0.0, ge=0, lt=0.5, description="dynamic mixing: tempo change up to +- this, pitch kept")
    eq_db: float = Field(0.0, ge=0, le=24, description="dynamic mixing: random EQ of up to +- this many dB")
    p_voice: float = Field(0.5, ge=0, le=1, description="dynamic mixing: probability of each voice step per source")
    reverb: float = Field(0.0, ge=0, le=1, description="dynamic mixing: share of mixtures in a simulated room")
    noise: float = Field(0.0, ge=0, le=1, description="dynamic mixing: share of mixtures with background noise")
    noise_snr_db: tuple[float, float] = Field((10.0, 30.0), description="dynamic mixing: noise SNR range (dB)")
    extra_voices: Optional[str] = Field(
        None, description="dynamic mixing: a folder of speaker folders (ROOT/SPEAKER/*.wav|flac, single talkers) "
                          "whose recordings join the training voices; leading/trailing silence is trimmed")
    extra_voices_share: Optional[float] = Field(
        None, ge=0, le=1, description="dynamic mixing: chance that a talker is drawn from data.extra_voices rather "
                                      "than the other training voices (None: every voice alike)")
    train_items: int = Field(4000, ge=1, description="dynamic mixing: mixtures per epoch")
    val_items: int = Field(32, ge=1, description="embedded data: held-out validation mixtures")
    test_items: int = Field(64, ge=1, description="embedded data: held-out test mixtures")
    max_clipped: Optional[float] = Field(0.001, ge=0, le=1, description="largest share of full-scale samples")
    chunk_seconds: float = Field(4.0, gt=0, description="long-audio inference chunk")
    overlap_seconds: float = Field(1.0, gt=0, description="long-audio chunk overlap (<= chunk / 2)")

    @model_validator(mode="after")
    def _overlap(self):
        if self.overlap_seconds * 2 > self.chunk_seconds:
            raise ValueError(f"data.overlap_seconds={self.overlap_seconds}: expected at most half of "
                             f"data.chunk_seconds={self.chunk_seconds}")
        return self

    def augmentation(self):
        """The :class:`~sigplex.datasets.audio.augment.Augmentation` of dynamic mixing (None when all steps are off)."""
        from sigplex.datasets.audio.augment import Augmentation

        aug = Augmentation(self.sample_rate, formant=self.formant_shift, tempo=self.tempo_perturb, eq_db=self.eq_db,
                           p_voice=self.p_voice, p_reverb=self.reverb, p_noise=self.noise,
                           noise_snr_db=tuple(self.noise_snr_db))
        return aug if aug.active else None

    def speeds(self) -> tuple[float, ...]:
        """Speed-perturbation factors of dynamic mixing."""
        p = self.speed_perturb
        return (1.0,) if p == 0 else (1 - p, 1 - p / 2, 1.0, 1 + p / 2, 1 + p)


class SeparationConfig(TaskConfig):
    model: ModelSection = Field(default_factory=ModelSection)
    data: DataSection = Field(default_factory=DataSection)
    trainer: TrainerConfig = Field(default_factory=lambda: TrainerConfig(
        max_steps=1600, batch_size=4, eval_batch_size=4, clip_grad_norm=5.0, val_every=400,
        checkpoint_every=400, log_every=50))
    optim: OptimConfig = Field(default_factory=lambda: OptimConfig(name="adam", lr=1e-3, schedule="cosine",
                                                                   warmup_steps=50, min_lr_ratio=0.05))


PAPER = {"model": {"dim": 512, "num_layers": 24, "group_size": 256, "query_key_dim": 128, "rotary_dim": 32,
                   "fsmn_inner": 256, "fsmn_kernel": 39, "dropout": 0.1, "attn_dropout": 0.1},
         "data": {"segment_seconds": 2.0},
         "trainer": {"batch_size": 1, "clip_grad_norm": 10.0},
         "optim": {"name": "adam", "lr": 1.5e-4, "schedule": "plateau", "warmup_steps": 0}}

# ClearerVoice-Studio's MossFormer2_SS_16K and its 8 kHz sibling: the paper model in their form (see clearvoice.py)
CLEARVOICE = {**PAPER, "model": {**PAPER["model"], "name": "mossformer2", "variant": "clearvoice"}}

PRESETS = {
    "paper": PAPER,
    "wsj0-2mix": {**PAPER, "data": {"sample_rate": 8000, "segment_seconds": 4.0, "eval_seconds": None}},
    "libri2mix-16k": {**PAPER, "data": {"sample_rate": 16000, "segment_seconds": 3.0, "eval_seconds": None}},
    "16k": {"data": {"sample_rate": 16000}},
    # dynamic mixing widened toward real recordings: new voices (speed, formants, tempo), channels (EQ),
    # rooms (reverberation), background noise and talkers up to 10 dB apart
    "widened": {"data": {"speed_perturb": 0.15, "formant_shift": 0.12, "tempo_perturb": 0.1, "eq_db": 6.0,
                         "p_voice": 0.5, "reverb": 0.3, "noise": 0.3, "gain_db": 5.0}},
    "clearvoice-16k": {**CLEARVOICE, "data": {**PAPER["data"], "sample_rate": 16000}},
    "clearvoice-8k": {**CLEARVOICE, "data": {**PAPER["data"], "sample_rate": 8000}},
}

__all__ = ["CLEARVOICE", "DataSection", "ModelSection", "PAPER", "PRESETS", "SeparationConfig"]
