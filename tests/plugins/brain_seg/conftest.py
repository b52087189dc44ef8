"""brain_seg test fixtures: one small trained run for the session, and DICOM studies made from the phantom.

``make_study(folder, ...)`` writes a phantom case as a DICOM study whose series differ in spacing
and orientation: t1 axial on the phantom's own 1 mm grid, t1ce axial 0.9 x 0.9 x 1.5 mm (the
default reference), t2 sagittal 1.1 mm rotated 10 degrees, flair coronal 1.2 mm as one enhanced
multi-frame file with its frames shuffled. Series are sampled from the phantom volumes with
scipy (trilinear), independently of the code under test; ``study.grids[seq]`` keeps each series'
RAS affine and shape, ``study.case`` the phantom arrays.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from helpers import run_cli

SMALL = ["--set", "data.phantom_cases=5", "--set", "data.phantom_shape=[64,64,64]", "--set", "data.roi=[64,64,64]",
         "--set", "model.depths=[1,1,1,1]", "--set", "model.num_heads=[3,3,3,3]", "--set", "trainer.val_every=2",
         "--set", "trainer.checkpoint_every=2", "--set", "data.sw_batch_size=1"]
DESCRIPTIONS = {"t1": "AX T1 SE", "t1ce": "AX T1 POST GD", "t2": "SAG T2 TSE", "flair": "COR T2 FLAIR"}


@pytest.fixture(scope="session")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("bs") / "run"
    res = run_cli("train", "--plugin", "brain_seg", "--max-steps", 2, "--out", out, *SMALL)
    assert res.returncode == 0, res.stderr
    return out, res


@pytest.fixture(scope="session")
def run_dir(trained):
    return trained[0]


@pytest.fixture(scope="session")
def small():
    """CLI overrides of a tiny run (64^3 phantoms and ROI, one block per stage)."""
    return list(SMALL)


def rotation(axis: int, degrees: float) -> np.ndarray:
    t = np.deg2rad(degrees)
    c, s = np.cos(t), np.sin(t)
    i, j = [a for a in range(3) if a != axis]
    r = np.eye(3)
    r[i, i], r[i, j], r[j, i], r[j, j] = c, -s, s, c
    return r


def grid(columns: np.ndarray, spacing, shape, centre=(0.0, 0.0, 0.0)) -> tuple[np.ndarray, tuple]:
    """A RAS affine whose voxel axes are ``columns`` (unit vectors) times ``spacing``, centred on ``centre``."""
    affine = np.eye(4)
    affine[:3, :3] = np.asarray(columns, float) @ np.diag(spacing)
    affine[:3, 3] = np.asarray(centre) - affine[:3, :3] @ ((np.asarray(shape) - 1) / 2)
    return affine, tuple(int(s) for s in shape)


def sample(volume: np.ndarray, affine: np.ndarray, target_affine: np.ndarray, shape, order: int = 1) -> np.ndarray:
    """``volume`` (with ``affine``) sampled on the grid ``target_affine``/``shape`` (scipy, zeros outside)."""
    from scipy.ndimage import map_coordinates

    idx = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), -1).reshape(-1, 3)
    world = idx @ target_affine[:3, :3].T + target_affine[:3, 3]
    src = (world - affine[:3, 3]) @ np.linalg.inv(affine[:3, :3]).T
    out = map_coordinates(volume.astype(np.float32), src.T, order=order, mode="constant", cval=0.0)
    return out.reshape(shape)


def study_grids(case_shape) -> dict:
    n = np.asarray(case_shape)
    axial = np.diag([-1.0, -1.0, 1.0])  # LPS-like voxel order, as scanners store axial slices
    # columns: the RAS direction of voxel axes i, j, k
    sagittal = rotation(2, 10) @ np.column_stack([(0, 1, 0), (0, 0, -1), (1, 0, 0)]).astype(float)
    coronal = np.column_stack([(-1, 0, 0), (0, 0, -1), (0, 1, 0)]).astype(float)
    return {
        "t1ce": grid(axial, (0.9, 0.9, 1.5), np.round(n * [1 / 0.9, 1 / 0.9, 1 / 1.5]).astype(int)),
        "t2": grid(sagittal, (1.1, 1.1, 1.1), np.round(n / 1.1).astype(int)),
        "flair": grid(coronal, (1.2, 1.2, 1.2), np.round(n / 1.2).astype(int)),
    }


@dataclass
class PhantomStudy:
    folder: Path
    case: dict
    grids: dict = field(default_factory=dict)
    series_uids: dict = field(default_factory=dict)


def make_study(folder, shape=(64, 64, 64), seed=0, missing=(), descriptions=None, frame_of_reference=None,
               extra_series=()) -> PhantomStudy:
    """Write the phantom case ``seed`` as a DICOM study in ``folder`` (see the module docstring)."""
    from pydicom.uid import generate_uid

    from sigplex.datasets.dicom import Study, write_enhanced_series, write_series
    from sigplex.datasets.nifti import generate_phantom_case

    folder = Path(folder)
    case = generate_phantom_case(shape, seed=seed)
    grids = {"t1": (case["affine"], tuple(shape)), **study_grids(shape)}
    names = {**DESCRIPTIONS, **(descriptions or {})}
    study = Study()
    out = PhantomStudy(folder, case, grids)
    rng = np.random.default_rng(seed)
    for number, seq in enumerate(("t1", "t1ce", "t2", "flair"), start=2):
        if seq in missing:
            continue
        affine, gshape = grids[seq]
        data = np.rint(sample(case[seq], case["affine"], affine, gshape))
        series_study = Study(study.study_uid, frame_of_reference.get(seq, study.frame_of_reference_uid),
                             study.patient_id) if frame_of_reference else study
        uid = out.series_uids[seq] = generate_uid()
        if seq == "flair":
            write_enhanced_series(data, affine, folder / f"{number:02d}_{seq}" / "frames.dcm", description=names[seq],
                                  series_number=number, study=series_study, series_uid=uid,
                                  frame_order=rng.permutation(gshape[2]))
        else:
            write_series(data, affine, folder / f"{number:02d}_{seq}", description=names[seq], series_number=number,
                         study=series_study, series_uid=uid)
    for i, description in enumerate(extra_series):
        affine, gshape = grids["t1"]
        write_series(np.rint(case["t1"]), affine, folder / f"{20 + i:02d}_extra", description=description,
                     series_number=20 + i, study=study)
    return out


#: Series descriptions and protocol names as sites write them, per vendor (all fit the default rules).
SITE_NAMES = {
    "philips": {"t1": "T1W_3D_TFE", "t1ce": "T1W_3D_TFE +C", "t2": "T2W_3D_TSE", "flair": "T2W_3D_FLAIR"},
    "ge": {"t1": "Sag T1 BRAVO", "t1ce": "Sag T1 BRAVO POST GAD", "t2": "Sag CUBE T2", "flair": "Sag CUBE T2 FLAIR"},
}


def frame_positions(ds) -> np.ndarray:
    """ImagePositionPatient of every frame of an enhanced file (per-frame groups; shared ones never hold it)."""
    return np.asarray([[float(v) for v in f.PlanePositionSequence[0].ImagePositionPatient]
                       for f in ds.PerFrameFunctionalGroupsSequence])


def phantom_in(volume_shape, native_affine, seed=0) -> dict:
    """A 64 mm phantom case centred in the field of view of a native grid (RAS affine and shape)."""
    from sigplex.datasets.nifti import generate_phantom_case

    case = generate_phantom_case((64, 64, 64), seed=seed)
    centre = native_affine[:3, :3] @ ((np.asarray(volume_shape) - 1) / 2) + native_affine[:3, 3]
    case["affine"] = case["affine"].copy()
    case["affine"][:3, 3] = centre - case["affine"][:3, :3] @ np.full(3, 31.5)
    return case


def on_native(array, case_affine, native_affine, shape, order=1) -> np.ndarray:
    """``array`` sampled on a native grid, only inside the box the phantom covers (zeros elsewhere, fast)."""
    corners = np.stack(np.meshgrid(*[[0, n - 1] for n in array.shape], indexing="ij"), -1).reshape(-1, 3)
    world = corners @ case_affine[:3, :3].T + case_affine[:3, 3]
    idx = (world - native_affine[:3, 3]) @ np.linalg.inv(native_affine[:3, :3]).T
    lo = np.clip(np.floor(idx.min(0)).astype(int) - 1, 0, None)
    hi = np.minimum(np.ceil(idx.max(0)).astype(int) + 2, shape)
    box = native_affine.copy()
    box[:3, 3] = native_affine[:3, :3] @ lo + native_affine[:3, 3]
    out = np.zeros(shape, np.float32)
    out[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]] = sample(array, case_affine, box, tuple(hi - lo), order=order)
    return out


def arrange_study(source, folder, names: dict, fill: dict | None = None) -> dict:
    """One real enhanced MR header ``source`` as a four-series study in ``folder``, as a site would have it.

    Each sequence gets a copy of the file with its own SeriesInstanceUID, SOPInstanceUID, SeriesNumber and
    ``names[seq]`` as SeriesDescription and ProtocolName; the study, frame of reference and geometry stay the
    file's. ``fill[seq]``, when given, replaces the pixel data (frames in the file's order, ``[frame, row,
    column]`` uint16). Returns ``{seq: path}``.
    """
    from copy import deepcopy

    from sigplex.datasets.dicom import write_series_copy

    paths, ds = {}, deepcopy(source)  # one copy, its series attributes set in turn
    for number, seq in enumerate(("t1", "t1ce", "t2", "flair"), start=2):
        path = Path(folder) / f"{number:02d}_{seq}" / "IM_0001.dcm"
        paths[seq] = write_series_copy(ds, path, description=names[seq], series_number=number,
                                       pixel_data=None if fill is None else fill[seq])
    return paths


@pytest.fixture(scope="session")
def dcm():
    """The study helpers of this module (tests cannot import a conftest by name)."""
    from types import SimpleNamespace

    pytest.importorskip("scipy")
    pytest.importorskip("pydicom")
    return SimpleNamespace(make_study=make_study, sample=sample, arrange_study=arrange_study, phantom_in=phantom_in,
                           on_native=on_native, frame_positions=frame_positions, site_names=SITE_NAMES)


@pytest.fixture
def phantom_study(tmp_path, dcm):
    return make_study(tmp_path / "study")
