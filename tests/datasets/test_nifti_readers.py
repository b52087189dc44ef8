"""Readers of every layout and detect_source, on tiny NIfTI files made here."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from sigplex.core.errors import UserError
from sigplex.datasets.nifti import (
    MODALITIES,
    detect_source,
    read_brats_folder,
    read_case_folder,
    read_cases,
    read_datalist,
    read_msd,
    split_folds,
)

AFF = np.diag([-1.0, -1.0, 1.0, 1.0])
SUFFIX_2021 = {"t1": "_t1", "t1ce": "_t1ce", "t2": "_t2", "flair": "_flair", "seg": "_seg"}
SUFFIX_2023 = {"t1": "-t1n", "t1ce": "-t1c", "t2": "-t2w", "flair": "-t2f", "seg": "-seg"}


def save(path: Path, arr, affine=AFF) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(np.asarray(arr), affine), str(path))
    return path


def make_case(root: Path, case: str, naming=SUFFIX_2021, ext=".nii.gz", seg=True, shape=(6, 6, 6)):
    for i, mod in enumerate(MODALITIES):
        save(root / case / f"{case}{naming[mod]}{ext}", np.full(shape, i + 1, np.float32))
    if seg:
        save(root / case / f"{case}{naming['seg']}{ext}", np.zeros(shape, np.uint8))


def test_brats2021_folder_sorted_canonical_order(tmp_path):
    for case in ("B_002", "B_001"):
        make_case(tmp_path, case)
    make_case(tmp_path, "B_003", seg=False, ext=".nii")  # .nii accepted, seg optional
    recs = read_brats_folder(tmp_path)
    assert [r.case_id for r in recs] == ["B_001", "B_002", "B_003"]
    r = recs[0]
    assert r.source == "brats2021"
    assert [p.name for p in r.images] == [f"B_001{SUFFIX_2021[m]}.nii.gz" for m in MODALITIES]
    assert r.label.name == "B_001_seg.nii.gz"
    assert recs[2].label is None and recs[2].images[0].name == "B_003_t1.nii"
    with pytest.raises(UserError, match="B_003.*label"):
        read_brats_folder(tmp_path, require_labels=True)


def test_brats2023_naming(tmp_path):
    make_case(tmp_path, "BraTS-GLI-00000-000", naming=SUFFIX_2023)
    make_case(tmp_path, "BraTS-GLI-00001-000", naming=SUFFIX_2023)
    recs = read_brats_folder(tmp_path)
    assert {r.source for r in recs} == {"brats2023"}
    assert [p.name.split("-")[-1] for p in recs[0].images] == [
        "t1n.nii.gz", "t1c.nii.gz", "t2w.nii.gz", "t2f.nii.gz"]
    assert recs[0].label.name.endswith("-seg.nii.gz")
    assert detect_source(tmp_path) == ("brats_folder", "brats2023")


def test_single_case_folder_and_4d_file(tmp_path):
    make_case(tmp_path, "C1")
    assert detect_source(tmp_path / "C1") == ("case", "brats2021")
    recs = read_cases(tmp_path / "C1")
    assert len(recs) == 1 and recs[0].case_id == "C1"
    f = save(tmp_path / "input4d.nii.gz", np.zeros((5, 5, 5, 4), np.float32))
    assert detect_source(f).layout == "nifti4d"
    (rec,) = read_cases(f)
    assert rec.images == (f,) and rec.label is None and rec.case_id == "input4d"


def _make_msd(root: Path, n=2, modality=None):
    entries = []
    for i in range(n):
        img = save(root / "imagesTr" / f"BRATS_{i:03d}.nii.gz", np.zeros((5, 5, 5, 4), np.float32))
        lab = save(root / "labelsTr" / f"BRATS_{i:03d}.nii.gz", np.zeros((5, 5, 5), np.uint8))
        entries.append({"image": f"./imagesTr/{img.name}", "label": f"./labelsTr/{lab.name}"})
    meta = {"name": "BRATS", "modality": modality or {"0": "FLAIR", "1": "T1w", "2": "t1gd", "3": "T2w"},
            "labels": {"0": "background", "1": "edema", "2": "non-enhancing tumor", "3": "enhancing tumour"},
            "training": entries, "test": ["./imagesTr/BRATS_000.nii.gz"]}
    (root / "dataset.json").write_text(json.dumps(meta))
    # macOS resource-fork junk as in the real download must be ignored
    (root / "imagesTr" / "._BRATS_000.nii.gz").write_bytes(b"junk")
    return root


def test_msd_folder(tmp_path):
    root = _make_msd(tmp_path / "Task01_BrainTumour")
    assert detect_source(root) == ("msd", "msd")
    recs = read_msd(root)
    assert [r.case_id for r in recs] == ["BRATS_000", "BRATS_001"]
    assert recs[0].source == "msd" and len(recs[0].images) == 1
    assert recs[0].images[0] == root / "imagesTr" / "BRATS_000.nii.gz"
    assert recs[0].label == root / "labelsTr" / "BRATS_000.nii.gz"
    test = read_msd(root, split="test")
    assert len(test) == 1 and test[0].label is None


def test_msd_wrong_modality_order(tmp_path):
    root = _make_msd(tmp_path, modality={"0": "T1w", "1": "FLAIR", "2": "t1gd", "3": "T2w"})
    with pytest.raises(UserError) as ei:
        read_msd(root)
    assert "dataset.json" in str(ei.value) and "modality" in str(ei.value)


def _make_datalist(tmp_path: Path) -> Path:
    base = tmp_path / "data"
    training = []
    for i in range(4):
        case = f"BraTS2021_{i:05d}"
        make_case(base / "TrainingData", case)
        # the MONAI BraTS21 datalist lists flair, t1ce, t1, t2: must come back canonical
        training.append({
            "fold": i % 2,
            "image": [f"TrainingData/{case}/{case}{SUFFIX_2021[m]}.nii.gz" for m in ("flair", "t1ce", "t1", "t2")],
            "label": f"TrainingData/{case}/{case}_seg.nii.gz",
        })
    path = tmp_path / "brats21_folds.json"
    path.write_text(json.dumps({"training": training}))
    return path


def test_datalist_folds_and_order(tmp_path):
    path = _make_datalist(tmp_path)
    assert detect_source(path).layout == "datalist"
    recs = read_datalist(path, base_dir=tmp_path / "data")
    assert [r.case_id for r in recs] == [f"BraTS2021_{i:05d}" for i in range(4)]
    assert [r.fold for r in recs] == [0, 1, 0, 1]
    assert [p.name.split("_")[-1] for p in recs[0].images] == [
        "t1.nii.gz", "t1ce.nii.gz", "t2.nii.gz", "flair.nii.gz"]
    assert recs[0].source == "brats2021"
    train, val = split_folds(recs, 1)
    assert [r.fold for r in train] == [0, 0] and [r.fold for r in val] == [1, 1]
    with pytest.raises(UserError, match="fold"):
        split_folds(recs, 5)


def test_datalist_relative_to_json_folder_by_default(tmp_path):
    path = _make_datalist(tmp_path)
    # without base_dir paths resolve next to the JSON, where they do not exist
    with pytest.raises(UserError) as ei:
        read_datalist(path)
    msg = str(ei.value)
    assert "brats21_folds.json" in msg and "training[0].image[0]" in msg and "does not exist" in msg


def test_detect_empty_and_unknown(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError) as ei:
        detect_source(tmp_path / "empty")
    assert "empty" in str(ei.value) and "no cases found" in str(ei.value)
    with pytest.raises(UserError, match="not found"):
        detect_source(tmp_path / "nope")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(UserError, match="notes.txt"):
        detect_source(tmp_path / "notes.txt")


def test_missing_modality_names_case_and_file(tmp_path):
    make_case(tmp_path, "C7")
    (tmp_path / "C7" / "C7_t1ce.nii.gz").unlink()
    with pytest.raises(UserError) as ei:
        read_case_folder(tmp_path / "C7")
    msg = str(ei.value)
    assert "case C7" in msg and "t1ce" in msg and "C7_t1ce.nii.gz" in msg


def test_importing_package_loads_no_domain_library():
    code = ("import sys, sigplex.datasets.nifti; "
            "print(sorted(m for m in ('nibabel', 'monai', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
