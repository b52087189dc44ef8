"""The brain_seg ``segment`` task: Swin UNETR on BraTS-style multi-modal MRI, sigmoid TC/WT/ET.

Training uses random ROI crops and a sigmoid Dice (+ optional BCE) loss; evaluation runs
sliding-window inference (MONAI ``sliding_window_inference``, Gaussian blending) on whole
volumes and reports Dice and HD95 per region (TC, WT, ET). Prediction writes a BraTS label
map (0, 1, 2, 4) on the input's grid with its affine, plus an overlay PNG.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Literal, Optional

import numpy as np
import torch
from pydantic import Field, field_validator

from sigplex.core.config import OptimConfig, Section, TaskConfig, TrainerConfig
from sigplex.core.errors import UserError
from sigplex.core.task import DataSplits, Task

REGIONS = ("tc", "wt", "et")


class ModelSection(Section):
    """Swin UNETR arguments (MONAI's names); the CPU default is small."""

    name: Literal["swin_unetr"] = "swin_unetr"
    in_channels: int = Field(4, ge=1)
    out_channels: int = Field(3, ge=1)
    feature_size: int = Field(12, ge=12, description="multiple of 12 (48 in the paper)")
    depths: tuple[int, int, int, int] = (2, 2, 2, 2)
    num_heads: tuple[int, int, int, int] = (3, 6, 12, 24)
    window_size: int = Field(7, ge=1)
    norm_name: str = "instance"
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

    @field_validator("roi")
    @classmethod
    def _roi_divisible(cls, v):
        bad = [s for s in v if s % 32]
        if bad:
            raise ValueError(f"each size must be divisible by 32 (Swin UNETR's 5 downsamplings), got {tuple(v)}")
        return v


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


def _plain(t):
    """A MONAI MetaTensor as a plain tensor (faster through the model)."""
    return t.as_tensor() if hasattr(t, "as_tensor") else t


class BrainSegTask(Task):
    name = "segment"
    config_class = BrainSegConfig
    presets = PRESETS
    monitor, monitor_mode = "dice_mean", "max"
    output_kind = "file"

    def __init__(self):
        self._train = None
        self._losses = {}

    # --- building ---------------------------------------------------------------------
    def build_model(self, config):
        from .swin_unetr import SwinUNETR

        m = config.model.model_dump()
        m.pop("name")
        return SwinUNETR(**m)

    def load_weights(self, model, weights: dict, source: str = "") -> None:
        """Full MONAI/sigplex SwinUNETR weights (strict), or a self-supervised Swin encoder."""
        keys = list(weights)
        full = any(k.startswith(("encoder1.", "decoder1.", "out.")) for k in keys)
        if not full:
            model.load_swin_vit(weights)
            return
        from sigplex.core.api import load_state_strict

        load_state_strict(model, weights, source, what=f"SwinUNETR(feature_size={model.swinViT.embed_dim}, ...)")

    def build_data(self, config, data):
        from .data import build_datasets

        d = config.data
        common = dict(roi=d.roi, cache=None if d.cache == "none" else d.cache, fold=d.fold,
                      val_fraction=d.val_fraction, test_fraction=d.test_fraction, seed=d.split_seed,
                      source=d.source, validate=d.file_check, phantom_cases=d.phantom_cases,
                      phantom_shape=d.phantom_shape)
        train = build_datasets(data, "train", **common)
        val = build_datasets(data, "val", **common) if (data is None or d.val_fraction > 0 or d.fold is not None) else None
        test = None
        if data is None or d.test_fraction > 0:
            test = build_datasets(data, "test", **common)
        self._train = train
        return DataSplits(train, val, test, info={"source": train.source})

    def collate(self, items):
        from .data import collate_fn

        return collate_fn(items)

    def seed_item(self, seed: int) -> None:
        from .data import seed_dataset

        if self._train is not None:
            seed_dataset(self._train, seed)

    # --- training ---------------------------------------------------------------------
    def _loss_fns(self, config):
        key = config.loss.bce_weight
        if key not in self._losses:
            from monai.losses import DiceLoss

            self._losses[key] = DiceLoss(sigmoid=True, smooth_nr=0.0, smooth_dr=1e-5, squared_pred=True)
        return self._losses[key]

    def training_step(self, model, batch, config):
        image, label = _plain(batch["image"]), _plain(batch["label"]).float()
        logits = model(image)
        dice = self._loss_fns(config)(logits.float(), label)
        if config.loss.bce_weight > 0:
            bce = torch.nn.functional.binary_cross_entropy_with_logits(logits.float(), label)
            return dice + config.loss.bce_weight * bce, {"dice_loss": float(dice), "bce": float(bce)}
        return dice

    # --- inference --------------------------------------------------------------------
    def infer_volume(self, model, image: torch.Tensor, config) -> torch.Tensor:
        """Sigmoid probabilities ``[B, 3, *S]`` of a whole volume by sliding-window inference."""
        from monai.inferers import sliding_window_inference

        d = config.data
        device = next(model.parameters()).device
        image = _plain(image).to(device)
        if image.ndim == 4:
            image = image[None]
        image = self._pad_to_roi(image, d.roi)
        logits = sliding_window_inference(image, d.roi, d.sw_batch_size, model, overlap=d.sw_overlap,
                                          mode=d.sw_mode)
        return torch.sigmoid(_plain(logits))

    @staticmethod
    def _pad_to_roi(image, roi):
        pads = []
        for size, r in zip(reversed(image.shape[2:]), reversed(roi)):
            pads += [0, max(0, r - size)]
        return torch.nn.functional.pad(image, pads) if any(pads) else image

    def evaluate(self, model, dataset, config):
        from monai.metrics import DiceMetric, HausdorffDistanceMetric

        dice = DiceMetric(include_background=True, reduction="mean_batch", get_not_nans=False, ignore_empty=False)
        hd95 = HausdorffDistanceMetric(include_background=True, percentile=95, reduction="none")
        per_case_hd = []
        for i in range(len(dataset)):
            item = dataset[i]
            label = _plain(item["label"])[None].float()
            probs = self.infer_volume(model, item["image"], config)
            probs = probs[..., : label.shape[2], : label.shape[3], : label.shape[4]].cpu()
            pred = (probs > config.data.threshold).float()
            dice(pred, label)
            if config.data.hd95:
                per_case_hd.append(hd95(pred, label).reshape(-1))
        scores = dice.aggregate().tolist()
        out = {f"dice_{r}": float(s) for r, s in zip(REGIONS, scores)}
        out["dice_mean"] = float(np.mean(scores))
        if per_case_hd:
            hd = torch.stack(per_case_hd).numpy()
            for j, r in enumerate(REGIONS):
                col = hd[:, j][np.isfinite(hd[:, j])]
                out[f"hd95_{r}"] = float(col.mean()) if col.size else math.nan
        return out

    def predict(self, model, inputs, config):
        """Label maps for a case folder, a 4D NIfTI, a folder of cases, or an array ``[4, *S]``.

        Returns a dict ``{"labels", "affine", "reference", "case_id", "image"}`` (one case) or a
        list of them; ``labels`` is a uint8 array with BraTS labels on the input's grid.
        """
        from sigplex.datasets.nifti import channels_to_labels

        if isinstance(inputs, (str, Path)):
            from .data import build_datasets

            d = config.data
            dataset = build_datasets(Path(inputs), "predict", roi=d.roi, cache=None, source=d.source,
                                     validate=d.file_check)
            results = []
            for i in range(len(dataset)):
                item = dataset[i]
                image = item["image"]
                probs = self.infer_volume(model, image, config)[0]
                shape = image.shape[1:]
                probs = probs[:, : shape[0], : shape[1], : shape[2]].cpu()
                labels = channels_to_labels(probs.numpy(), threshold=d.threshold)
                affine = getattr(image, "affine", None)
                results.append({"labels": labels, "affine": None if affine is None else np.asarray(affine),
                                "reference": item.get("reference"), "case_id": item.get("case_id"),
                                "image": _plain(image).numpy()})
            return results[0] if len(results) == 1 else results
        array = torch.as_tensor(np.asarray(inputs), dtype=torch.float32)
        if array.ndim != 4 or array.shape[0] != config.model.in_channels:
            raise UserError(f"input has shape {tuple(array.shape)}; expected [{config.model.in_channels}, H, W, D] "
                            "(modalities t1, t1ce, t2, flair)")
        from monai.transforms import NormalizeIntensity

        image = NormalizeIntensity(nonzero=True, channel_wise=True)(array)
        probs = self.infer_volume(model, _plain(image), config)[0]
        probs = probs[:, : array.shape[1], : array.shape[2], : array.shape[3]].cpu()
        return {"labels": channels_to_labels(probs.numpy(), threshold=config.data.threshold), "affine": None,
                "reference": None, "case_id": None, "image": array.numpy()}

    def write_prediction(self, prediction, output, *, source=None, overwrite=False):
        from .outputs import write_label_nifti, write_overlay_png

        cases = prediction if isinstance(prediction, list) else [prediction]
        name = output.name.lower()
        is_file = name.endswith((".nii.gz", ".nii"))
        if len(cases) > 1 and is_file:
            raise UserError(f"--output {output}: the input holds {len(cases)} cases; give a folder, not a file name")
        if not is_file and len(cases) == 1 and output.suffix:
            raise UserError(f"--output {output}: expected a .nii.gz/.nii file name or a folder")
        written = []
        for case in cases:
            if case["reference"] is None:
                raise UserError("an in-memory prediction has no reference image to copy the grid from; "
                                "save case['labels'] yourself or predict from a file")
            target = output if is_file else output / f"{case['case_id']}.nii.gz"
            written.append(write_label_nifti(case["labels"], case["reference"], target, overwrite=overwrite))
            png = target.with_name(target.name.split(".nii")[0] + "_overlay.png")
            written.append(write_overlay_png(case["image"], case["labels"], png, overwrite=overwrite))
        return written

    def example_input(self, config):
        return torch.randn(1, config.model.in_channels, *config.data.roi)

    def plots(self, model, data, config, run_dir):
        """An overlay of the first held-out case's prediction next to its ground truth, and loss curves."""
        from sigplex.datasets.nifti import channels_to_labels

        from .outputs import write_overlay_png

        out = []
        dataset = data.test if data.test is not None else data.val
        if dataset is not None and len(dataset):
            item = dataset[0]
            probs = self.infer_volume(model, item["image"], config)[0].cpu()
            label = _plain(item["label"])
            probs = probs[:, : label.shape[1], : label.shape[2], : label.shape[3]]
            pred = channels_to_labels(probs.numpy(), threshold=config.data.threshold)
            truth = channels_to_labels(label.numpy())
            plots = Path(run_dir) / "plots"
            image = _plain(item["image"]).numpy()
            out.append(write_overlay_png(image, pred, plots / f"{item['case_id']}_prediction.png"))
            out.append(write_overlay_png(image, truth, plots / f"{item['case_id']}_ground_truth.png"))
        curve = _loss_curve(Path(run_dir))
        if curve is not None:
            out.append(curve)
        return out


def _loss_curve(run_dir: Path):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    import csv

    path = run_dir / "metrics.csv"
    if not path.is_file():
        return None
    rows = list(csv.DictReader(path.open()))
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    steps = [int(r["step"]) for r in rows if r.get("loss")]
    axes[0].plot(steps, [float(r["loss"]) for r in rows if r.get("loss")])
    axes[0].set(xlabel="step", ylabel="training loss (Dice)")
    for region in REGIONS:
        pts = [(int(r["step"]), float(r[f"val_dice_{region}"])) for r in rows if r.get(f"val_dice_{region}")]
        if pts:
            axes[1].plot(*zip(*pts), marker="o", label=region.upper())
    axes[1].set(xlabel="step", ylabel="validation Dice", ylim=(0, 1))
    axes[1].legend()
    fig.tight_layout()
    from sigplex.core.fileio import atomic_path

    out = run_dir / "plots" / "curves.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
    return out
