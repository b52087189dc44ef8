"""One DICOM series -> a 3D volume with its RAS affine (classic one-file-per-slice or enhanced multi-frame).

:func:`read_volume` returns a :class:`Volume`: ``array`` float32 ``[i, j, k]`` (see
:mod:`.geometry` for the voxel order and the LPS -> RAS affine), the modality-LUT rescale
(RescaleSlope/Intercept, or the per-frame Pixel Value Transformation of enhanced objects)
applied, plus ``source``: which file and frame each slice ``k`` came from, so that a result on
this grid can be written back as DICOM referencing the source images.

Pixel data that pydicom cannot decode here (a compressed transfer syntax without its decoder
plugin, or video) is a one-line :class:`UserError` naming the file and the transfer syntax.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sigplex.core.errors import UserError

from .files import import_pydicom
from .geometry import stack_affine
from .series import Series


@dataclass
class Volume:
    """A series as a volume: ``array[i, j, k]``, ``affine`` (RAS, mm) and where each slice came from."""

    array: np.ndarray
    affine: np.ndarray
    files: list[Path]  # the source file of slice k (the same file for every k of a multi-frame series)
    frames: list[int]  # the frame index in that file of slice k (0 for single-frame files)

    @property
    def spacing(self) -> tuple[float, float, float]:
        return tuple(float(v) for v in np.linalg.norm(self.affine[:3, :3], axis=0))


def _read(path: Path):
    pydicom = import_pydicom()

    try:
        return pydicom.dcmread(path)
    except Exception as exc:
        raise UserError(f"{path}: not a readable DICOM file ({_first_line(exc)})") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def pixels(ds, path: Path) -> np.ndarray:
    """``ds.pixel_array``; an undecodable transfer syntax is a one-line UserError."""
    try:
        arr = ds.pixel_array
    except Exception as exc:
        ts = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
        name = f"{ts} ({ts.name})" if ts is not None else "unknown"
        raise UserError(f"{path}: pixel data in transfer syntax {name} cannot be decoded by pydicom here "
                        f"({_first_line(exc)}); install its decoder plugin (e.g. pylibjpeg, gdcm) or "
                        "decompress the series first") from None
    if int(getattr(ds, "SamplesPerPixel", 1) or 1) != 1:
        raise UserError(f"{path}: colour images (SamplesPerPixel {ds.SamplesPerPixel}); expected grey-level MR")
    return np.asarray(arr)


def _rescale(item, fallback=None) -> tuple[float, float]:
    for holder in (item, fallback):
        if holder is not None and "RescaleSlope" in holder:
            return float(holder.RescaleSlope), float(getattr(holder, "RescaleIntercept", 0.0) or 0.0)
    return 1.0, 0.0


def _read_classic(series: Series, where: str) -> Volume:
    datasets = [_read(p) for p in series.files]
    for p, ds in zip(series.files, datasets):
        if int(getattr(ds, "NumberOfFrames", 1) or 1) != 1:
            raise UserError(f"{p}: a multi-frame file in a series of {len(series.files)} files; expected one "
                            "file per slice or one multi-frame file per series")
        for tag in ("ImageOrientationPatient", "ImagePositionPatient", "PixelSpacing"):
            if tag not in ds:
                raise UserError(f"{p}: {tag} missing; cannot place the slice in space")
    order, affine = stack_affine([ds.ImageOrientationPatient for ds in datasets],
                                 [ds.ImagePositionPatient for ds in datasets],
                                 [ds.PixelSpacing for ds in datasets], [(ds.Rows, ds.Columns) for ds in datasets],
                                 [p.name for p in series.files], where)
    slices = []
    for k in order:
        ds, path = datasets[k], series.files[k]
        slope, intercept = _rescale(ds)
        slices.append(pixels(ds, path).astype(np.float32).T * np.float32(slope) + np.float32(intercept))
    return Volume(np.stack(slices, axis=-1), affine, [series.files[k] for k in order], [0] * len(order))


def _group(frame, shared, name: str):
    """The first item of functional group ``name`` for one frame (per-frame, else shared), or None."""
    for holder in (frame, shared):
        if holder is not None and name in holder and len(getattr(holder, name)):
            return getattr(holder, name)[0]
    return None


def _read_multiframe(series: Series, where: str) -> Volume:
    path = series.files[0]
    ds = _read(path)
    frames = list(getattr(ds, "PerFrameFunctionalGroupsSequence", []) or [])
    n = int(getattr(ds, "NumberOfFrames", 1) or 1)
    if len(frames) != n:
        raise UserError(f"{path}: NumberOfFrames is {n} but PerFrameFunctionalGroupsSequence has {len(frames)} "
                        "items; expected an enhanced multi-frame image")
    shared = (getattr(ds, "SharedFunctionalGroupsSequence", None) or [None])[0]
    orient, pos, spacing, rescale = [], [], [], []
    for i, frame in enumerate(frames):
        o, p = _group(frame, shared, "PlaneOrientationSequence"), _group(frame, shared, "PlanePositionSequence")
        m = _group(frame, shared, "PixelMeasuresSequence")
        if o is None or p is None or m is None:
            raise UserError(f"{path}: frame {i + 1}: plane orientation, position or pixel measures missing; "
                            "cannot place the frame in space")
        orient.append(o.ImageOrientationPatient)
        pos.append(p.ImagePositionPatient)
        spacing.append(m.PixelSpacing)
        rescale.append(_rescale(_group(frame, shared, "PixelValueTransformationSequence"), ds))
    names = [f"frame {i + 1}" for i in range(n)]
    order, affine = stack_affine(orient, pos, spacing, [(ds.Rows, ds.Columns)] * n, names, where)
    data = pixels(ds, path).reshape(n, int(ds.Rows), int(ds.Columns))
    slices = [data[k].astype(np.float32).T * np.float32(rescale[k][0]) + np.float32(rescale[k][1]) for k in order]
    return Volume(np.stack(slices, axis=-1), affine, [path] * n, list(order))


def read_volume(series: Series) -> Volume:
    """The series' pixel data as a :class:`Volume` (slices sorted along the normal, geometry checked)."""
    where = f"{series.files[0].parent}: {series.label()}"
    if len(series.files) > 1 and series.frames > len(series.files):
        raise UserError(f"{where}: {len(series.files)} files hold {series.frames} frames; expected one file per "
                        "slice or one multi-frame file per series")
    return _read_multiframe(series, where) if series.multiframe else _read_classic(series, where)
