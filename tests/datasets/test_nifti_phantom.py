"""Phantom cases: deterministic, anatomically plausible, cached once and read like BraTS."""
from __future__ import annotations

import json
import os

import nibabel as nib
import numpy as np
import pytest

from sigplex.datasets.nifti import (
    MODALITIES,
    detect_source,
    ensure_phantom_dataset,
    generate_phantom_case,
    read_cases,
    validate_cases,
)

SHAPE = (48, 48, 48)


@pytest.fixture(scope="module")
def case():
    return generate_phantom_case(SHAPE, seed=3)


def test_same_seed_identical_different_seed_differs(case):
    again = generate_phantom_case(SHAPE, seed=3)
    other = generate_phantom_case(SHAPE, seed=4)
    for key in (*MODALITIES, "seg"):
        np.testing.assert_array_equal(case[key], again[key])
    assert not np.array_equal(case["seg"], other["seg"])
    assert not np.array_equal(case["flair"], other["flair"])


def test_types_labels_and_tumour_inside_brain(case):
    seg, brain = case["seg"], case["brain"]
    assert seg.dtype == np.uint8 and seg.shape == SHAPE
    assert set(np.unique(seg).tolist()) == {0, 1, 2, 4}
    assert np.all(brain[seg > 0]), "tumour voxels outside the brain"
    for mod in MODALITIES:
        img = case[mod]
        assert img.dtype == np.float32 and img.shape == SHAPE
        assert np.all(img[~brain] == 0), "skull-stripped: zero outside the brain"
        assert img[brain].mean() > 0
    # nested regions: necrosis is surrounded by enhancing tumour, oedema is the largest
    counts = {v: int((seg == v).sum()) for v in (1, 2, 4)}
    assert counts[2] > counts[4] > 0 and counts[1] > 0
    # the tumour centre is in the tumour core
    c = np.round(case["tumour_centre"]).astype(int)
    assert seg[tuple(c)] in (1, 4)


def test_contrasts_per_tissue(case):
    seg, brain = case["seg"], case["brain"]
    normal = brain & (seg == 0)
    # white matter: the brightest normal tissue on T1 (top quarter of normal brain on T1)
    t1 = case["t1"]
    wm = normal & (t1 > np.percentile(t1[normal], 75))
    m = {mod: {k: float(case[mod][mask].mean()) for k, mask in
               {"wm": wm, "ncr": seg == 1, "ed": seg == 2, "et": seg == 4}.items()}
         for mod in MODALITIES}
    assert m["flair"]["ed"] > 1.3 * m["flair"]["wm"], "oedema bright on FLAIR"
    assert m["t2"]["ed"] > 1.3 * m["t2"]["wm"], "oedema bright on T2"
    assert m["t1ce"]["et"] > 1.3 * max(m["t1ce"]["wm"], m["t1ce"]["ed"]), "rim enhances on T1ce"
    assert m["t1ce"]["ncr"] < 0.6 * m["t1ce"]["et"], "necrosis dark on T1ce"
    assert m["t1ce"]["ncr"] < m["t1ce"]["wm"], "necrosis darker than white matter on T1ce"
    # enhancement is specific to T1ce: on T1 the rim is not brighter than white matter
    assert m["t1"]["et"] < m["t1"]["wm"]


def test_affine_is_1mm_diagonal_centred(case):
    aff = case["affine"]
    np.testing.assert_allclose(np.abs(np.diag(aff)[:3]), 1.0)
    assert np.count_nonzero(aff[:3, :3] - np.diag(np.diag(aff[:3, :3]))) == 0
    centre_vox = (np.array(SHAPE) - 1) / 2
    np.testing.assert_allclose(aff[:3, :3] @ centre_vox + aff[:3, 3], 0.0, atol=1e-9)


def test_ensure_generates_once_and_reads_as_brats(tmp_path, monkeypatch):
    monkeypatch.setenv("SIGPLEX_CACHE", str(tmp_path))
    root = ensure_phantom_dataset(n_cases=3, shape=(32, 32, 32))
    assert root == tmp_path / "brain_seg" / "phantom-v1-32x32x32-3"
    assert json.loads((root / "phantom.json").read_text())["n_cases"] == 3
    # no temporary folders left behind
    assert [p.name for p in (tmp_path / "brain_seg").iterdir()] == [root.name]
    stamp = (root / "Phantom_00000" / "Phantom_00000_t1.nii.gz").stat().st_mtime_ns
    assert ensure_phantom_dataset(n_cases=3, shape=(32, 32, 32)) == root
    assert (root / "Phantom_00000" / "Phantom_00000_t1.nii.gz").stat().st_mtime_ns == stamp

    assert detect_source(root) == ("brats_folder", "brats2021")
    recs = read_cases(root, require_labels=True)
    assert [r.case_id for r in recs] == ["Phantom_00000", "Phantom_00001", "Phantom_00002"]
    validate_cases(recs, "full")
    seg = nib.load(str(recs[0].label))
    assert seg.get_data_dtype() == np.uint8
    assert nib.load(str(recs[0].images[0])).get_data_dtype() == np.float32
    # the written case equals the in-memory generator (case i uses seed i when seed=0)
    np.testing.assert_array_equal(np.asarray(seg.dataobj), generate_phantom_case((32, 32, 32), 0)["seg"])


def test_ensure_replaces_incomplete_folder(tmp_path):
    final = tmp_path / "phantom-v1-24x24x24-1"
    (final / "junk").mkdir(parents=True)  # a crashed run without manifest
    root = ensure_phantom_dataset(1, (24, 24, 24), cache_dir=tmp_path)
    assert root == final and (root / "phantom.json").is_file() and not (root / "junk").exists()
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())
    assert sorted(os.listdir(root / "Phantom_00000")) == sorted(
        f"Phantom_00000_{m}.nii.gz" for m in (*MODALITIES, "seg"))
