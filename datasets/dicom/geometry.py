"""DICOM slice geometry -> a voxel-to-world affine (NIfTI/nibabel RAS convention), with the checks.

DICOM positions are in the patient's LPS frame (x to the patient's Left, y Posterior, z Superior);
NIfTI and nibabel use RAS, so ``affine_ras = diag(-1, -1, 1, 1) @ affine_lps``.

Voxel order is that of the pixel data in memory: ``i`` runs along a row (increasing column,
direction = the first three ImageOrientationPatient values), ``j`` down the rows (the last three),
``k`` through the slices sorted by their position along the slice normal ``row x column``. A
slice's pixel array ``[row, column]`` is therefore ``volume[:, :, k].T``. The affine's columns are
the row cosine times the column spacing (PixelSpacing[1]), the column cosine times the row
spacing (PixelSpacing[0]), the step between consecutive ImagePositionPatient values (which need
not be along the normal: gantry tilt is kept), and the first slice's position.

:func:`stack_affine` refuses, as one-line :class:`UserError`: orientations that differ between
slices, slices of different size or pixel spacing, two slices at one position, gaps (missing
slices), irregular spacing and positions that do not lie on a line.

Where a file keeps its geometry: a classic image at its top level (ImageOrientationPatient,
ImagePositionPatient, PixelSpacing); an enhanced multi-frame image in functional groups, per
frame (PerFrameFunctionalGroupsSequence, as Philips and Siemens XA write pixel measures and plane
orientation) or shared by all frames (SharedFunctionalGroupsSequence, as GE writes them).
:func:`functional_group` is the one lookup (per-frame first, then shared); :func:`frame_geometry`
reads one frame's placement with it, and :func:`with_shared_geometry` gives the SEG writer a
header whose common geometry is in the shared groups, whichever layout the file used.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from sigplex.core.errors import UserError

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
#: Largest difference between direction cosines still counted as one orientation.
ORIENTATION_TOL = 1e-3
#: A gap this many times the typical slice step means slices are missing.
GAP_FACTOR = 1.5
#: Steps may differ from the typical step by this fraction (vendor rounding) before spacing is irregular.
STEP_TOL = 0.1


def lps_to_ras(affine: np.ndarray) -> np.ndarray:
    """An LPS affine as RAS (the same flip turns RAS back into LPS)."""
    return LPS_TO_RAS @ np.asarray(affine, dtype=np.float64)


def _as_array(values, n: int, what: str, where: str) -> np.ndarray:
    try:
        arr = np.asarray([float(v) for v in values], dtype=np.float64)
    except (TypeError, ValueError):
        raise UserError(f"{where}: {what}: expected {n} numbers, got {values!r}") from None
    if arr.shape != (n,) or not np.all(np.isfinite(arr)):
        raise UserError(f"{where}: {what}: expected {n} finite numbers, got {values!r}")
    return arr


def stack_affine(orientations: Sequence, positions: Sequence, spacings: Sequence, shapes: Sequence,
                 names: Sequence[str], where: str) -> tuple[list[int], np.ndarray]:
    """Sort slices along their normal and return ``(order, affine_ras)``.

    ``orientations``: ImageOrientationPatient per slice (6 values); ``positions``:
    ImagePositionPatient (3); ``spacings``: PixelSpacing (row spacing, column spacing);
    ``shapes``: (Rows, Columns); ``names``: what to call each slice in messages (file or frame);
    ``where``: the series, for messages. ``order[k]`` is the input index of sorted slice ``k``.
    """
    n = len(positions)
    if n < 2:
        raise UserError(f"{where}: expected a 3D series of at least 2 slices, found {n}")
    iops = np.stack([_as_array(o, 6, "ImageOrientationPatient", where) for o in orientations])
    ipps = np.stack([_as_array(p, 3, "ImagePositionPatient", where) for p in positions])
    pixel = np.stack([_as_array(s, 2, "PixelSpacing", where) for s in spacings])
    bad = np.abs(iops - iops[0]).max(axis=1) > ORIENTATION_TOL
    if bad.any():
        other = int(np.argmax(bad))
        raise UserError(f"{where}: mixed orientations within the series: {names[0]} has ImageOrientationPatient "
                        f"{_fmt(iops[0])}, {names[other]} has {_fmt(iops[other])}")
    if len({tuple(s) for s in shapes}) > 1 or np.abs(pixel - pixel[0]).max() > 1e-3:
        raise UserError(f"{where}: slices differ in size or pixel spacing (Rows x Columns "
                        f"{sorted({tuple(int(v) for v in s) for s in shapes})}); expected one 3D stack")
    row, col = iops[0, :3], iops[0, 3:]
    if abs(np.linalg.norm(row) - 1) > 1e-2 or abs(np.linalg.norm(col) - 1) > 1e-2 or abs(row @ col) > 1e-2:
        raise UserError(f"{where}: ImageOrientationPatient {_fmt(iops[0])} is not two orthogonal unit vectors")
    normal = np.cross(row, col)
    depth = ipps @ normal
    order = [int(i) for i in np.argsort(depth, kind="stable")]
    depth, ipps_sorted = depth[order], ipps[order]
    steps = np.diff(depth)
    typical = float(np.median(steps))
    tol = max(0.01, 1e-3 * max(typical, 0.0))
    dup = np.flatnonzero(steps < tol)
    if dup.size:
        a, b = order[dup[0]], order[dup[0] + 1]
        raise UserError(f"{where}: duplicate slices: {names[a]} and {names[b]} are both at {depth[dup[0]]:.3f} mm "
                        "along the slice normal (a repeated file, or several echoes/phases in one series?)")
    gap = np.flatnonzero(steps > GAP_FACTOR * typical)
    if gap.size:
        g = gap[0]
        missing = int(round(steps[g] / typical)) - 1
        raise UserError(f"{where}: missing slices: a gap of {steps[g]:.3f} mm between {names[order[g]]} and "
                        f"{names[order[g + 1]]} where slices are {typical:.3f} mm apart (about {max(missing, 1)} "
                        "slice(s) missing)")
    if np.abs(steps - typical).max() > STEP_TOL * typical:
        raise UserError(f"{where}: irregular slice spacing: steps from {steps.min():.3f} to {steps.max():.3f} mm "
                        "along the slice normal")
    step = (ipps_sorted[-1] - ipps_sorted[0]) / (n - 1)
    predicted = ipps_sorted[0] + np.arange(n)[:, None] * step
    off = np.linalg.norm(ipps_sorted - predicted, axis=1).max()
    if off > max(0.1 * float(pixel[0].min()), 0.01) + STEP_TOL * np.linalg.norm(step):
        raise UserError(f"{where}: slice positions do not lie on a line (off by up to {off:.3f} mm); "
                        "expected one straight stack")
    affine = np.eye(4)
    affine[:3, 0] = row * pixel[0, 1]
    affine[:3, 1] = col * pixel[0, 0]
    affine[:3, 2] = step
    affine[:3, 3] = ipps_sorted[0]
    return order, lps_to_ras(affine)


def slice_geometry(affine_ras: np.ndarray, where: str = "affine") -> dict:
    """Inverse of :func:`stack_affine`: DICOM geometry of each slice ``k`` of a volume with ``affine_ras``.

    Returns ``{"orientation": 6 values, "spacing": [row spacing, column spacing], "slice_step": mm,
    "position": callable k -> 3 values}``. The first two axes must be orthogonal (no in-plane shear).
    """
    lps = lps_to_ras(affine_ras)
    a, b = lps[:3, 0], lps[:3, 1]
    sa, sb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    if sa == 0 or sb == 0 or abs(a @ b) > 1e-6 * sa * sb:
        raise UserError(f"{where}: the first two voxel axes must be orthogonal to write DICOM slices")
    origin, step = lps[:3, 3], lps[:3, 2]
    return {"orientation": [*(a / sa), *(b / sb)], "spacing": [sb, sa],
            "slice_step": float(np.linalg.norm(step)),
            "position": lambda k: [float(v) for v in origin + k * step]}


#: Functional group -> the attribute of its item that places a frame (PS3.3 C.7.6.16.2).
GEOMETRY_GROUPS = {"PlaneOrientationSequence": "ImageOrientationPatient",
                   "PlanePositionSequence": "ImagePositionPatient", "PixelMeasuresSequence": "PixelSpacing"}


def functional_group(ds, frame: int, name: str):
    """The item of functional group ``name`` for ``frame`` (0-based) of an enhanced multi-frame dataset.

    Per-frame groups override shared ones (PS3.3 C.7.6.16); None when the file has the group in neither.
    """
    per_frame = ds.get("PerFrameFunctionalGroupsSequence") or []
    shared = ds.get("SharedFunctionalGroupsSequence") or []
    for holder in (per_frame[frame] if frame < len(per_frame) else None, shared[0] if shared else None):
        if holder is not None and name in holder and len(holder[name].value):
            return holder[name].value[0]
    return None


def frame_geometry(ds, frame: int, where: str) -> tuple:
    """``(ImageOrientationPatient, ImagePositionPatient, PixelSpacing)`` of ``frame`` (0-based), from wherever
    ``ds`` keeps them: the frame's functional groups, the shared ones, or (classic images; orientation and
    spacing of any image) the top level. A value found nowhere is a one-line UserError naming ``where``."""
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    values = []
    for group, attribute in GEOMETRY_GROUPS.items():
        item = functional_group(ds, frame, group)
        if item is not None and attribute in item:
            values.append(item[attribute].value)
        elif attribute in ds and (frames == 1 or attribute != "ImagePositionPatient"):
            values.append(ds[attribute].value)
        else:
            what = f"frame {frame + 1}: " if frames > 1 else ""
            places = "the per-frame or shared functional groups" if frames > 1 else "the file"
            raise UserError(f"{where}: {what}{attribute} missing (not in {places}); cannot place the "
                            f"{'frame' if frames > 1 else 'slice'} in space")
    return tuple(values)


def with_shared_geometry(ds, where: str):
    """A copy of the enhanced multi-frame header ``ds`` whose plane orientation and pixel measures are shared
    groups (taken from frame 1 when the file keeps them per frame), and plane positions per frame.

    Readers that expect the shared layout (highdicom's SEG constructor) then accept every vendor's layout.
    The orientation and spacing must agree between frames (:func:`stack_affine` has checked them).
    """
    from copy import deepcopy

    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    out = deepcopy(ds)
    n = int(out.get("NumberOfFrames", 1) or 1)
    per_frame = list(out.get("PerFrameFunctionalGroupsSequence") or [])
    if len(per_frame) != n:
        raise UserError(f"{where}: NumberOfFrames is {n} but PerFrameFunctionalGroupsSequence has "
                        f"{len(per_frame)} items; expected one item per frame")
    if not out.get("SharedFunctionalGroupsSequence"):
        out.SharedFunctionalGroupsSequence = Sequence([Dataset()])
    shared = out.SharedFunctionalGroupsSequence[0]
    for group in ("PlaneOrientationSequence", "PixelMeasuresSequence"):
        first = functional_group(ds, 0, group)
        if first is None:
            frame_geometry(ds, 0, where)  # the one-line error naming the missing attribute
            first = Dataset()
            first[GEOMETRY_GROUPS[group]] = ds[GEOMETRY_GROUPS[group]]
        setattr(shared, group, Sequence([deepcopy(first)]))
        for item in per_frame:
            if group in item:
                del item[group]
    for i, item in enumerate(per_frame):
        if "PlanePositionSequence" not in item:
            position = Dataset()
            position.ImagePositionPatient = frame_geometry(ds, i, where)[1]
            item.PlanePositionSequence = Sequence([position])
    if "PlanePositionSequence" in shared:
        del shared["PlanePositionSequence"]
    return out


def _fmt(values) -> str:
    return "[" + ", ".join(f"{v:.4g}" for v in values) + "]"
