"""The brain_seg ``segment`` task: Swin UNETR on BraTS-style multi-modal MRI, sigmoid TC/WT/ET.

Training uses random ROI crops and a sigmoid Dice (+ optional BCE) loss; evaluation runs
sliding-window inference (MONAI ``sliding_window_inference``, Gaussian blending) on whole
volumes and reports Dice and HD95 per region (TC, WT, ET). Prediction writes a BraTS label
map (0, 1, 2, 4) on the input's grid with its affine, plus an overlay PNG; a DICOM study is
predicted on the 1 mm RAS grid and written back on the reference series' native grid as NIfTI
and DICOM SEG (see :mod:`.dicom_input`).

Fitted state saved with a run: ``source``, the label source of the training cases (brats2021, brats2023
or msd); a 4D NIfTI given to predict is read in that source's channel order when it stores modalities in
one file (MSD), unless ``data.source`` says otherwise. ``modality_dropout``: the training value; > 0 lets
predict zero-fill a missing DICOM sequence. ``spacing_mm``: the median voxel size of the training cases."""
from __future__ import annotations

from pathlib import Path

import torch

from sigplex.core.errors import UserError
from sigplex.core.models import create_model
from sigplex.core.task import Prepared, Task, TaskCard
from sigplex.core.weights import load_state_strict

from .config import PRESETS, BrainSegConfig
from .inference import infer_volume, plain, read_case
from .metrics import evaluate_cases
from .prediction import Prediction, output_paths, write_files
from .samples import format_variants, write_samples


def segmentation_loss(logits: torch.Tensor, label: torch.Tensor, bce_weight: float):
    """Sigmoid Dice loss (squared denominators, MONAI's ``DiceLoss``) plus ``bce_weight`` x BCE."""
    from monai.losses import DiceLoss

    logits, label = logits.float(), label.float()
    dice = DiceLoss(sigmoid=True, smooth_nr=0.0, smooth_dr=1e-5, squared_pred=True)(logits, label)
    if bce_weight <= 0:
        return dice
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, label)
    return dice + bce_weight * bce, {"dice_loss": float(dice), "bce": float(bce)}


class BrainSegTask(Task):
    name = "segment"
    config_class = BrainSegConfig
    presets = PRESETS
    monitor, monitor_mode = "dice_mean", "max"
    input_kind = "folder"
    input_suffixes = (".nii.gz", ".nii")
    output_suffixes = (".nii.gz",)
    distill_loss = "mse"
    card = TaskCard(
        intended_use="Research on 3D brain-tumour segmentation: tumour core, whole tumour and enhancing tumour in "
                     "co-registered, skull-stripped T1/T1ce/T2/FLAIR MRI of BraTS style, from NIfTI or DICOM studies "
                     "(results as NIfTI and DICOM SEG). Not a medical device; not for diagnosis or treatment "
                     "decisions.",
        limitations="Without --data the model is trained only on synthetic phantom volumes that sigplex generates (an "
                    "ellipsoidal head with a simple tumour, bias field and noise; no real anatomy or scanner physics): "
                    "such a model and its Dice scores say nothing about real scans. Even trained on BraTS it reflects "
                    "BraTS's sites, scanners and pre-processing (skull-stripped, 1 mm isotropic, co-registered); other "
                    "data need their own validation. NIfTI inputs off the run's spacing (the training cases' median "
                    "voxel size, 1 mm for BraTS) are predicted at that spacing in their own axis order and the labels "
                    "resampled back (no reorientation); DICOM studies are resampled to that spacing in RAS and "
                    "combined by their DICOM geometry only (no registration, no skull stripping, no bias correction), "
                    "so a patient who moved between series or an unstripped head degrades the result. Series are "
                    "chosen by description rules that a site must check against its own naming. Labels are written on "
                    "the input's (reference series') grid.",
        data_license="Default data: synthetic phantoms generated at run time (no patient data). With --data, the terms "
                     "of that data apply (BraTS: the challenge's data-use terms and citation requirements; Medical "
                     "Segmentation Decathlon Task01: CC BY-SA 4.0).")

    # --- building ---------------------------------------------------------------------
    def build_model(self, config):
        return create_model(config.model.name, **config.model.arguments())

    def load_weights(self, model, weights: dict, source: str = "") -> None:
        """Full MONAI/sigplex SwinUNETR weights (strict), or a self-supervised Swin encoder."""
        if not any(k.startswith(("encoder1.", "decoder1.", "out.")) for k in weights):
            model.load_swin_vit(weights)
            return
        load_state_strict(model, weights, source, what=f"SwinUNETR(feature_size={model.swinViT.embed_dim}, ...)")

    def _datasets(self, config, data, split: str):
        from .data import build_datasets

        d = config.data
        return build_datasets(data, split, roi=d.roi, cache=None if d.cache == "none" else d.cache, fold=d.fold,
                              val_fraction=d.val_fraction, test_fraction=d.test_fraction, seed=d.split_seed,
                              source=d.source, validate=d.file_check, phantom_cases=d.phantom_cases,
                              phantom_shape=d.phantom_shape, modality_dropout=d.modality_dropout)

    def build_data(self, config, data):
        d = config.data
        train = self._datasets(config, data, "train")
        val = self._datasets(config, data, "val") if data is None or d.val_fraction > 0 or d.fold is not None else None
        test = self._datasets(config, data, "test") if data is None or d.test_fraction > 0 else None
        from .native_space import training_spacing

        spacing = training_spacing([r.images[0] for r in train.records])
        return Prepared(config, train, val, test, state={"source": train.source, "modality_dropout": d.modality_dropout,
                                                         "spacing_mm": spacing})

    def evaluation_data(self, data, prepared):
        return self._datasets(prepared.config, Path(data), "all")

    def collate(self, items):
        from .data import collate_fn

        return collate_fn(items)

    def seed_item(self, seed, prepared):
        from .data import seed_dataset

        if prepared.train is not None:
            seed_dataset(prepared.train, seed)

    # --- training ---------------------------------------------------------------------
    def training_step(self, model, batch, prepared):
        logits = model(plain(batch["image"]))
        return segmentation_loss(logits, plain(batch["label"]), prepared.config.loss.bce_weight)

    def distill_outputs(self, model, batch, prepared):
        return model(plain(batch["image"]))

    def evaluate(self, model, dataset, prepared):
        from .native_space import run_spacing

        # cases off the run's spacing are scored as predict makes them: at that spacing, back on their grid
        return evaluate_cases(model, dataset, prepared.config.data, spacing=run_spacing(prepared.state))

    # --- using ------------------------------------------------------------------------
    def is_input(self, path):
        """One case folder (BraTS names), one 4D NIfTI or one DICOM study folder; not a folder of cases/studies."""
        from sigplex.datasets.dicom import is_study_folder
        from sigplex.datasets.nifti import detect_source

        path = Path(path)
        if path.is_file():
            return path.name.lower().endswith(self.input_suffixes)
        try:
            return path.is_dir() and detect_source(path).layout == "case"
        except UserError:
            return is_study_folder(path)

    def predict(self, model, inputs, prepared):
        """A label map for one case folder, 4D NIfTI, DICOM study folder or array ``[4, H, W, D]``.

        Returns a :class:`Prediction` (a dict ``{"labels", "reference", "case_id", "image"}`` plus
        ``native`` for DICOM, with ``.provenance``); ``labels`` is a uint8 array with BraTS labels on the
        input's grid, ``reference`` the NIfTI whose grid it is on (None for arrays and DICOM).
        """
        from sigplex.datasets.dicom import is_study_folder
        from sigplex.datasets.nifti import channels_to_labels

        from .native_space import case_masks, run_spacing

        if isinstance(inputs, (str, Path)) and is_study_folder(inputs):
            from .dicom_input import predict_study

            return predict_study(model, inputs, prepared)
        d = prepared.config.data
        case = read_case(inputs, d, prepared.state.get("source"))
        # off the run's spacing: to that spacing and back, as Spacing + Invertd (the grids in the provenance)
        masks, grids = case_masks(model, case["image"], case["reference"], d, run_spacing(prepared.state))
        return Prediction({"labels": channels_to_labels(masks.numpy(), threshold=0.5), "reference": case["reference"],
                           "case_id": case["case_id"], "image": case["raw"]}, grids)

    def output_files(self, output, prepared, source=None):
        return output_paths(output, source)  # NIfTI, overlay PNG (+ <stem>.seg.dcm for a DICOM study)

    def write_prediction(self, prediction, output, prepared):
        return write_files(prediction, output)  # every writer goes through atomic_path

    def example_input(self, prepared):
        return torch.randn(1, prepared.config.model.in_channels, *prepared.config.data.roi)

    def export_axes(self, prepared):  # spatial sizes stay the ROI: sliding windows only ever feed ROI windows
        return {0: {0: "batch"}}

    sample_inputs = staticmethod(write_samples)  # a phantom case folder and a 4D NIfTI at the run's ROI
    format_variants = staticmethod(format_variants)  # NIfTI past the limit, .nii.gz bombs, NaN; DICOM without pixels

    def plots(self, model, prepared, run_dir):
        """The first held-out case: predicted labels and ground truth as overlay PNGs."""
        from sigplex.datasets.nifti import channels_to_labels

        from .outputs import write_overlay_png

        dataset = prepared.held_out()
        if dataset is None or not len(dataset):
            return []
        item = dataset[0]
        probs = infer_volume(model, item["image"], prepared.config.data)
        pred = channels_to_labels(probs.numpy(), threshold=prepared.config.data.threshold)
        truth = channels_to_labels(plain(item["label"]).numpy())
        image, plots = plain(item["image"]).numpy(), Path(run_dir) / "plots"
        return [write_overlay_png(image, pred, plots / f"{item['case_id']}_prediction.png"),
                write_overlay_png(image, truth, plots / f"{item['case_id']}_ground_truth.png")]
