"""Grids for prediction: the run's working grid (1 mm for BraTS) and the way back to an input's native grid.

The grid a run works at is the median voxel size of its training cases (fitted state
``spacing_mm``; 1 mm for BraTS, MSD and the phantoms). A NIfTI input whose voxels differ from
it (beyond ``SPACING_TOLERANCE``) is resampled to it in its own axis order (MONAI ``Spacing``;
training reads files in their stored orientation) and its probabilities come back to its
native grid, as for DICOM below.

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

#: The spacing (mm) a run works at unless its training cases say otherwise (BraTS data are 1 mm isotropic).
MODEL_SPACING = (1.0, 1.0, 1.0)
#: Relative difference from the run's spacing below which a NIfTI is predicted on its own grid.
SPACING_TOLERANCE = 0.05


def voxel_spacing(affine: np.ndarray) -> tuple[float, ...]:
    """Voxel sizes (mm) along the array axes of ``affine``: its columns' lengths."""
    return tuple(float(v) for v in np.linalg.norm(np.asarray(affine, dtype=np.float64)[:3, :3], axis=0))


def off_model_spacing(affine: np.ndarray, spacing: Sequence[float] = MODEL_SPACING,
                      tolerance: float = SPACING_TOLERANCE) -> bool:
    """Whether a grid's voxels differ from ``spacing`` by more than ``tolerance`` (relative)."""
    return any(abs(v - m) > tolerance * m for v, m in zip(voxel_spacing(affine), spacing))


def training_spacing(references: Sequence) -> list[float]:
    """The spacing a run works at: the per-axis median voxel size of its training cases' reference
    NIfTIs (headers only), as nnU-Net picks its target spacing; 1 mm when there are none."""
    from sigplex.datasets.nifti import load_nifti

    sizes = [voxel_spacing(load_nifti(r).affine) for r in references]
    return [round(float(v), 4) for v in np.median(sizes, axis=0)] if sizes else list(MODEL_SPACING)


def run_spacing(state: dict) -> tuple[float, ...]:
    """The run's working spacing (fitted state ``spacing_mm``); runs saved before it existed: 1 mm."""
    return tuple(float(v) for v in state.get("spacing_mm") or MODEL_SPACING)


def _meta(array, affine):
    from monai.data import MetaTensor

    data = torch.as_tensor(np.asarray(array, dtype=np.float32))
    if data.ndim == 3:
        data = data[None]
    return MetaTensor(data, affine=torch.as_tensor(np.asarray(affine, dtype=np.float64)))


def model_grid(array: np.ndarray, affine: np.ndarray, spacing: Sequence[float] = MODEL_SPACING,
               reorient: bool = True):
    """``array`` (``[X, Y, Z]`` or ``[C, X, Y, Z]``) on the model grid: a MetaTensor ``[C, X', Y', Z']``
    whose ``.affine`` is that grid's; ``reorient=False`` keeps the array's axis order (no RAS)."""
    from monai.transforms import Orientation, Spacing

    image = _meta(array, affine)
    if reorient:
        image = Orientation(axcodes="RAS", labels=(("L", "R"), ("P", "A"), ("I", "S")))(image)
    return Spacing(pixdim=tuple(spacing), mode="bilinear", padding_mode="zeros", dtype=torch.float32)(image)


def resample(array, affine: np.ndarray, dst_affine, shape: Sequence[int], mode: str = "bilinear") -> torch.Tensor:
    """``array`` (``[X, Y, Z]`` or ``[C, X, Y, Z]`` with ``affine``) on the grid ``dst_affine``/``shape``; zeros outside."""
    from monai.transforms import SpatialResample

    out = SpatialResample(mode=mode, padding_mode="zeros", dtype=torch.float32)(
        _meta(array, affine), dst_affine=torch.as_tensor(np.asarray(dst_affine, dtype=np.float64)),
        spatial_size=tuple(int(s) for s in shape))
    return out.as_tensor() if hasattr(out, "as_tensor") else out


def native_masks(probs: torch.Tensor, grid_affine: np.ndarray, native_affine: np.ndarray, native_shape: Sequence[int],
                 threshold: float) -> np.ndarray:
    """TC/WT/ET probabilities ``[3, *grid]`` -> their masks (uint8 ``[3, *native]``) on the native grid."""
    masks = np.stack([resample(probs[c], grid_affine, native_affine, native_shape)[0].numpy() > threshold
                      for c in range(probs.shape[0])])
    return masks.astype(np.uint8)


def to_native(probs: torch.Tensor, grid_affine: np.ndarray, native_affine: np.ndarray, native_shape: Sequence[int],
              threshold: float) -> np.ndarray:
    """TC/WT/ET probabilities ``[3, *grid]`` -> BraTS labels (uint8, 0/1/2/4) on the native grid."""
    from sigplex.datasets.nifti import channels_to_labels

    return channels_to_labels(native_masks(probs, grid_affine, native_affine, native_shape, threshold), threshold=0.5)


def masks_on_model_grid(model, image: torch.Tensor, native_affine: np.ndarray, data,
                        spacing: Sequence[float] = MODEL_SPACING) -> tuple[np.ndarray, dict]:
    """TC/WT/ET masks ``[3, *S]`` on the native grid of ``image`` ``[C, *S]`` (affine ``native_affine``),
    inferred at ``spacing``, and the grids they went through (for the output's sidecar).

    The image goes to ``spacing`` in its own axis order (bilinear), the probabilities come back
    to the native grid (trilinear) and are thresholded there.
    """
    from .inference import infer_volume

    native_shape = tuple(int(n) for n in image.shape[1:])
    grid = model_grid(image, native_affine, spacing, reorient=False)
    probs = infer_volume(model, grid.as_tensor(), data)
    masks = native_masks(probs, grid.affine.numpy(), native_affine, native_shape, data.threshold)
    provenance = {"resampled": True,
                  "model_grid": {"shape": [int(n) for n in grid.shape[1:]], "spacing_mm": [float(v) for v in spacing]},
                  "native_grid": {"shape": list(native_shape),
                                  "spacing_mm": [round(v, 4) for v in voxel_spacing(native_affine)]}}
    return masks, provenance


def case_masks(model, image: torch.Tensor, reference, data,
               spacing: Sequence[float] | None = MODEL_SPACING) -> tuple[torch.Tensor, dict]:
    """TC/WT/ET masks ``[3, *S]`` (bool) of one case on its own grid and the grids they went through:
    inferred at ``spacing`` when the reference NIfTI's voxels differ from it (:func:`masks_on_model_grid`),
    else directly with ``{}`` (``reference`` or ``spacing`` None: directly)."""
    from sigplex.datasets.nifti import load_nifti

    from .inference import infer_volume

    if reference is not None and spacing is not None:
        affine = load_nifti(reference).affine
        if off_model_spacing(affine, spacing):
            masks, provenance = masks_on_model_grid(model, image, affine, data, spacing)
            return torch.as_tensor(masks).bool(), provenance
    return infer_volume(model, image, data) > data.threshold, {}
