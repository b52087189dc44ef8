"""Whole-volume inference for brain_seg: sliding-window sigmoid probabilities and one-case inputs.

``infer_volume`` tiles a volume of any size into ROI windows (MONAI's
``sliding_window_inference``, Gaussian blending by default) and returns TC/WT/ET
probabilities cropped back to the input's grid. The model is only called as
``model(window_batch)``, so an exported model can stand in for the module.
``read_case`` turns one prediction input (a case folder, a 4D NIfTI or an array
``[4, X, Y, Z]``) into a normalised image plus what writing the result needs.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from sigplex.core.errors import UserError
from sigplex.core.infer import model_device
from sigplex.datasets.nifti.sources import MODALITIES


def plain(t):
    """A MONAI MetaTensor as a plain tensor (faster through the model)."""
    return t.as_tensor() if hasattr(t, "as_tensor") else t


def pad_to_roi(image: torch.Tensor, roi) -> torch.Tensor:
    """Zero-pad the spatial dims of ``[B, C, *S]`` at their end up to ``roi`` where smaller."""
    pads = []
    for size, r in zip(reversed(image.shape[2:]), reversed(roi)):
        pads += [0, max(0, r - size)]
    return torch.nn.functional.pad(image, pads) if any(pads) else image


def infer_volume(model, image: torch.Tensor, data) -> torch.Tensor:
    """Sigmoid probabilities ``[3, *S]`` of one volume ``[C, *S]`` (``data``: the config's data section)."""
    from monai.inferers import sliding_window_inference

    image = plain(image)
    shape = image.shape[-3:]
    batch = pad_to_roi(image.reshape(1, -1, *shape).to(model_device(model)), data.roi)
    logits = sliding_window_inference(batch, data.roi, data.sw_batch_size, model, overlap=data.sw_overlap,
                                      mode=data.sw_mode)
    probs = torch.sigmoid(plain(logits).float())[0]
    return probs[:, : shape[0], : shape[1], : shape[2]].cpu()


def four_d_source(config_source, trained_source) -> str:
    """How a single 4D NIfTI's channels are ordered: the configured source, else the training data's
    when that source stores its modalities in one 4D file (MSD), else the canonical order."""
    from sigplex.datasets.nifti import get_source

    if config_source:
        return config_source
    if trained_source and get_source(trained_source).channel_order is not None:
        return trained_source
    return "brats2021"


def read_case(inputs, data, trained_source: str | None) -> dict:
    """One case to predict: ``{"image" [4, *S], "reference", "case_id", "raw" (image to draw)}``."""
    if not isinstance(inputs, (str, Path)):
        return _from_array(inputs)
    from sigplex.datasets.nifti import detect_source

    from .data import build_datasets

    path = Path(inputs)
    source = data.source
    if detect_source(path).layout == "nifti4d":
        source = four_d_source(data.source, trained_source)
    dataset = build_datasets(path, "predict", roi=data.roi, cache=None, source=source, validate=data.file_check)
    if len(dataset) != 1:
        raise UserError(f"{path}: holds {len(dataset)} cases; expected one case folder or one 4D NIfTI "
                        "(predict each case folder on its own)")
    item = dataset[0]
    image = plain(item["image"])
    if not torch.isfinite(image).all():
        bad = [m for m, channel in zip(MODALITIES, image) if not torch.isfinite(channel).all()]
        raise UserError(f"{path}: NaN or infinite voxels in the {', '.join(bad)} image; expected finite intensities")
    return {"image": image, "reference": item.get("reference"), "case_id": item.get("case_id"),
            "raw": image.numpy()}


def _from_array(inputs) -> dict:
    from monai.transforms import NormalizeIntensity

    array = torch.as_tensor(np.asarray(inputs), dtype=torch.float32)
    if array.ndim != 4 or array.shape[0] != 4:
        raise UserError(f"input has shape {tuple(array.shape)}; expected [4, H, W, D] "
                        "(modalities t1, t1ce, t2, flair)")
    image = plain(NormalizeIntensity(nonzero=True, channel_wise=True)(array))
    return {"image": image, "reference": None, "case_id": None, "raw": array.numpy()}
