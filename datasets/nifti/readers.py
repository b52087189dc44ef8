"""Readers of brain-tumour NIfTI layouts → lists of :class:`CaseRecord`.

Layouts: a folder of BraTS case folders (2021 ``<case>_t1.nii.gz`` or 2023+
``<case>-t1n.nii.gz`` naming, ``.nii`` accepted too), a single case folder, a Medical
Segmentation Decathlon Task01_BrainTumour folder (``dataset.json`` + 4D images), a MONAI
datalist JSON with folds, and a single 4D NIfTI (prediction). :func:`detect_source` tells
which layout a path is; :func:`read_cases` reads any of them. These functions look only at
file names and JSON; :mod:`sigplex.datasets.nifti.validate` opens the images.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import NamedTuple, Optional, Sequence

from sigplex.core.errors import UserError

from .sources import (
    BRATS2021,
    BRATS2023,
    MODALITIES,
    MSD,
    CaseRecord,
    get_source,
    strip_nifti_ext,
)

_FOLDER_SOURCES = (BRATS2021, BRATS2023)
_EXPECTED_FOLDER = (
    "expected case folders holding <case>_t1/_t1ce/_t2/_flair[_seg].nii.gz (BraTS 2021) or "
    "<case>-t1n/-t1c/-t2w/-t2f[-seg].nii.gz (BraTS 2023), an MSD folder with dataset.json, "
    "a datalist .json, or a 4D .nii.gz"
)


class Detected(NamedTuple):
    """What :func:`detect_source` found: the layout and, when known, the label source."""

    layout: str  # "brats_folder" | "case" | "msd" | "datalist" | "nifti4d"
    source: Optional[str]


def _nifti_files(folder: Path) -> list[Path]:
    return sorted(
        p for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and strip_nifti_ext(p.name) is not None
    )


def _case_dirs(root: Path) -> list[Path]:
    return sorted(
        d for d in root.iterdir()
        if d.is_dir() and not d.name.startswith(".") and _nifti_files(d)
    )


def _match_suffix(files: Sequence[Path], suffix: str) -> list[Path]:
    return [f for f in files if strip_nifti_ext(f.name).lower().endswith(suffix.lower())]


def _guess_folder_source(files: Sequence[Path]) -> Optional[str]:
    """brats2021 or brats2023 from which naming matches more modality files (None: neither)."""
    best, best_n = None, 0
    for src in _FOLDER_SOURCES:
        n = sum(bool(_match_suffix(files, s)) for s in src.file_suffixes.values())
        if n > best_n:
            best, best_n = src.name, n
    return best


def read_case_folder(
    case_dir: str | Path, source: Optional[str] = None, require_label: bool = False
) -> CaseRecord:
    """One BraTS case folder → :class:`CaseRecord` (source guessed from the file names).

    Raises a UserError naming the case and the missing file if a modality (or, with
    ``require_label``, the segmentation) is absent.
    """
    case_dir = Path(case_dir)
    if not case_dir.is_dir():
        raise UserError(f"{case_dir}: case folder: expected a folder, not found")
    files = _nifti_files(case_dir)
    src_name = source or _guess_folder_source(files)
    if src_name is None:
        raise UserError(f"{case_dir}: case folder: no BraTS modality files; {_EXPECTED_FOLDER}")
    src = get_source(src_name)
    case_id = case_dir.name
    images = []
    for mod in MODALITIES:
        suffix = src.file_suffixes[mod]
        hits = _match_suffix(files, suffix)
        if not hits:
            raise UserError(
                f"{case_dir}: case {case_id}: modality {mod}: expected file "
                f"{case_id}{suffix}.nii.gz (or .nii), not found"
            )
        if len(hits) > 1:
            raise UserError(
                f"{case_dir}: case {case_id}: modality {mod}: expected one file ending in "
                f"{suffix}, found {', '.join(h.name for h in hits)}"
            )
        images.append(hits[0])
    seg = _match_suffix(files, src.label_suffix)
    if len(seg) > 1:
        raise UserError(
            f"{case_dir}: case {case_id}: label: expected one file ending in "
            f"{src.label_suffix}, found {', '.join(h.name for h in seg)}"
        )
    if require_label and not seg:
        raise UserError(
            f"{case_dir}: case {case_id}: label: expected file {case_id}{src.label_suffix}"
            f".nii.gz (or .nii), not found"
        )
    return CaseRecord(case_id, tuple(images), seg[0] if seg else None, src.name)


def read_brats_folder(
    root: str | Path, source: Optional[str] = None, require_labels: bool = False
) -> list[CaseRecord]:
    """A folder of BraTS case folders (2021 or 2023 naming) → records sorted by case id."""
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"{root}: data folder: expected a folder, not found")
    dirs = _case_dirs(root)
    if not dirs:
        raise UserError(f"{root}: data folder: no cases found; {_EXPECTED_FOLDER}")
    return sorted(
        (read_case_folder(d, source, require_labels) for d in dirs), key=lambda r: r.case_id
    )


def _load_json(path: Path) -> dict:
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}: JSON: expected valid JSON, {exc}") from None
    except OSError as exc:
        raise UserError(f"{path}: expected a readable JSON file ({exc.strerror})") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: top level: expected a JSON object, got {type(data).__name__}")
    return data


def _resolve(base: Path, rel, json_path: Path, field: str, must_exist: bool = True) -> Path:
    if not isinstance(rel, str) or not rel:
        raise UserError(f"{json_path}: {field}: expected a file path string, got {rel!r}")
    p = Path(rel)
    p = p if p.is_absolute() else (base / p)
    if must_exist and not p.is_file():
        raise UserError(f"{json_path}: {field}: file {p} does not exist")
    return p


_MSD_MODALITY_NAMES = ("flair", "t1w", "t1gd", "t2w")


def read_msd(
    root: str | Path, split: str = "training", require_labels: bool = False
) -> list[CaseRecord]:
    """An MSD Task01_BrainTumour folder (``dataset.json``) → records of 4D images.

    ``split`` is ``"training"`` (images with labels) or ``"test"`` (images only).
    """
    root = Path(root)
    jpath = root / "dataset.json"
    if not jpath.is_file():
        raise UserError(f"{root}: MSD folder: expected dataset.json, not found")
    meta = _load_json(jpath)
    modality = meta.get("modality")
    if isinstance(modality, dict) and modality:
        names = [str(modality.get(str(i), "")).lower() for i in range(len(modality))]
        if names != list(_MSD_MODALITY_NAMES):
            raise UserError(
                f"{jpath}: modality: expected FLAIR, T1w, T1gd, T2w (Task01_BrainTumour), "
                f"got {', '.join(modality.get(str(i), '?') for i in range(len(modality)))}"
            )
    if split not in ("training", "test"):
        raise UserError(f"{jpath}: split: expected 'training' or 'test', got {split!r}")
    entries = meta.get(split)
    if not isinstance(entries, list) or not entries:
        raise UserError(f"{jpath}: {split}: expected a non-empty list of cases")
    records = []
    for i, entry in enumerate(entries):
        if isinstance(entry, str):
            entry = {"image": entry}
        if not isinstance(entry, dict) or "image" not in entry:
            raise UserError(f"{jpath}: {split}[{i}]: expected an object with 'image'")
        img = _resolve(root, entry["image"], jpath, f"{split}[{i}].image")
        lab = entry.get("label")
        lab = _resolve(root, lab, jpath, f"{split}[{i}].label") if lab else None
        if require_labels and lab is None:
            raise UserError(f"{jpath}: {split}[{i}].label: expected a label path, missing")
        records.append(CaseRecord(strip_nifti_ext(img.name) or img.stem, (img,), lab, MSD.name))
    return sorted(records, key=lambda r: r.case_id)


def _modality_of(path: Path, src) -> Optional[str]:
    stem = strip_nifti_ext(path.name) or path.name
    for mod, suffix in src.file_suffixes.items():
        if stem.lower().endswith(suffix.lower()):
            return mod
    return None


def read_datalist(
    json_path: str | Path,
    base_dir: str | Path | None = None,
    key: str = "training",
    source: Optional[str] = None,
    require_labels: bool = False,
) -> list[CaseRecord]:
    """A MONAI datalist JSON → records (with ``fold`` when the entries have one).

    Paths are relative to ``base_dir`` (default: the JSON's folder). Per-modality image
    lists whose file names carry BraTS suffixes are put in canonical order; ``source`` is
    guessed from those suffixes (a single 4D image means MSD) unless given.
    """
    json_path = Path(json_path)
    base = Path(base_dir) if base_dir is not None else json_path.parent
    data = _load_json(json_path)
    entries = data.get(key)
    if not isinstance(entries, list) or not entries:
        raise UserError(f"{json_path}: {key}: expected a non-empty list of cases")
    records = []
    for i, entry in enumerate(entries):
        field = f"{key}[{i}]"
        if not isinstance(entry, dict) or "image" not in entry:
            raise UserError(f"{json_path}: {field}: expected an object with 'image'")
        raw = entry["image"]
        raw = [raw] if isinstance(raw, str) else raw
        if not isinstance(raw, list) or len(raw) not in (1, len(MODALITIES)):
            raise UserError(
                f"{json_path}: {field}.image: expected one 4D file or a list of "
                f"{len(MODALITIES)} files, got {raw!r}"
            )
        imgs = [_resolve(base, r, json_path, f"{field}.image[{j}]") for j, r in enumerate(raw)]
        src_name = source
        if len(imgs) > 1:
            guessed = _guess_folder_source(imgs)
            src_name = src_name or guessed or BRATS2021.name
            src = get_source(src_name)
            mods = [_modality_of(p, src) for p in imgs]
            if all(mods) and sorted(mods) == sorted(MODALITIES):
                imgs = [imgs[mods.index(m)] for m in MODALITIES]
        else:
            src_name = src_name or MSD.name
        lab = entry.get("label")
        lab = _resolve(base, lab, json_path, f"{field}.label") if lab else None
        if require_labels and lab is None:
            raise UserError(f"{json_path}: {field}.label: expected a label path, missing")
        fold = entry.get("fold")
        if fold is not None and not isinstance(fold, int):
            raise UserError(f"{json_path}: {field}.fold: expected an integer, got {fold!r}")
        case_id = entry.get("case_id") or _case_id_from(imgs[0], len(imgs) > 1)
        records.append(CaseRecord(str(case_id), tuple(imgs), lab, get_source(src_name).name, fold))
    return sorted(records, key=lambda r: r.case_id)


def _case_id_from(path: Path, per_modality: bool) -> str:
    if per_modality and path.parent.name:
        return path.parent.name
    return strip_nifti_ext(path.name) or path.stem


def split_folds(records: Sequence[CaseRecord], fold: int) -> tuple[list, list]:
    """(train, val): train = records whose fold != ``fold``, val = fold ``fold``."""
    if any(r.fold is None for r in records):
        missing = next(r.case_id for r in records if r.fold is None)
        raise UserError(f"datalist: case {missing}: fold: expected an integer fold, missing")
    folds = sorted({r.fold for r in records})
    if fold not in folds:
        raise UserError(f"data.fold: expected one of {folds}, got {fold}")
    return [r for r in records if r.fold != fold], [r for r in records if r.fold == fold]


def read_nifti4d(path: str | Path, source: str = "brats2021") -> CaseRecord:
    """A single 4D NIfTI (prediction input) → a record without label.

    Channels are taken in canonical order (t1, t1ce, t2, flair) unless ``source`` is a
    4D-file source such as ``msd`` (FLAIR, T1w, T1gd, T2w).
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: input: expected a NIfTI file, not found")
    return CaseRecord(strip_nifti_ext(path.name) or path.stem, (path,), None, get_source(source).name)


def detect_source(path: str | Path) -> Detected:
    """Which layout ``path`` is (and its label source when the names tell)."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: data path: expected an existing file or folder, not found")
    if path.is_file():
        if path.name.lower().endswith(".json"):
            return Detected("datalist", None)
        if strip_nifti_ext(path.name) is not None:
            return Detected("nifti4d", None)
        raise UserError(f"{path}: data path: {_EXPECTED_FOLDER}")
    if (path / "dataset.json").is_file():
        return Detected("msd", MSD.name)
    if (path / "imagesTr").is_dir():
        raise UserError(f"{path}: dataset.json: expected the MSD dataset.json next to imagesTr/, not found")
    files = _nifti_files(path)
    if files:
        src = _guess_folder_source(files)
        if src is None:
            raise UserError(f"{path}: data folder: NIfTI files without BraTS names; {_EXPECTED_FOLDER}")
        return Detected("case", src)
    dirs = _case_dirs(path)
    if not dirs:
        raise UserError(f"{path}: data folder: no cases found; {_EXPECTED_FOLDER}")
    return Detected("brats_folder", _guess_folder_source(_nifti_files(dirs[0])))


def read_cases(
    path: str | Path,
    source: Optional[str] = None,
    require_labels: bool = False,
    key: str = "training",
    base_dir: str | Path | None = None,
) -> list[CaseRecord]:
    """Read any supported layout at ``path`` (see :func:`detect_source`) into records."""
    det = detect_source(path)
    if det.layout == "brats_folder":
        return read_brats_folder(path, source or det.source, require_labels)
    if det.layout == "case":
        return [read_case_folder(path, source or det.source, require_labels)]
    if det.layout == "msd":
        return read_msd(path, "training" if key == "training" else "test", require_labels)
    if det.layout == "datalist":
        return read_datalist(path, base_dir, key, source, require_labels)
    rec = read_nifti4d(path, source or "brats2021")
    if require_labels:
        raise UserError(f"{path}: label: a single 4D NIfTI has no label; expected labelled cases")
    return [rec]
