"""Readers of separation data layouts: mixture/source folders, LibriMix CSVs, WSJ0-2mix scp lists.

Each reader returns a list of :class:`Example` (an id, a mixture path or None, and one path per
source); :func:`discover_splits` finds train / val / test under a ``--data`` folder:

- **folder**: ``mix/`` (or ``mix_clean``, ``mix_both``, ``mix_single``) and ``s1/``, ``s2/``, ...
  holding files of the same names (the LibriMix and wsj0-2mix folder layout);
- **LibriMix CSV**: ``mixture_ID, mixture_path, source_1_path, source_2_path[, ...]`` (the
  metadata files LibriMix writes; relative paths are taken from the CSV's folder);
- **WSJ0-2mix scp**: ``mix.scp``, ``s1.scp``, ``s2.scp`` with lines ``utterance_id path``.

Splits are subfolders (``train``/``tr``/``train-100``/``train-360``, ``val``/``cv``/``dev``,
``test``/``tt``) in any of these layouts, or LibriMix CSVs whose names contain train/dev/test.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from sigplex.core.errors import UserError

AUDIO_EXT = (".wav", ".flac")
MIX_DIRS = ("mix", "mix_clean", "mix_both", "mix_single")
SPLIT_NAMES = {"train": ("train", "tr", "train-100", "train-360"), "val": ("val", "cv", "dev", "valid"),
               "test": ("test", "tt")}


@dataclass(frozen=True)
class Example:
    """One separation example: its id, the mixture file (None: sum the sources) and the source files."""

    id: str
    mixture: Path | None
    sources: tuple[Path, ...]


def _audio_files(folder: Path) -> dict[str, Path]:
    return {p.name: p for p in sorted(folder.iterdir()) if p.suffix.lower() in AUDIO_EXT}


def source_dirs(root: Path) -> list[Path]:
    """``s1/, s2/, ...`` under ``root`` in order."""
    out, k = [], 1
    while (root / f"s{k}").is_dir():
        out.append(root / f"s{k}")
        k += 1
    return out


def read_folder(root: str | Path, num_spks: int | None = None) -> list[Example]:
    """Examples of the folder layout: ``mix*/NAME`` with ``s1/NAME``, ``s2/NAME``, ..."""
    root = Path(root)
    srcs = source_dirs(root)
    if not srcs:
        raise UserError(f"{root}: no s1/ folder; expected the folder layout mix/ + s1/, s2/, ... of WAV files")
    if num_spks is not None and len(srcs) < num_spks:
        raise UserError(f"{root}: has {len(srcs)} source folders (s1/...); expected {num_spks} for "
                        f"model.num_spks={num_spks}")
    srcs = srcs[:num_spks] if num_spks else srcs
    mix_dir = next((root / m for m in MIX_DIRS if (root / m).is_dir()), None)
    names = _audio_files(mix_dir) if mix_dir is not None else _audio_files(srcs[0])
    if not names:
        where = mix_dir if mix_dir is not None else srcs[0]
        raise UserError(f"{where}: holds no .wav or .flac files; expected one file per mixture")
    examples = []
    for name, mix_path in names.items():
        paths = []
        for d in srcs:
            p = d / name
            if not p.is_file():
                raise UserError(f"{p}: {d.name}: file missing; expected a source file for every mixture "
                                f"({mix_path if mix_dir is not None else name})")
            paths.append(p)
        examples.append(Example(Path(name).stem, mix_path if mix_dir is not None else None, tuple(paths)))
    return examples


def read_librimix_csv(path: str | Path, num_spks: int | None = None) -> list[Example]:
    """Examples of a LibriMix metadata CSV (``mixture_ID, mixture_path, source_1_path, ...``)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: LibriMix CSV not found")
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        cols = reader.fieldnames or []
        n_src = sum(1 for c in cols if c.startswith("source_") and c.endswith("_path"))
        need = ["mixture_path", "source_1_path"] + ([f"source_{k}_path" for k in range(2, (num_spks or 2) + 1)])
        missing = [c for c in need if c not in cols]
        if missing:
            raise UserError(f"{path}: columns: missing {', '.join(missing)}; expected LibriMix metadata "
                            "(mixture_ID, mixture_path, source_1_path, source_2_path, ...)")
        n = num_spks or n_src
        base = path.parent
        examples = []
        for i, row in enumerate(reader):
            def resolve(v, key, line=i + 2):
                if not v:
                    raise UserError(f"{path}: line {line}: {key} is empty; expected an audio file path")
                p = Path(v)
                return p if p.is_absolute() else base / p
            examples.append(Example(row.get("mixture_ID") or f"row{i}", resolve(row["mixture_path"], "mixture_path"),
                                    tuple(resolve(row[f"source_{k}_path"], f"source_{k}_path")
                                          for k in range(1, n + 1))))
    if not examples:
        raise UserError(f"{path}: holds no rows; expected one row per mixture")
    return examples


def _read_scp(path: Path) -> dict[str, Path]:
    out = {}
    for i, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split(maxsplit=1)
        if len(parts) != 2:
            raise UserError(f"{path}: line {i}: expected 'utterance_id path', got {line!r}")
        p = Path(parts[1].strip())
        out[parts[0]] = p if p.is_absolute() else path.parent / p
    return out


def read_wsj0_scp(folder: str | Path, num_spks: int | None = None) -> list[Example]:
    """Examples of WSJ0-2mix scp lists: ``mix.scp`` + ``s1.scp``, ``s2.scp`` (``id path`` lines)."""
    folder = Path(folder)
    mix_scp = folder / "mix.scp"
    if not mix_scp.is_file():
        raise UserError(f"{mix_scp}: not found; expected WSJ0-2mix lists mix.scp, s1.scp, s2.scp")
    mix = _read_scp(mix_scp)
    srcs, k = [], 1
    while (folder / f"s{k}.scp").is_file() and (num_spks is None or k <= num_spks):
        srcs.append(_read_scp(folder / f"s{k}.scp"))
        k += 1
    if len(srcs) < (num_spks or 2):
        raise UserError(f"{folder}: has {len(srcs)} source lists (s1.scp, ...); expected {num_spks or 2}")
    examples = []
    for uid, mpath in mix.items():
        for j, s in enumerate(srcs, 1):
            if uid not in s:
                raise UserError(f"{folder / f's{j}.scp'}: utterance {uid!r} missing; expected every id of mix.scp")
        examples.append(Example(uid, mpath, tuple(s[uid] for s in srcs)))
    if not examples:
        raise UserError(f"{mix_scp}: holds no utterances")
    return examples


def read_split(path: str | Path, num_spks: int | None = None) -> list[Example]:
    """Examples of one split in whichever layout ``path`` has (CSV file, scp folder or folder layout)."""
    path = Path(path)
    if path.is_file() and path.suffix.lower() == ".csv":
        return read_librimix_csv(path, num_spks)
    if path.is_dir() and (path / "mix.scp").is_file():
        return read_wsj0_scp(path, num_spks)
    if path.is_dir():
        return read_folder(path, num_spks)
    raise UserError(f"{path}: expected a LibriMix CSV, a folder with mix.scp, or a folder with mix/ and s1/, s2/")


def read_speaker_folders(root: str | Path) -> dict[str, list[Path]]:
    """``{speaker: [files]}`` of a folder of speaker folders: ``root/SPEAKER/**/*.wav|flac`` (the
    LibriSpeech / VCTK layout of single-talker recordings), for dynamic mixing. Errors name ``root``."""
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"{root}: no such folder; expected a folder of speaker folders of WAV/FLAC files")
    out = {d.name: sorted(p for p in d.rglob("*") if p.suffix.lower() in AUDIO_EXT)
           for d in sorted(root.iterdir()) if d.is_dir()}
    out = {k: v for k, v in out.items() if v}
    if not out:
        raise UserError(f"{root}: holds no speaker folder with WAV/FLAC files; expected root/SPEAKER/*.wav")
    return out


def discover_splits(path: str | Path, num_spks: int | None = None) -> dict[str, list[Example]]:
    """``{"train", "val", "test"}`` -> examples under ``path`` (missing splits are absent)."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"--data {path}: no such file or folder")
    if path.is_file():
        return {"train": read_split(path, num_spks)}
    found: dict[str, list[Example]] = {}
    for split, names in SPLIT_NAMES.items():
        for name in names:
            if (path / name).is_dir():
                found.setdefault(split, []).extend(read_split(path / name, num_spks))
        if split not in found:
            csvs = sorted(p for p in path.glob("*.csv") if any(n in p.stem.lower() for n in names if len(n) > 2))
            for c in csvs:
                found.setdefault(split, []).extend(read_librimix_csv(c, num_spks))
    if not found:
        found["train"] = read_split(path, num_spks)
    if "train" not in found:
        raise UserError(f"--data {path}: no training split; expected train/ (or tr/), a *train*.csv, or the "
                        "folder layout mix/ + s1/, s2/ itself")
    return found


__all__ = ["Example", "discover_splits", "read_folder", "read_librimix_csv", "read_split", "read_wsj0_scp",
           "source_dirs"]
