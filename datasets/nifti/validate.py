"""Checks of NIfTI cases before training: files readable, grids consistent, labels valid.

``validate_case(record, level="header")`` opens headers only (fast): every file exists and
is NIfTI, all modalities and the label share one spatial shape and affine, a single 4D
image has four channels. ``level="full"`` also reads the voxel data (finds truncated or
corrupt files) and checks the label values against the source's label set. Every problem
is a one-line :class:`UserError` naming the file(s), the field and what was expected.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

import numpy as np

from sigplex.core.errors import UserError
from sigplex.core.limits import check_size

from .sources import MODALITIES, CaseRecord, check_label_values

_AFFINE_ATOL = 1e-3


def load_nifti(path: str | Path):
    """``nibabel.load`` with a UserError naming the file when it is missing or not NIfTI."""
    import nibabel as nib

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: file: expected a NIfTI file, not found")
    try:
        img = nib.load(str(path))
    except Exception as exc:  # nibabel raises ImageFileError, EOFError, OSError, ValueError...
        raise UserError(f"{path}: NIfTI header: expected a readable NIfTI file ({exc})") from None
    if any(int(n) <= 0 for n in img.shape):
        raise UserError(f"{path}: NIfTI header: dimensions {tuple(img.shape)}; expected a non-empty volume")
    # the header's voxels, read as float32 (or wider), against the input limit before any voxel is read
    voxels = int(np.prod(img.shape, dtype=np.float64))
    check_size(voxels * max(4, img.get_data_dtype().itemsize), path, f"NIfTI dimensions {tuple(img.shape)}")
    return img


def read_nifti_data(path: str | Path, img=None) -> np.ndarray:
    """The voxel array of ``path``; a truncated or corrupt file is a UserError naming it."""
    img = img if img is not None else load_nifti(path)
    try:
        return np.asanyarray(img.dataobj)
    except Exception as exc:  # EOFError, zlib.error, OSError, ValueError from short reads
        raise UserError(
            f"{path}: NIfTI data: expected {tuple(img.shape)} voxels, the file is truncated "
            f"or corrupt ({type(exc).__name__}: {exc})"
        ) from None


def validate_case(record: CaseRecord, level: str = "header") -> None:
    """Check one case (see module docstring); ``level`` is ``"header"`` or ``"full"``."""
    if level not in ("header", "full"):
        raise ValueError(f"level must be 'header' or 'full', got {level!r}")
    imgs = [(Path(p), load_nifti(p)) for p in record.images]
    if len(imgs) == 1:
        path, img = imgs[0]
        if len(img.shape) != 4 or img.shape[3] != len(MODALITIES):
            raise UserError(
                f"{path}: case {record.case_id}: image shape: expected a 4D image with "
                f"{len(MODALITIES)} modalities (X, Y, Z, {len(MODALITIES)}), got {tuple(img.shape)}"
            )
    else:
        for path, img in imgs:
            if len(img.shape) != 3:
                raise UserError(
                    f"{path}: case {record.case_id}: image shape: expected a 3D volume, "
                    f"got {tuple(img.shape)}"
                )
    ref_path, ref = imgs[0]
    others = imgs[1:]
    lab = None
    if record.label is not None:
        lab = load_nifti(record.label)
        others = others + [(Path(record.label), lab)]
    ref_shape = tuple(ref.shape[:3])
    for path, img in others:
        shape = tuple(img.shape)
        extra = shape[3:]
        if shape[:3] != ref_shape or any(s != 1 for s in extra):
            raise UserError(
                f"{path}: case {record.case_id}: shape: expected {ref_shape} (the grid of "
                f"{ref_path}), got {shape}"
            )
        if not np.allclose(img.affine, ref.affine, atol=_AFFINE_ATOL):
            raise UserError(
                f"{path}: case {record.case_id}: affine: expected the voxel-to-world affine of "
                f"{ref_path} (shape {ref_shape}), differs by up to "
                f"{np.abs(img.affine - ref.affine).max():.3g} mm"
            )
    if level == "full":
        for path, img in imgs:
            read_nifti_data(path, img)
        if lab is not None:
            seg = read_nifti_data(record.label, lab)
            check_label_values(seg, record.source, where=str(record.label))


def validate_cases(records: Iterable[CaseRecord], level: str = "header") -> None:
    """:func:`validate_case` on every record; raises on the first problem."""
    n = 0
    for rec in records:
        validate_case(rec, level)
        n += 1
    if n == 0:
        raise UserError("data: cases: expected at least one case, found none")
