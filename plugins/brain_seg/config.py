"""The brain_seg ``segment`` config: Swin UNETR arguments, data/inference settings, loss, presets.

Every value SwinUNETR would refuse is refused here first, as one line naming the key: stage
widths not divisible by their head counts, an ROI not divisible by 32, or an ROI whose
bottleneck is a single voxel under instance norm.
"""
from __future__ import annotations

from typing import Literal, Optional

from pydantic import Field, field_validator, model_validator

from sigplex.core.config import ModelConfig, OptimConfig, Section, TaskConfig, TrainerConfig

#: The three training channels (tumour core, whole tumour, enhancing tumour).
REGIONS = ("tc", "wt", "et")
#: Swin UNETR downsamples 5 times by 2 (patch size 2).
DOWNSAMPLING = 32


class ModelSection(ModelConfig):
    """Swin UNETR arguments (MONAI's names); the CPU default is small."""

    name: Literal["swin_unetr"] = "swin_unetr"
    in_channels: Literal[4] = Field(4, description="the four modalities t1, t1ce, t2, flair")
    out_channels: Literal[3] = Field(3, description="the three regions TC, WT, ET")
    feature_size: int = Field(12, ge=12, description="multiple of 12 (48 in the paper)")
    depths: tuple[int, int, int, int] = (2, 2, 2, 2)
    num_heads: tuple[int, int, int, int] = (3, 6, 12, 24)
    window_size: int = Field(7, ge=1)
    norm_name: Literal["instance", "batch", "syncbatch"] = "instance"
    drop_rate: float = Field(0.0, ge=0, le=1)
    attn_drop_rate: float = Field(0.0, ge=0, le=1)
    dropout_path_rate: float = Field(0.0, ge=0, le=1)
    normalize: bool = True
    use_checkpoint: bool = False
    downsample: Literal["merging", "mergingv2"] = "merging"
    use_v2: bool = False

    @field_validator("feature_size")
    @classmethod
    def _multiple_of_12(cls, v):
        if v % 12:
            raise ValueError(f"must be a multiple of 12, got {v}")
        return v

    @field_validator("depths", "num_heads")
    @classmethod
    def _positive(cls, v):
        if min(v) < 1:
            raise ValueError(f"expected four positive integers, got {tuple(v)}")
        return v

    @model_validator(mode="after")
    def _heads_divide_widths(self):
        for i, heads in enumerate(self.num_heads):
            width = self.feature_size * 2 ** i
            if width % heads:
                raise ValueError(f"num_heads[{i}]={heads} does not divide stage {i + 1}'s width {width} "
                                 f"(feature_size * 2**{i})")
        return self


class DataSection(Section):
    """Where the cases come from, how they are split and cropped, and how inference tiles them."""

    roi: tuple[int, int, int] = (64, 64, 64)
    cache: Optional[Literal["memory", "disk", "none"]] = "memory"
    fold: Optional[int] = Field(None, ge=0, description="datalist fold used for validation")
    val_fraction: float = Field(0.2, ge=0, lt=1)
    test_fraction: float = Field(0.0, ge=0, lt=1)
    split_seed: int = 0
    source: Optional[Literal["brats2021", "brats2023", "msd"]] = None
    file_check: Literal["header", "full", "none"] = Field("header", description="check files before loading")
    phantom_cases: int = Field(20, ge=3, description="embedded default: number of phantom cases")
    phantom_shape: tuple[int, int, int] = (96, 96, 96)
    sw_overlap: float = Field(0.5, ge=0, lt=1, description="sliding-window overlap")
    sw_batch_size: int = Field(2, ge=1)
    sw_mode: Literal["gaussian", "constant"] = "gaussian"
    threshold: float = Field(0.5, gt=0, lt=1)
    hd95: bool = Field(True, description="also compute HD95 in evaluation")
    modality_dropout: float = Field(0.0, ge=0, lt=1, description="training: zero each whole modality with this "
                                    "probability (never all four); > 0 lets predict zero-fill missing sequences")
    dicom_rules: Optional[str] = Field(None, description="YAML series-selection rules for DICOM study inputs "
                                       "(None: the shipped dicom_rules.yaml)")
    reference_sequence: Literal["t1", "t1ce", "t2", "flair"] = Field(
        "t1ce", description="DICOM inputs: the sequence whose grid defines the model grid and the outputs' grid")

    @field_validator("roi")
    @classmethod
    def _roi_divisible(cls, v):
        bad = [s for s in v if s < 1 or s % DOWNSAMPLING]
        if bad:
            raise ValueError(f"each size must be divisible by {DOWNSAMPLING} (Swin UNETR's 5 downsamplings), "
                             f"got {tuple(v)}")
        return v

    @model_validator(mode="after")
    def _fractions(self):
        if self.val_fraction + self.test_fraction >= 1:
            raise ValueError(f"val_fraction + test_fraction must stay below 1 (some cases must train), "
                             f"got {self.val_fraction} + {self.test_fraction}")
        return self


class LossSection(Section):
    bce_weight: float = Field(0.0, ge=0, description="add this times BCE to the sigmoid Dice loss")


class BrainSegConfig(TaskConfig):
    model: ModelSection = Field(default_factory=ModelSection)
    data: DataSection = Field(default_factory=DataSection)
    loss: LossSection = Field(default_factory=LossSection)
    trainer: TrainerConfig = Field(default_factory=lambda: TrainerConfig(
        max_steps=240, batch_size=1, val_every=80, checkpoint_every=40, log_every=10))
    optim: OptimConfig = Field(default_factory=lambda: OptimConfig(
        name="adamw", lr=1e-3, weight_decay=1e-5, schedule="cosine", warmup_steps=10))

    @model_validator(mode="after")
    def _bottleneck_not_single_voxel(self):
        roi = self.data.roi
        if self.model.norm_name == "instance" and all(s == DOWNSAMPLING for s in roi):
            raise ValueError(f"data.roi {tuple(roi)} leaves a single voxel at the bottleneck, where instance norm "
                             f"is undefined; use at least one size >= {2 * DOWNSAMPLING}")
        return self


PRESETS = {
    # The research recipe (Hatamizadeh et al.; MONAI's BraTS 2021 tutorial), for GPU users.
    "brats21": {
        "model": {"feature_size": 48, "use_checkpoint": True},
        "data": {"roi": [128, 128, 128], "sw_overlap": 0.5, "sw_batch_size": 4, "cache": "disk"},
        "trainer": {"batch_size": 1, "max_steps": 300000, "val_every": 5000, "checkpoint_every": 1000,
                    "num_workers": 4, "precision": "bf16"},
        "optim": {"name": "adamw", "lr": 1e-4, "weight_decay": 1e-5, "schedule": "cosine", "warmup_steps": 2000},
    },
    # A longer CPU run on the phantom data (about an hour on 2 cores).
    "cpu_long": {
        "model": {"feature_size": 24},
        "data": {"phantom_cases": 30},
        "trainer": {"max_steps": 1200, "val_every": 200, "checkpoint_every": 100},
        "optim": {"lr": 5e-4, "warmup_steps": 50},
    },
}
