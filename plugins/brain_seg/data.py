"""Datasets for brain_seg: cases from any supported layout (or the phantom default) → MONAI datasets.

``build_datasets(data, split, roi, ...)`` reads the cases at ``data`` (a folder of BraTS
case folders, an MSD folder, a datalist JSON, a single case or 4D file; ``None`` = the
generated phantom dataset), checks their headers, splits them deterministically and
returns a map-style MONAI dataset (``CacheDataset`` / ``PersistentDataset`` / ``Dataset``)
with the recipe's transforms. ``collate_fn`` batches its items.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from sigplex.core.errors import UserError
from sigplex.datasets.nifti import (
    CaseRecord,
    cache_root,
    detect_source,
    ensure_phantom_dataset,
    read_brats_folder,
    read_cases,
    split_folds,
    validate_cases,
)

from .transforms import eval_transforms, train_transforms

SPLITS = ("train", "val", "test", "predict", "all")
CACHES = ("memory", "disk", None)
#: Phantom default: shape and case count, split by index into train/val/test (12/4/4).
PHANTOM_SHAPE = (96, 96, 96)
PHANTOM_CASES = 20
_TRANSFORM_VERSION = 1


def split_records(
    records: Sequence[CaseRecord], split: str, fold: Optional[int] = None,
    val_fraction: float = 0.2, test_fraction: float = 0.0, seed: int = 0,
) -> list[CaseRecord]:
    """The records of ``split``, deterministically.

    With ``fold``: train = folds != fold, val = fold (records need a ``fold``). Without:
    sort by case id, shuffle with ``seed``, then the first ``test_fraction`` are test, the
    next ``val_fraction`` val, the rest train. ``split="test"`` with no test cases is an error.
    """
    if split not in ("train", "val", "test"):
        raise UserError(f"split: expected train, val or test, got {split!r}")
    if not 0.0 <= val_fraction < 1.0 or not 0.0 <= test_fraction < 1.0 \
            or val_fraction + test_fraction >= 1.0:
        raise UserError(
            f"data.val_fraction/test_fraction: expected fractions in [0, 1) summing below 1, "
            f"got {val_fraction} and {test_fraction}"
        )
    records = sorted(records, key=lambda r: r.case_id)
    if fold is not None and split != "test":
        train, val = split_folds(records, fold)
        return train if split == "train" else val
    n = len(records)
    n_test = int(round(n * test_fraction))
    n_val = int(round(n * val_fraction))
    if val_fraction > 0 and n_val == 0:
        n_val = 1
    if n - n_test - n_val < 1:
        raise UserError(
            f"data: cases: expected enough labelled cases for the split, found {n} "
            f"(val_fraction {val_fraction}, test_fraction {test_fraction})"
        )
    order = np.random.default_rng(seed).permutation(n)
    shuffled = [records[i] for i in order]
    test, val, train = shuffled[:n_test], shuffled[n_test:n_test + n_val], shuffled[n_test + n_val:]
    if fold is not None:  # split == "test" with folds: folds cover train+val; test is separate
        test = []
    chosen = {"train": train, "val": val, "test": test}[split]
    if not chosen:
        raise UserError(
            f"data.{'test_fraction' if split == 'test' else 'val_fraction'}: no {split} cases; "
            f"expected a fraction > 0 (or a datalist with 'testing' entries)"
        )
    return sorted(chosen, key=lambda r: r.case_id)


def phantom_records(split: str, n_cases: int = PHANTOM_CASES,
                    shape: Sequence[int] = PHANTOM_SHAPE) -> list[CaseRecord]:
    """Phantom default cases of ``split``: by index, 60 % train, 20 % val, 20 % test (held out)."""
    root = ensure_phantom_dataset(n_cases=n_cases, shape=tuple(shape), seed=0)
    records = read_brats_folder(root, "brats2021", require_labels=True)
    n_test = max(1, n_cases // 5)
    n_val = max(1, n_cases // 5)
    if n_cases - n_test - n_val < 1:
        raise UserError(f"data.phantom_cases: expected at least 3 cases, got {n_cases}")
    parts = {"train": records[: n_cases - n_val - n_test],
             "val": records[n_cases - n_val - n_test: n_cases - n_test],
             "test": records[n_cases - n_test:], "predict": records[n_cases - n_test:], "all": records}
    return parts[split]


def _records_for(data, split, fold, val_fraction, test_fraction, seed, source, base_dir=None):
    path = Path(data)
    det = detect_source(path)
    if split == "predict":
        key = "test" if det.layout == "msd" else "training"
        if det.layout == "datalist":
            try:
                with open(path, encoding="utf-8") as fh:
                    key = "testing" if json.load(fh).get("testing") else "training"
            except (OSError, ValueError):
                pass
        return read_cases(path, source=source, key=key, base_dir=base_dir)
    if split == "test" and det.layout == "datalist":
        with open(path, encoding="utf-8") as fh:
            has_testing = bool(json.load(fh).get("testing"))
        if has_testing:
            return read_cases(path, source=source, key="testing", require_labels=True,
                              base_dir=base_dir)
    if det.layout == "nifti4d":
        raise UserError(f"{path}: data: a single 4D NIfTI has no label; expected labelled cases "
                        f"for split {split!r} (use it with predict)")
    records = read_cases(path, source=source, require_labels=True, base_dir=base_dir)
    if split == "all":  # every labelled case, unsplit (evaluation on given data)
        return records
    return split_records(records, split, fold, val_fraction, test_fraction, seed)


def _disk_cache_dir(records: Sequence[CaseRecord], source: str, ras: bool) -> Path:
    h = hashlib.sha1(f"v{_TRANSFORM_VERSION}|{source}|{ras}".encode())
    for r in records:
        for p in (*r.images, r.label):
            if p is not None:
                st = Path(p).stat()
                h.update(f"|{p}|{st.st_size}|{st.st_mtime_ns}".encode())
    return cache_root() / "brain_seg" / "persistent" / h.hexdigest()[:16]


def build_datasets(
    data: str | Path | None = None,
    split: str = "train",
    roi: Sequence[int] | int = (96, 96, 96),
    cache: Optional[str] = "memory",
    fold: Optional[int] = None,
    val_fraction: float = 0.2,
    test_fraction: float = 0.0,
    seed: int = 0,
    source: Optional[str] = None,
    ras: bool = False,
    validate: str = "header",
    phantom_cases: int = PHANTOM_CASES,
    phantom_shape: Sequence[int] = PHANTOM_SHAPE,
    base_dir: str | Path | None = None,
    modality_dropout: float = 0.0,
):
    """A map-style dataset of ``split`` (train/val/test/predict/all) from ``data`` (None = phantom).

    ``cache``: ``"memory"`` (``CacheDataset``), ``"disk"`` (``PersistentDataset`` under
    ``$SIGPLEX_CACHE/brain_seg/persistent``) or None (plain ``Dataset``). Train items are
    random ROI crops; val/test/predict/all items are whole normalised volumes (``all``: every
    labelled case, unsplit); train items zero whole modalities with probability
    ``modality_dropout`` (never all four). ``validate``
    (``"header"``, ``"full"`` or ``"none"``) checks files before anything is loaded;
    ``base_dir`` is where a datalist's relative paths start (default: its folder). The
    dataset gets attributes ``records``, ``source`` and ``split``.
    """
    from monai.data import CacheDataset, Dataset, PersistentDataset

    if split not in SPLITS:
        raise UserError(f"split: expected one of {', '.join(SPLITS)}, got {split!r}")
    if cache not in CACHES and not (isinstance(cache, str) and cache.lower() == "none"):
        raise UserError(f"data.cache: expected memory, disk or none, got {cache!r}")
    cache = None if cache in (None, "none", "None") else cache
    if validate not in ("header", "full", "none"):
        raise UserError(f"data.validate: expected header, full or none, got {validate!r}")
    if data is None:
        records = phantom_records(split, phantom_cases, phantom_shape)
    else:
        records = _records_for(data, split, fold, val_fraction, test_fraction, seed, source,
                               base_dir)
    sources = sorted({r.source for r in records})
    if len(sources) != 1:
        raise UserError(f"{data}: cases: expected one label source, found {', '.join(sources)}")
    src = sources[0]
    if validate != "none":
        validate_cases(records, validate)
    items = []
    for r in records:
        d = r.to_dict()
        d["reference"] = str(r.images[0])
        items.append(d)
    transform = train_transforms(roi, src, ras, modality_dropout) if split == "train" else eval_transforms(src, ras)
    if cache == "memory":
        ds = CacheDataset(items, transform, cache_rate=1.0, num_workers=1, progress=False)
    elif cache == "disk":
        cdir = _disk_cache_dir(records, src, ras)
        cdir.mkdir(parents=True, exist_ok=True)
        ds = PersistentDataset(items, transform, cache_dir=cdir)
    else:
        ds = Dataset(items, transform)
    ds.records, ds.source, ds.split = list(records), src, split
    return ds


def collate_fn(batch):
    """Batch dataset items (MONAI ``list_data_collate``: tensors stacked, strings listed)."""
    from monai.data import list_data_collate

    return list_data_collate(batch)


def seed_dataset(dataset, seed: int) -> None:
    """Seed the random transforms of a dataset from :func:`build_datasets` (exact resume)."""
    transform = getattr(dataset, "transform", None)
    if transform is not None and hasattr(transform, "set_random_state"):
        transform.set_random_state(seed=int(seed) % (2**32))
