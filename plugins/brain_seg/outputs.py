"""brain_seg outputs: predicted label maps as NIfTI on the input's grid, and overlay PNGs.

``write_label_nifti`` writes a uint8 BraTS label map (0, 1, 2, 4) with the reference
image's affine and header, atomically and never over an existing file unless asked;
``write_label_nifti_affine`` does the same from an affine (DICOM inputs' native grid).
``write_overlay_png`` draws axial, coronal and sagittal slices through the tumour centre
with the labels coloured (NCR red, oedema green, enhancing yellow); it encodes with
matplotlib when importable, else with the small numpy + zlib PNG encoder here.
"""
from __future__ import annotations

import gzip
import io
import struct
import zlib
from pathlib import Path
from typing import Iterable

import numpy as np

from sigplex.core.errors import UserError
from sigplex.core.fileio import atomic_write_bytes

BRATS_LABELS = (0, 1, 2, 4)
#: RGB colour per label value (3 = BraTS 2023 / MSD enhancing, drawn like 4).
LABEL_COLOURS = {1: (230, 40, 40), 2: (40, 200, 60), 3: (250, 220, 30), 4: (250, 220, 30)}


def _as_numpy(x) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def _squeeze_to_3d(a: np.ndarray, what: str) -> np.ndarray:
    while a.ndim > 3 and a.shape[0] == 1:
        a = a[0]
    if a.ndim != 3:
        raise UserError(f"{what}: shape: expected a 3D volume, got {tuple(a.shape)}")
    return a


def write_label_nifti(
    label_map, reference_nifti_path: str | Path, out_path: str | Path,
    overwrite: bool = False, labels: Iterable[int] = BRATS_LABELS,
) -> Path:
    """Write ``label_map`` (3D, values in ``labels``) as uint8 NIfTI on the reference's grid.

    The affine and header (orientation codes, units, voxel sizes) come from
    ``reference_nifti_path`` (:func:`write_label_nifti_affine` takes an affine instead); the
    file is written to a temporary name and moved into place. An existing ``out_path`` is a
    UserError naming it unless ``overwrite=True``.
    """
    from sigplex.datasets.nifti import load_nifti

    out_path = Path(out_path)
    name = out_path.name.lower()
    if not (name.endswith(".nii.gz") or name.endswith(".nii")):
        raise UserError(f"{out_path}: output path: expected a .nii.gz or .nii file name")
    if out_path.exists() and not overwrite:
        raise UserError(f"{out_path}: already exists; choose another path or pass --overwrite")
    ref = load_nifti(reference_nifti_path)
    lab = _squeeze_to_3d(_as_numpy(label_map), "label map")
    if tuple(lab.shape) != tuple(ref.shape[:3]):
        raise UserError(
            f"{out_path}: label map shape: expected {tuple(ref.shape[:3])} (the grid of "
            f"{reference_nifti_path}), got {tuple(lab.shape)}"
        )
    return _save_labels(lab, ref.affine, ref.header.copy(), out_path, tuple(int(v) for v in labels), overwrite)


def write_label_nifti_affine(label_map, affine, out_path: str | Path, labels: Iterable[int] = BRATS_LABELS) -> Path:
    """Write ``label_map`` as uint8 NIfTI with ``affine`` (RAS, mm; sform and qform code 1, scanner), atomically."""
    lab = _squeeze_to_3d(_as_numpy(label_map), "label map")
    return _save_labels(lab, np.asarray(affine, dtype=np.float64), None, Path(out_path),
                        tuple(int(v) for v in labels), overwrite=True)


def _save_labels(lab: np.ndarray, affine, header, out_path: Path, labels: tuple[int, ...], overwrite: bool) -> Path:
    import nibabel as nib

    values = np.unique(lab).tolist()
    bad = [v for v in values if v not in labels]
    if bad:
        raise UserError(f"{out_path}: label values: expected a subset of {list(labels)}, found {bad[:10]}")
    img = nib.Nifti1Image(lab.astype(np.uint8), affine, header)
    if header is None:  # no reference header: scanner-space codes and mm units
        img.set_sform(affine, code=1)
        img.set_qform(affine, code=1)
        img.header.set_xyzt_units("mm")
    img.set_data_dtype(np.uint8)
    img.header.set_slope_inter(1.0, 0.0)
    img.header["cal_min"], img.header["cal_max"] = 0, max(labels)
    data = img.to_bytes()
    if out_path.name.lower().endswith(".gz"):
        data = gzip.compress(data, compresslevel=6, mtime=0)
    atomic_write_bytes(out_path, data, overwrite=overwrite)
    return out_path


# --- overlay PNG -------------------------------------------------------------------------

def encode_png(rgb: np.ndarray) -> bytes:
    """Encode an ``(H, W, 3)`` uint8 array as PNG bytes (numpy + zlib only)."""
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected (H, W, 3) uint8, got {rgb.shape}")
    h, w, _ = rgb.shape
    raw = np.concatenate([np.zeros((h, 1), np.uint8), rgb.reshape(h, w * 3)], axis=1).tobytes()

    def chunk(tag: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + tag + payload + struct.pack(
            ">I", zlib.crc32(tag + payload) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)  # 8-bit RGB, no interlace
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b""))


def _png_bytes(rgb: np.ndarray) -> bytes:
    try:
        import matplotlib.image as mpimg
    except ImportError:
        return encode_png(rgb)
    buf = io.BytesIO()
    mpimg.imsave(buf, rgb, format="png")
    return buf.getvalue()


def _pick_image(image, shape3) -> np.ndarray:
    img = _as_numpy(image).astype(np.float32)
    while img.ndim > 4 and img.shape[0] == 1:
        img = img[0]
    if img.ndim == 3:
        pass
    elif img.ndim == 4 and tuple(img.shape[1:]) == shape3:
        img = img[-1]  # channel first: the last canonical modality, FLAIR
    elif img.ndim == 4 and tuple(img.shape[:3]) == shape3:
        img = img[..., -1]
    else:
        raise UserError(f"overlay image: shape: expected {shape3} or 4 channels of it, got {img.shape}")
    if tuple(img.shape) != shape3:
        raise UserError(f"overlay image: shape: expected {shape3} like the label map, got {img.shape}")
    return img


def overlay_png_size(shape, scale: int = 2, gap: int = 2) -> tuple[int, int]:
    """(width, height) in pixels of :func:`write_overlay_png`'s image for a volume ``shape``."""
    x, y, z = (int(s) for s in shape[-3:])
    return (x + x + y + 2 * gap) * scale, max(y, z) * scale


def write_overlay_png(
    image_volume, label_map, out_png: str | Path, scale: int = 2, alpha: float = 0.45,
    overwrite: bool = True,
) -> Path:
    """Axial, coronal and sagittal slices through the tumour centre, labels coloured.

    ``image_volume`` is 3D or 4D (channels first or last; the last channel — FLAIR in the
    canonical order — is shown); ``label_map`` is 3D with BraTS labels. The PNG is
    ``overlay_png_size(label_map.shape, scale)`` pixels, written atomically.
    """
    lab = _squeeze_to_3d(_as_numpy(label_map), "overlay label map").astype(np.int64)
    img = _pick_image(image_volume, tuple(lab.shape))
    fg = np.argwhere(lab > 0)
    centre = fg.mean(axis=0).round().astype(int) if len(fg) else np.array(lab.shape) // 2
    cx, cy, cz = (int(c) for c in centre)
    nz = img[img != 0]
    lo, hi = (np.percentile(nz, [1, 99]) if nz.size else (0.0, 1.0))
    gray = np.clip((img - lo) / max(hi - lo, 1e-6), 0, 1)

    def panel(g2: np.ndarray, l2: np.ndarray) -> np.ndarray:
        # rows = second axis, flipped so it points up; cols = first axis
        g2, l2 = np.flipud(g2.T), np.flipud(l2.T)
        rgb = np.repeat(g2[..., None] * 255.0, 3, axis=2)
        for value, colour in LABEL_COLOURS.items():
            m = l2 == value
            rgb[m] = (1 - alpha) * rgb[m] + alpha * np.asarray(colour, np.float32)
        return rgb

    panels = [panel(gray[:, :, cz], lab[:, :, cz]),  # axial (x, y)
              panel(gray[:, cy, :], lab[:, cy, :]),  # coronal (x, z)
              panel(gray[cx, :, :], lab[cx, :, :])]  # sagittal (y, z)
    gap = 2
    height = max(p.shape[0] for p in panels)
    cols = []
    for i, p in enumerate(panels):
        padded = np.zeros((height, p.shape[1], 3), np.float32)
        padded[height - p.shape[0]:] = p
        cols.append(padded)
        if i < len(panels) - 1:
            cols.append(np.zeros((height, gap, 3), np.float32))
    rgb = np.concatenate(cols, axis=1).round().clip(0, 255).astype(np.uint8)
    if scale > 1:
        rgb = np.repeat(np.repeat(rgb, scale, axis=0), scale, axis=1)
    out_png = Path(out_png)
    atomic_write_bytes(out_png, _png_bytes(rgb), overwrite=overwrite)
    return out_png
