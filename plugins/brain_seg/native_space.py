"""Grids for DICOM prediction: the model's 1 mm RAS grid and the way back to a series' native grid.

The reference sequence defines the model grid: MONAI ``Orientation("RAS")`` then ``Spacing(1 mm)``
(an oblique acquisition stays oblique; RAS is the nearest axis order). The other sequences are
resampled straight onto that grid from their own affines (``SpatialResample``: one interpolation,
zeros outside their field of view), i.e. combined by their DICOM geometry in one frame of
reference; no registration is done. Probabilities come back to the reference's native grid by
trilinear resampling, one channel at a time, before thresholding.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

#: The spacing (mm) the model works at (BraTS data are 1 mm isotropic).
MODEL_SPACING = (1.0, 1.0, 1.0)


def _meta(array, affine):
    from monai.data import MetaTensor

    data = torch.as_tensor(np.asarray(array, dtype=np.float32))
    if data.ndim == 3:
        data = data[None]
    return MetaTensor(data, affine=torch.as_tensor(np.asarray(affine, dtype=np.float64)))


def model_grid(array: np.ndarray, affine: np.ndarray, spacing: Sequence[float] = MODEL_SPACING):
    """``array`` on the model grid: a MetaTensor ``[1, X, Y, Z]`` whose ``.affine`` is that grid's."""
    from monai.transforms import Orientation, Spacing

    image = Orientation(axcodes="RAS", labels=(("L", "R"), ("P", "A"), ("I", "S")))(_meta(array, affine))
    return Spacing(pixdim=tuple(spacing), mode="bilinear", padding_mode="zeros", dtype=torch.float32)(image)


def resample(array, affine: np.ndarray, dst_affine, shape: Sequence[int], mode: str = "bilinear") -> torch.Tensor:
    """``array`` (``[X, Y, Z]`` or ``[C, X, Y, Z]`` with ``affine``) on the grid ``dst_affine``/``shape``; zeros outside."""
    from monai.transforms import SpatialResample

    out = SpatialResample(mode=mode, padding_mode="zeros", dtype=torch.float32)(
        _meta(array, affine), dst_affine=torch.as_tensor(np.asarray(dst_affine, dtype=np.float64)),
        spatial_size=tuple(int(s) for s in shape))
    return out.as_tensor() if hasattr(out, "as_tensor") else out


def to_native(probs: torch.Tensor, grid_affine: np.ndarray, native_affine: np.ndarray, native_shape: Sequence[int],
              threshold: float) -> np.ndarray:
    """TC/WT/ET probabilities ``[3, *grid]`` -> BraTS labels (uint8, 0/1/2/4) on the native grid."""
    from sigplex.datasets.nifti import channels_to_labels

    masks = np.stack([resample(probs[c], grid_affine, native_affine, native_shape)[0].numpy() > threshold
                      for c in range(probs.shape[0])])
    return channels_to_labels(masks.astype(np.uint8), threshold=0.5)
