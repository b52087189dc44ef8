"""One DICOM series -> a 3D volume with its RAS affine (classic one-file-per-slice or enhanced multi-frame).

:func:`read_volume` returns a :class:`Volume`: ``array`` float32 ``[i, j, k]`` (see
:mod:`.geometry` for the voxel order and the LPS -> RAS affine), the modality-LUT rescale
(RescaleSlope/Intercept, or the Pixel Value Transformation group of enhanced objects, per frame or shared)
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
from sigplex.core.limits import check_size

from .files import import_pydicom
from .geometry import frame_geometry, functional_group, stack_affine
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
    """``ds.pixel_array``; no pixel data, more than the input limit, or an undecodable transfer syntax is a
    one-line UserError."""
    if not any(tag in ds for tag in ("PixelData", "FloatPixelData", "DoubleFloatPixelData")):
        raise UserError(f"{path}: holds no pixel data (a DICOM object without an image); expected MR images")
    frames = int(getattr(ds, "NumberOfFrames", 1) or 1)
    size = int(getattr(ds, "Rows", 0) or 0) * int(getattr(ds, "Columns", 0) or 0) * frames
    check_size(8 * size, path, f"{frames} frame(s) of {getattr(ds, 'Rows', '?')} x {getattr(ds, 'Columns', '?')}")
    try:
        arr = ds.pixel_array
    except Exception as exc:
        ts = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
        if ts is not None and not ts.is_compressed:
            raise UserError(f"{path}: pixel data cannot be read ({_first_line(exc)}); the file is truncated or "
                            "damaged") from None
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
    orient, pos, spacing = zip(*(frame_geometry(ds, 0, str(p)) for p, ds in zip(series.files, datasets)))
    order, affine = stack_affine(orient, pos, spacing, [(ds.Rows, ds.Columns) for ds in datasets],
                                 [p.name for p in series.files], where)
    slices = []
    for k in order:
        ds, path = datasets[k], series.files[k]
        slope, intercept = _rescale(ds)
        slices.append(pixels(ds, path).astype(np.float32).T * np.float32(slope) + np.float32(intercept))
    return Volume(np.stack(slices, axis=-1), affine, [series.files[k] for k in order], [0] * len(order))


def _read_multiframe(series: Series, where: str) -> Volume:
    path = series.files[0]
    ds = _read(path)
    n = int(getattr(ds, "NumberOfFrames", 1) or 1)
    frames = ds.get("PerFrameFunctionalGroupsSequence") or []
    if frames and len(frames) != n:
        raise UserError(f"{path}: NumberOfFrames is {n} but PerFrameFunctionalGroupsSequence has {len(frames)} "
                        "items; expected one item per frame")
    orient, pos, spacing = zip(*(frame_geometry(ds, i, str(path)) for i in range(n)))
    rescale = [_rescale(functional_group(ds, i, "PixelValueTransformationSequence"), ds) for i in range(n)]
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
