"""Every validation error: one UserError naming the file, the field and what was expected."""
from __future__ import annotations

import gzip
import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from sigplex.core.errors import UserError
from sigplex.datasets.nifti import (
    MODALITIES,
    CaseRecord,
    read_brats_folder,
    read_cases,
    read_datalist,
    validate_case,
    validate_cases,
)

AFF = np.diag([-1.0, -1.0, 1.0, 1.0])


def save(path: Path, arr, affine=AFF) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(np.asarray(arr), affine), str(path))
    return path


def make_case(root: Path, case="C1", shape=(8, 8, 8), seg=None) -> CaseRecord:
    rng = np.random.default_rng(0)
    for mod in MODALITIES:
        save(root / case / f"{case}_{mod}.nii.gz", rng.random(shape).astype(np.float32))
    seg = np.zeros(shape, np.uint8) if seg is None else seg
    save(root / case / f"{case}_seg.nii.gz", seg)
    return read_brats_folder(root)[0]


def test_valid_case_passes_full(tmp_path):
    seg = np.zeros((8, 8, 8), np.uint8)
    seg[2:4, 2:4, 2:4] = [[[1, 2], [4, 0]]] * 2
    rec = make_case(tmp_path, seg=seg)
    validate_case(rec, "full")  # must not raise


def test_shape_mismatch_names_both_files_and_shapes(tmp_path):
    rec = make_case(tmp_path)
    save(tmp_path / "C1" / "C1_t2.nii.gz", np.zeros((8, 8, 7), np.float32))
    with pytest.raises(UserError) as ei:
        validate_case(rec)
    msg = str(ei.value)
    assert "C1_t2.nii.gz" in msg and "C1_t1.nii.gz" in msg
    assert "(8, 8, 8)" in msg and "(8, 8, 7)" in msg and "shape" in msg


def test_affine_mismatch_names_both_files(tmp_path):
    rec = make_case(tmp_path)
    shifted = AFF.copy()
    shifted[0, 3] = 5.0
    save(tmp_path / "C1" / "C1_flair.nii.gz", np.zeros((8, 8, 8), np.float32), shifted)
    with pytest.raises(UserError) as ei:
        validate_case(rec)
    msg = str(ei.value)
    assert "C1_flair.nii.gz" in msg and "C1_t1.nii.gz" in msg and "affine" in msg


def test_label_shape_mismatch(tmp_path):
    rec = make_case(tmp_path)
    save(tmp_path / "C1" / "C1_seg.nii.gz", np.zeros((8, 9, 8), np.uint8))
    with pytest.raises(UserError, match=r"C1_seg\.nii\.gz.*shape.*\(8, 9, 8\)"):
        validate_case(rec)


def test_truncated_gz_names_file(tmp_path):
    rec = make_case(tmp_path)
    f = tmp_path / "C1" / "C1_t1ce.nii.gz"
    data = f.read_bytes()
    f.write_bytes(data[: len(data) // 2])
    validate_case(rec, "header")  # the header is intact
    with pytest.raises(UserError) as ei:
        validate_case(rec, "full")
    msg = str(ei.value)
    assert str(f) in msg and "truncated or corrupt" in msg


def test_garbage_file_names_file(tmp_path):
    rec = make_case(tmp_path)
    f = tmp_path / "C1" / "C1_t2.nii.gz"
    f.write_bytes(gzip.compress(b"this is not a nifti file at all" * 20))
    with pytest.raises(UserError) as ei:
        validate_case(rec, "header")
    assert str(f) in str(ei.value) and "NIfTI" in str(ei.value)


def test_labels_outside_label_set(tmp_path):
    seg = np.zeros((8, 8, 8), np.uint8)
    seg[0, 0, 0], seg[1, 1, 1] = 3, 7  # 3 is not a BraTS 2021 label
    rec = make_case(tmp_path, seg=seg)
    with pytest.raises(UserError) as ei:
        validate_case(rec, "full")
    msg = str(ei.value)
    assert "C1_seg.nii.gz" in msg and "label values" in msg and "3, 7" in msg and "brats2021" in msg


def test_4d_image_needs_four_channels(tmp_path):
    f = save(tmp_path / "x.nii.gz", np.zeros((4, 4, 4, 3), np.float32))
    rec = CaseRecord("x", (f,), None, "msd")
    with pytest.raises(UserError, match=r"x\.nii\.gz.*4 modalities.*\(4, 4, 4, 3\)"):
        validate_case(rec)


def test_missing_file_in_record(tmp_path):
    rec = make_case(tmp_path)
    (tmp_path / "C1" / "C1_t1.nii.gz").unlink()
    with pytest.raises(UserError, match=r"C1_t1\.nii\.gz.*not found"):
        validate_case(rec)


def test_empty_folder(tmp_path):
    with pytest.raises(UserError) as ei:
        read_cases(tmp_path)
    assert str(tmp_path) in str(ei.value) and "no cases found" in str(ei.value)
    with pytest.raises(UserError, match="at least one case"):
        validate_cases([])


def test_datalist_entry_missing_file(tmp_path):
    rec = make_case(tmp_path / "d")
    entry = {"image": [str(p) for p in rec.images], "label": "C1/C1_segmentation.nii.gz", "fold": 0}
    path = tmp_path / "d" / "list.json"
    path.write_text(json.dumps({"training": [entry]}))
    with pytest.raises(UserError) as ei:
        read_datalist(path)
    msg = str(ei.value)
    assert "list.json" in msg and "training[0].label" in msg and "C1_segmentation.nii.gz" in msg


def test_datalist_bad_json_and_bad_fold(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(UserError, match="bad.json.*JSON"):
        read_datalist(bad)
    rec = make_case(tmp_path / "d")
    path = tmp_path / "d" / "list.json"
    path.write_text(json.dumps({"training": [{"image": [str(p) for p in rec.images], "fold": "one"}]}))
    with pytest.raises(UserError, match=r"list\.json.*training\[0\]\.fold.*integer"):
        read_datalist(path)


def test_nii_gz_declaring_past_the_limit_is_refused_from_its_header_before_any_inflating(tmp_path, monkeypatch):
    from sigplex.core import arrays
    from sigplex.core.limits import InputTooLarge, input_limit
    from sigplex.datasets.nifti.hostile import hostile_variants

    sample = save(tmp_path / "flair.nii.gz", np.zeros((8, 8, 8), np.float32))
    with input_limit(1):  # 1 MB: the bomb inflates to 8 MB of zeros and declares so in its header
        bomb = {v.name: v for v in hostile_variants(sample, tmp_path / "variants")}["nifti:gz-bomb"].path
        inflated = []
        monkeypatch.setattr(arrays, "gzip_size", inflated.append)
        with pytest.raises(InputTooLarge, match=r"flair\.nii\.gz: NIfTI dimensions"):
            arrays.check_input(bomb)
        assert inflated == []
        arrays.check_input(sample)  # a valid volume passes its header check; the stream is still counted
        assert inflated == [sample]
