"""Seeded BraTS-like phantom cases: the brain_seg plugin's embedded default data.

Each case is a deformed-ellipsoid head and brain (skull-stripped like BraTS by default)
with cortex, white matter, CSF and lateral ventricles, and a tumour at a random place in
the brain: necrotic core (label 1), enhancing rim (4) and oedema (2). Four modalities get
per-tissue contrasts (oedema bright on FLAIR/T2, rim bright and necrosis dark on T1ce, CSF
dark on FLAIR), a smooth multiplicative bias field and Rician noise. Cases are written in the
BraTS 2021 folder layout (float32 images, uint8 seg, 1 mm affine) so the same reader as for
real data reads them. Everything is vectorised numpy; a 96³ case takes a fraction of a second.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Sequence

import numpy as np

from sigplex.core.cache import cache_root

from .sources import MODALITIES

PHANTOM_VERSION = 1

# Tissue indices of the internal tissue map.
BG, CSF, GM, WM, VENT, OED, ENH, NEC, SCALP, SKULL = range(10)
# Relative intensity of each tissue per modality (index = tissue above).
_CONTRAST = {
    #         bg    CSF   GM    WM    vent  oed   enh   nec   scalp skull
    "t1":    (0.0, 0.25, 0.60, 0.80, 0.22, 0.50, 0.60, 0.35, 0.90, 0.08),
    "t1ce":  (0.0, 0.28, 0.60, 0.78, 0.25, 0.52, 1.60, 0.22, 0.90, 0.08),
    "t2":    (0.0, 1.00, 0.62, 0.42, 1.00, 0.88, 0.70, 0.95, 0.60, 0.06),
    "flair": (0.0, 0.12, 0.62, 0.48, 0.10, 1.00, 0.75, 0.45, 0.70, 0.06),
}
# Tissue → BraTS 2021 label.
_LABEL_OF_TISSUE = np.array([0, 0, 0, 0, 0, 2, 4, 1, 0, 0], dtype=np.uint8)


def phantom_affine(shape: Sequence[int]) -> np.ndarray:
    """1 mm voxels stored like BraTS (x and y flipped, i.e. LPS voxel order), volume centre
    at world (0, 0, 0)."""
    c = (np.asarray(shape[:3], dtype=np.float64) - 1) / 2
    aff = np.diag([-1.0, -1.0, 1.0, 1.0])
    aff[:3, 3] = [c[0], c[1], -c[2]]
    return aff


def _grids(shape):
    """Open (broadcastable) float32 grids of voxel offsets from the volume centre."""
    return [
        (np.arange(n, dtype=np.float32) - (n - 1) / 2).reshape([-1 if i == a else 1 for i in range(3)])
        for a, n in enumerate(shape)
    ]


def _smooth_field(rng, grids, n_terms: int, wavelength: float, amp: float) -> np.ndarray:
    """Sum of random plane-wave sinusoids (a smooth random field) of amplitude ~``amp``."""
    x, y, z = grids
    out = None
    for _ in range(n_terms):
        d = rng.normal(size=3)
        d /= np.linalg.norm(d)
        k = (2 * np.pi / wavelength) * rng.uniform(0.6, 1.4)
        w = (d * k).astype(np.float32)
        phase = np.float32(rng.uniform(0, 2 * np.pi))
        term = np.sin(w[0] * x + w[1] * y + w[2] * z + phase)
        out = term if out is None else out + term
    return out * np.float32(amp / np.sqrt(n_terms))


def _ellipsoid_dist(grids, centre, radii) -> np.ndarray:
    x, y, z = grids
    return np.sqrt(
        ((x - centre[0]) / radii[0]) ** 2
        + ((y - centre[1]) / radii[1]) ** 2
        + ((z - centre[2]) / radii[2]) ** 2
    )


def _blur3(a: np.ndarray) -> np.ndarray:
    """Separable [1, 2, 1]/4 smoothing along the three axes (partial-volume effect)."""
    for ax in range(3):
        a = 0.5 * a + 0.25 * (np.roll(a, 1, axis=ax) + np.roll(a, -1, axis=ax))
    return a


def generate_phantom_case(
    shape: Sequence[int] = (96, 96, 96), seed: int = 0, skull_stripped: bool = True
) -> dict:
    """One phantom case as arrays: ``t1, t1ce, t2, flair`` (float32), ``seg`` (uint8,
    BraTS labels 0/1/2/4), ``brain`` (bool mask), ``affine`` and ``tumour_centre`` (voxel).

    The same ``seed`` and ``shape`` always give identical arrays.
    """
    shape = tuple(int(s) for s in shape)
    if len(shape) != 3 or min(shape) < 16:
        raise ValueError(f"shape must be 3 sizes >= 16, got {shape}")
    rng = np.random.default_rng(np.random.SeedSequence([PHANTOM_VERSION, int(seed)]))
    g = _grids(shape)
    S = np.asarray(shape, dtype=np.float64)
    mean_r = float(S.mean()) / 2

    # Head and brain: deformed ellipsoids (axis 0 left-right, 1 anterior-posterior, 2 inferior-superior).
    head_r = S * np.array([0.44, 0.47, 0.45]) * rng.uniform(0.95, 1.03, 3)
    head_c = S * rng.uniform(-0.015, 0.015, 3)
    d_head = _ellipsoid_dist(g, head_c, head_r) + _smooth_field(rng, g, 3, 1.2 * mean_r, 0.03)
    brain_r = head_r - 0.1 * mean_r
    d_brain = _ellipsoid_dist(g, head_c, brain_r) + _smooth_field(rng, g, 4, 0.9 * mean_r, 0.04)
    # Cortical folding: a shorter-wavelength field moves the grey/white boundary.
    folds = _smooth_field(rng, g, 6, 0.25 * mean_r, 0.05)

    tissue = np.zeros(shape, dtype=np.uint8)
    tissue[d_head < 1.0] = SCALP
    tissue[d_head < 0.94] = SKULL
    brain = d_brain < 1.0
    tissue[brain] = CSF
    tissue[d_brain + folds < 0.95] = GM
    tissue[d_brain + folds < 0.82] = WM

    # Lateral ventricles: two tilted, slightly deformed ellipsoids near the centre.
    vent_field = _smooth_field(rng, g, 3, 0.3 * mean_r, 0.08)
    for side in (-1.0, 1.0):
        vc = head_c + brain_r * np.array([side * rng.uniform(0.1, 0.15), rng.uniform(-0.05, 0.1),
                                          rng.uniform(0.05, 0.15)])
        vr = brain_r * np.array([0.07, 0.34, 0.16]) * rng.uniform(0.85, 1.15, 3)
        tissue[(_ellipsoid_dist(g, vc, vr) + vent_field < 1.0) & brain] = VENT
    ventricles = tissue == VENT

    # Tumour: centre at a random point in the brain (away from the middle where ventricles are).
    r_tc = mean_r * rng.uniform(0.18, 0.28)
    u = rng.normal(size=3)
    u /= np.linalg.norm(u)
    max_rad = max(0.3, 0.85 - r_tc / brain_r.min())  # keep the tumour core inside the brain
    centre = head_c + brain_r * u * rng.uniform(0.25, max_rad)
    d_tc = _ellipsoid_dist(g, centre, r_tc * rng.uniform(0.85, 1.15, 3))
    d_tc = d_tc + _smooth_field(rng, g, 4, r_tc, 0.12)
    nec_frac = rng.uniform(0.55, 0.75)
    oed_scale = rng.uniform(1.4, 1.9)
    d_oed = d_tc / oed_scale + _smooth_field(rng, g, 5, 0.8 * r_tc, 0.10)
    tumour_zone = brain & ~(ventricles & (d_tc >= 1.0))
    tissue[(d_oed < 1.0) & tumour_zone & (tissue != CSF)] = OED
    tissue[(d_tc < 1.0) & brain] = ENH
    tissue[(d_tc < nec_frac) & brain] = NEC
    seg = _LABEL_OF_TISSUE[tissue]

    bias = np.exp(_smooth_field(rng, g, 3, 2.5 * mean_r, 0.15))
    texture = 1.0 + _smooth_field(rng, g, 4, 0.15 * mean_r, 0.03)
    oed_texture = 1.0 + _smooth_field(rng, g, 3, 0.3 * mean_r, 0.06)
    keep = brain if skull_stripped else (d_head < 1.0)
    out = {"seg": seg, "brain": brain, "affine": phantom_affine(shape),
           "tumour_centre": tuple(float(c + (n - 1) / 2) for c, n in zip(centre, shape))}
    oed_or_tumour = tissue >= OED
    oed_or_tumour &= tissue <= NEC
    for mod in MODALITIES:
        lut = np.asarray(_CONTRAST[mod], dtype=np.float32) * rng.uniform(0.95, 1.05, 10)
        lut[BG] = 0.0
        gain = np.float32(rng.uniform(400.0, 1200.0))
        img = lut.astype(np.float32)[tissue]
        img *= texture
        img[oed_or_tumour] *= oed_texture[oed_or_tumour]
        img = _blur3(img) * bias
        sigma = np.float32(0.025)
        n1 = rng.standard_normal(shape, dtype=np.float32) * sigma
        n2 = rng.standard_normal(shape, dtype=np.float32) * sigma
        img = np.sqrt((img + n1) ** 2 + n2 ** 2) * gain
        img = np.rint(img)  # scanner-like integer intensities (also compress well)
        img[~keep] = 0.0
        out[mod] = img.astype(np.float32)
    return out



def write_phantom_case(case: dict, folder: str | Path, case_id: str) -> Path:
    """Write a case from :func:`generate_phantom_case` as ``folder/case_id/case_id_{mod}.nii.gz``."""
    import nibabel as nib

    d = Path(folder) / case_id
    d.mkdir(parents=True, exist_ok=True)
    for mod in MODALITIES:
        img = nib.Nifti1Image(case[mod], case["affine"])
        img.header.set_xyzt_units("mm")
        nib.save(img, str(d / f"{case_id}_{mod}.nii.gz"))
    seg = nib.Nifti1Image(case["seg"].astype(np.uint8), case["affine"])
    seg.header.set_xyzt_units("mm")
    seg.set_data_dtype(np.uint8)
    nib.save(seg, str(d / f"{case_id}_seg.nii.gz"))
    return d


def phantom_dir_name(n_cases: int, shape: Sequence[int], seed: int = 0) -> str:
    """``phantom-v1-<X>x<Y>x<Z>-<n>`` (``-seed<k>`` appended when seed != 0)."""
    name = f"phantom-v{PHANTOM_VERSION}-{'x'.join(str(int(s)) for s in shape)}-{int(n_cases)}"
    return name + (f"-seed{int(seed)}" if seed else "")


def ensure_phantom_dataset(
    n_cases: int = 20, shape: Sequence[int] = (96, 96, 96), seed: int = 0,
    cache_dir: str | Path | None = None,
) -> Path:
    """Generate the phantom dataset once under ``$SIGPLEX_CACHE/brain_seg/`` and return its folder.

    Cases are ``Phantom_00000`` ... in the BraTS 2021 layout; case ``i`` uses seed
    ``seed * 100003 + i``. Written to a temporary folder, then renamed into place, so a
    crash or a concurrent caller never leaves a half-written dataset; an existing complete
    folder (it has ``phantom.json``) is reused as is.
    """
    if n_cases < 1:
        raise ValueError(f"n_cases must be >= 1, got {n_cases}")
    root = Path(cache_dir) if cache_dir is not None else cache_root() / "brain_seg"
    final = root / phantom_dir_name(n_cases, shape, seed)
    if (final / "phantom.json").is_file():
        return final
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=str(root)))
    try:
        cases = []
        for i in range(n_cases):
            cid = f"Phantom_{i:05d}"
            case = generate_phantom_case(shape, seed=int(seed) * 100003 + i)
            write_phantom_case(case, tmp, cid)
            cases.append({"case_id": cid, "tumour_centre": case["tumour_centre"]})
        manifest = {"version": PHANTOM_VERSION, "shape": list(shape), "n_cases": n_cases,
                    "seed": seed, "layout": "brats2021", "cases": cases}
        (tmp / "phantom.json").write_text(json.dumps(manifest, indent=1))
        if final.exists() and not (final / "phantom.json").is_file():
            shutil.rmtree(final, ignore_errors=True)  # a leftover without manifest: incomplete
        try:
            os.rename(tmp, final)
        except OSError:
            if not (final / "phantom.json").is_file():
                raise
            # Another process finished first: use its copy.
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return final
