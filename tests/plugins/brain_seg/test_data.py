"""brain_seg transforms and datasets on small phantom cases (32³–48³)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

from sigplex.core.errors import UserError
from sigplex.datasets.nifti import MODALITIES, ensure_phantom_dataset, read_cases
from sigplex.plugins.brain_seg.data import (
    build_datasets,
    collate_fn,
    seed_dataset,
    split_records,
)
from sigplex.plugins.brain_seg.transforms import eval_transforms, train_transforms


@pytest.fixture(scope="module")
def phantom(tmp_path_factory) -> Path:
    """Five 40³ phantom cases in the BraTS 2021 layout."""
    return ensure_phantom_dataset(5, (40, 40, 40), cache_dir=tmp_path_factory.mktemp("cache"))


@pytest.fixture
def cache_env(tmp_path, monkeypatch):
    monkeypatch.setenv("SIGPLEX_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def item_of(root: Path, i: int = 0) -> dict:
    return read_cases(root)[i].to_dict()


def test_train_transforms_roi_channels_and_nesting(phantom):
    t = train_transforms((32, 24, 32), "brats2021")
    t.set_random_state(0)
    out = t(item_of(phantom))
    assert out["image"].shape == (4, 32, 24, 32) and out["image"].dtype == torch.float32
    assert out["label"].shape == (3, 32, 24, 32)
    lab = out["label"]
    assert set(torch.unique(lab).tolist()) <= {0.0, 1.0}
    tc, wt, et = lab
    assert torch.all(et <= tc) and torch.all(tc <= wt), "ET ⊂ TC ⊂ WT"
    assert type(out["image"]) is torch.Tensor  # plain tensors for the model


def test_train_pads_small_volumes(phantom):
    out = train_transforms(64, "brats2021")(item_of(phantom))
    assert out["image"].shape == (4, 64, 64, 64) and out["label"].shape == (3, 64, 64, 64)


def test_eval_transforms_normalise_nonzero_channelwise(phantom):
    out = eval_transforms("brats2021")(item_of(phantom))
    img = out["image"]
    assert img.shape == (4, 40, 40, 40)
    raw = nib.load(str(read_cases(phantom)[0].images[0])).get_fdata()
    assert torch.all(img[0][torch.from_numpy(raw == 0)] == 0), "background stays 0"
    for c in range(4):
        nz = img[c][img[c] != 0]
        assert abs(float(nz.mean())) < 1e-3 and abs(float(nz.std()) - 1) < 1e-2
    seg = nib.load(str(read_cases(phantom)[0].label)).get_fdata()
    np.testing.assert_array_equal(out["label"][2].numpy(), (seg == 4).astype(np.float32))
    np.testing.assert_array_equal(out["label"][1].numpy(), (seg > 0).astype(np.float32))


def _as_msd_and_2023(phantom: Path, tmp: Path):
    rec = read_cases(phantom)[0]
    aff = nib.load(str(rec.images[0])).affine
    vols = {m: nib.load(str(p)).get_fdata(dtype=np.float32) for m, p in zip(MODALITIES, rec.images)}
    seg = np.asarray(nib.load(str(rec.label)).dataobj)
    # MSD: one 4D file in FLAIR, T1w, T1gd, T2w order; labels 1 oedema, 2 NET, 3 ET
    img4 = np.stack([vols["flair"], vols["t1"], vols["t1ce"], vols["t2"]], axis=-1)
    msd_seg = np.select([seg == 2, seg == 1, seg == 4], [1, 2, 3], 0).astype(np.uint8)
    nib.save(nib.Nifti1Image(img4, aff), str(tmp / "msd_img.nii.gz"))
    nib.save(nib.Nifti1Image(msd_seg, aff), str(tmp / "msd_lab.nii.gz"))
    msd = {"image": str(tmp / "msd_img.nii.gz"), "label": str(tmp / "msd_lab.nii.gz"), "case_id": "m"}
    # BraTS 2023: same files, ET label 3
    d = tmp / "C-000"
    d.mkdir()
    for m, suf in zip(MODALITIES, ("t1n", "t1c", "t2w", "t2f")):
        shutil.copy(rec.images[MODALITIES.index(m)], d / f"C-000-{suf}.nii.gz")
    nib.save(nib.Nifti1Image(np.where(seg == 4, 3, seg).astype(np.uint8), aff), str(d / "C-000-seg.nii.gz"))
    return rec.to_dict(), msd, read_cases(d)[0]


def test_sources_give_identical_channels(phantom, tmp_path):
    brats, msd, rec23 = _as_msd_and_2023(phantom, tmp_path)
    assert rec23.source == "brats2023"
    ref = eval_transforms("brats2021")(brats)
    for source, item in (("msd", msd), ("brats2023", rec23.to_dict())):
        out = eval_transforms(source)(item)
        torch.testing.assert_close(out["image"], ref["image"])  # MSD channels reordered
        torch.testing.assert_close(out["label"], ref["label"])


def test_label_outside_source_set_is_user_error(phantom, tmp_path):
    brats, msd, _ = _as_msd_and_2023(phantom, tmp_path)
    with pytest.raises(UserError) as ei:  # a BraTS 2021 seg (value 4) read as MSD
        eval_transforms("msd")({**msd, "label": brats["label"]})
    assert "_seg.nii.gz" in str(ei.value) and "found 4" in str(ei.value)


def test_corrupt_file_is_user_error_naming_file(phantom, tmp_path):
    case = tmp_path / "case"
    shutil.copytree(read_cases(phantom)[0].images[0].parent, case)
    f = next(case.glob("*_t2.nii.gz"))
    f.write_bytes(f.read_bytes()[:300])
    with pytest.raises(UserError) as ei:
        eval_transforms("brats2021")(read_cases(case)[0].to_dict())
    assert str(f) in str(ei.value)


def test_inference_item_without_label(phantom):
    item = item_of(phantom)
    del item["label"]
    out = eval_transforms("brats2021")(item)
    assert "label" not in out and out["image"].shape == (4, 40, 40, 40)


def test_phantom_default_splits_are_disjoint(cache_env):
    kw = dict(roi=32, cache=None, phantom_cases=5, phantom_shape=(32, 32, 32))
    sets = {s: build_datasets(None, s, **kw) for s in ("train", "val", "test")}
    ids = {s: [r.case_id for r in ds.records] for s, ds in sets.items()}
    assert ids == {"train": ["Phantom_00000", "Phantom_00001", "Phantom_00002"],
                   "val": ["Phantom_00003"], "test": ["Phantom_00004"]}
    assert (cache_env / "brain_seg" / "phantom-v1-32x32x32-5" / "phantom.json").is_file()
    batch = collate_fn([sets["train"][0], sets["train"][1]])
    assert batch["image"].shape == (2, 4, 32, 32, 32) and batch["label"].shape == (2, 3, 32, 32, 32)
    assert batch["case_id"] == ["Phantom_00000", "Phantom_00001"]
    assert sets["val"].source == "brats2021"


def test_cache_kinds(cache_env, phantom):
    from monai.data import CacheDataset, Dataset, PersistentDataset

    mem = build_datasets(phantom, "val", 32, cache="memory")
    disk = build_datasets(phantom, "val", 32, cache="disk")
    plain = build_datasets(phantom, "val", 32, cache=None)
    assert isinstance(mem, CacheDataset) and isinstance(disk, PersistentDataset)
    assert type(plain) is Dataset
    torch.testing.assert_close(mem[0]["image"], plain[0]["image"])
    torch.testing.assert_close(disk[0]["image"], plain[0]["image"])
    assert any((cache_env / "brain_seg" / "persistent").rglob("*.pt"))
    with pytest.raises(UserError, match="data.cache"):
        build_datasets(phantom, "val", 32, cache="ram")


def test_seeded_split_deterministic_and_complete(phantom):
    recs = read_cases(phantom)
    parts = {s: split_records(recs, s, val_fraction=0.2, test_fraction=0.2, seed=1)
             for s in ("train", "val", "test")}
    names = sorted(r.case_id for p in parts.values() for r in p)
    assert names == [r.case_id for r in recs] and [len(p) for p in parts.values()] == [3, 1, 1]
    assert split_records(recs, "val", val_fraction=0.2, test_fraction=0.2, seed=1) == parts["val"]
    other = [split_records(recs, "val", val_fraction=0.2, seed=s)[0].case_id for s in range(6)]
    assert len(set(other)) > 1, "the seed changes the split"
    with pytest.raises(UserError, match="test_fraction"):
        split_records(recs, "test")


def test_datalist_folds_through_build(phantom, tmp_path):
    recs = read_cases(phantom)
    entries = [{"image": [str(p) for p in r.images], "label": str(r.label), "fold": i % 2}
               for i, r in enumerate(recs)]
    path = tmp_path / "folds.json"
    path.write_text(json.dumps({"training": entries}))
    val = build_datasets(path, "val", 32, cache=None, fold=1)
    train = build_datasets(path, "train", 32, cache=None, fold=1)
    assert [r.case_id for r in val.records] == ["Phantom_00001", "Phantom_00003"]
    assert [r.case_id for r in train.records] == ["Phantom_00000", "Phantom_00002", "Phantom_00004"]


def test_seed_dataset_makes_crops_repeatable(phantom):
    ds = build_datasets(phantom, "train", 24, cache="memory", val_fraction=0.2)
    seed_dataset(ds, 5)
    a = ds[0]["image"]
    seed_dataset(ds, 5)
    b = ds[0]["image"]
    seed_dataset(ds, 6)
    c = ds[0]["image"]
    torch.testing.assert_close(a, b)
    assert not torch.equal(a, c)


def test_build_errors(tmp_path, phantom):
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no cases found"):
        build_datasets(tmp_path / "empty", "train", 32, cache=None)
    with pytest.raises(UserError, match="split"):
        build_datasets(phantom, "holdout", 32, cache=None)
    # a predict split takes unlabelled inputs, training refuses them
    f = tmp_path / "in4d.nii.gz"
    nib.save(nib.Nifti1Image(np.ones((8, 8, 8, 4), np.float32), np.eye(4)), str(f))
    pred = build_datasets(f, "predict", 32, cache=None)
    assert pred[0]["image"].shape == (4, 8, 8, 8) and "label" not in pred[0]
    with pytest.raises(UserError, match="in4d.nii.gz.*no label"):
        build_datasets(f, "train", 32, cache=None)
