"""Find and read EEG recordings with MNE: EDF/BDF/GDF/FIF/BrainVision/EEGLAB files or a BIDS root.

:func:`find_recordings` turns a file, a folder (searched recursively) or a BIDS root (a folder
with ``dataset_description.json``, read through mne-bids) into :class:`Recording` s, each with
its subject; :func:`load_raw` reads one as ``mne.io.Raw`` (preloaded). Subjects come from a
``sub-<label>`` entity in the file name, else from the first sub-folder under the root, else
from the file name itself.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sigplex.core.errors import UserError
from sigplex.core.limits import check_size

EXTENSIONS = (".edf", ".bdf", ".gdf", ".fif", ".fif.gz", ".vhdr", ".set")
_SUFFIXES = re.compile(r"(_raw|_eeg|_raw_sss|-raw|-eeg)$")


@dataclass
class Recording:
    """One recording file and the subject it belongs to (``bids_path`` set for BIDS datasets)."""

    path: Path
    subject: str
    bids_path: Any = None

    @property
    def name(self) -> str:
        return self.path.name


def _extension(path: Path) -> str:
    name = path.name.lower()
    return ".fif.gz" if name.endswith(".fif.gz") else path.suffix.lower()


def is_supported(path: Path) -> bool:
    return _extension(path) in EXTENSIONS


def subject_of(path: Path, root: Path | None = None) -> str:
    """The subject label of ``path``: ``sub-XX`` entity, else first folder under ``root``, else the stem."""
    m = re.search(r"sub-([A-Za-z0-9]+)", path.name)
    if m:
        return m.group(1)
    if root is not None and root.is_dir():
        rel = path.relative_to(root)
        if len(rel.parts) > 1:
            return rel.parts[0]
    stem = path.name[: -len(_extension(path))] if _extension(path) else path.stem
    return _SUFFIXES.sub("", stem)


def find_recordings(root: str | Path) -> list[Recording]:
    """Every readable recording under ``root`` (a file, a folder or a BIDS root), sorted by subject then path."""
    root = Path(root)
    if not root.exists():
        raise UserError(f"{root}: no such file or folder")
    if root.is_file():
        if not is_supported(root):
            raise UserError(f"{root}: unsupported file type; expected one of {', '.join(EXTENSIONS)}")
        return [Recording(root, subject_of(root))]
    if (root / "dataset_description.json").is_file():
        return _bids_recordings(root)
    files = sorted(p for p in root.rglob("*") if p.is_file() and is_supported(p) and not p.name.startswith("."))
    if not files:
        raise UserError(f"{root}: no EEG recordings found; expected files ending in {', '.join(EXTENSIONS)} "
                        "or a BIDS root with dataset_description.json")
    recs = [Recording(p, subject_of(p, root)) for p in files]
    return sorted(recs, key=lambda r: (r.subject, str(r.path)))


def _bids_recordings(root: Path) -> list[Recording]:
    try:
        from mne_bids import find_matching_paths
    except ImportError:
        raise UserError(f"{root}: is a BIDS dataset; reading it needs mne-bids: pip install 'sigplex[eeg]'") from None
    paths = find_matching_paths(root, datatypes="eeg", suffixes="eeg",
                                extensions=[".edf", ".bdf", ".vhdr", ".set", ".fif"])
    recs = [Recording(Path(bp.fpath), bp.subject, bids_path=bp) for bp in paths]
    if not recs:
        raise UserError(f"{root}: a BIDS root without EEG recordings (no sub-*/[ses-*/]eeg/*_eeg.* files)")
    return sorted(recs, key=lambda r: (r.subject, str(r.path)))


def read_raw(path: str | Path):
    """``mne.io.read_raw(path, preload=True)`` with a one-line error for a missing or unreadable file."""
    import mne

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    if not is_supported(path):
        raise UserError(f"{path}: unsupported file type; expected one of {', '.join(EXTENSIONS)}")
    try:
        raw = mne.io.read_raw(path, preload=False, verbose="error")
    except Exception as exc:
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise UserError(f"{path}: MNE cannot read it ({type(exc).__name__}: {first})") from None
    # the header's channels x samples, as float64, against the input limit before anything is loaded
    check_size(8 * len(raw.ch_names) * raw.n_times, path, f"{len(raw.ch_names)} channels x {raw.n_times} samples")
    try:
        return raw.load_data(verbose="error")
    except Exception as exc:
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise UserError(f"{path}: MNE cannot read its samples ({type(exc).__name__}: {first})") from None


def load_raw(recording: Recording):
    """Read a :class:`Recording` (through mne-bids when it is part of a BIDS dataset)."""
    if recording.bids_path is None:
        return read_raw(recording.path)
    from mne_bids import read_raw_bids

    try:
        raw = read_raw_bids(recording.bids_path, verbose="error")
        raw.load_data()
        return raw
    except Exception as exc:
        raise UserError(f"{recording.path}: mne-bids cannot read it ({type(exc).__name__}: {exc})") from None


__all__ = ["EXTENSIONS", "Recording", "find_recordings", "is_supported", "load_raw", "read_raw", "subject_of"]
