"""Segmentation metrics for brain_seg: Dice and HD95 per region (TC, WT, ET) over whole volumes.

``evaluate_cases`` runs sliding-window inference on every case of a dataset, thresholds the
sigmoid probabilities and accumulates MONAI's ``DiceMetric`` (empty prediction and empty
truth count as 1, as ``ignore_empty=False``) and ``HausdorffDistanceMetric`` (95th
percentile; a region absent from a case gives an infinite distance, left out of the mean).
"""
from __future__ import annotations

import math

import numpy as np
import torch

from .config import REGIONS
from .inference import plain
from .native_space import case_masks


def evaluate_cases(model, dataset, data, spacing=None) -> dict[str, float]:
    """``dice_tc/wt/et``, ``dice_mean`` and (with ``data.hd95``) ``hd95_tc/wt/et`` over ``dataset``.

    ``spacing``: the run's working spacing; a case whose voxels differ from it is predicted as
    ``predict`` does (at that spacing, masks back on its grid) and scored on its own grid.
    None: every case on its own grid (validation during training).
    """
    from monai.metrics import DiceMetric, HausdorffDistanceMetric

    dice = DiceMetric(include_background=True, reduction="mean_batch", get_not_nans=False, ignore_empty=False)
    hd95 = HausdorffDistanceMetric(include_background=True, percentile=95, reduction="none")
    per_case_hd = []
    for i in range(len(dataset)):
        item = dataset[i]
        label = plain(item["label"])[None].float()
        pred = case_masks(model, item["image"], item.get("reference"), data, spacing)[0][None].float()
        dice(pred, label)
        if data.hd95:
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
