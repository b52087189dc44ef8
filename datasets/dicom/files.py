"""Finding DICOM files: the ``DICM`` preamble test, a folder's DICOM files, and what a study folder is.

A file is DICOM when bytes 128-131 are ``DICM`` (the Part 10 preamble that every modern
export has; ``pydicom.misc.is_dicom`` applies the same test). ``DICOMDIR`` index files are
skipped. A *study folder* is a folder whose DICOM files (at any depth) belong to one study:
the first DICOM file found in the folder itself and in each of its subfolders all carry the same
StudyInstanceUID. A folder of several studies is therefore not one study (batch prediction
walks into it instead).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

PREAMBLE = 128
MAGIC = b"DICM"
#: Suffixes that are certainly not DICOM (skipped without opening them).
NOT_DICOM = (".nii", ".nii.gz", ".json", ".txt", ".csv", ".png", ".jpg", ".yaml", ".md", ".xml", ".html")


def is_dicom_file(path: str | Path) -> bool:
    """True if ``path`` is a DICOM Part 10 file (``DICM`` after the 128-byte preamble), not a DICOMDIR."""
    path = Path(path)
    name = path.name.lower()
    if name.startswith(".") or name == "dicomdir" or name.endswith(NOT_DICOM):
        return False
    try:
        with open(path, "rb") as fh:
            fh.seek(PREAMBLE)
            return fh.read(4) == MAGIC
    except OSError:
        return False


def _walk_files(folder: Path) -> Iterator[Path]:
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            yield Path(root) / name


def dicom_files(folder: str | Path) -> list[Path]:
    """Every DICOM file below ``folder`` (recursively, sorted; hidden files and DICOMDIR skipped)."""
    return [p for p in _walk_files(Path(folder)) if p.is_file() and is_dicom_file(p)]


def first_dicom_file(folder: str | Path) -> Path | None:
    """The first DICOM file below ``folder`` in sorted walk order (None if there is none)."""
    for p in _walk_files(Path(folder)):
        if p.is_file() and is_dicom_file(p):
            return p
    return None


INSTALL = "pip install 'sigplex[dicom]'"


def import_pydicom():
    """The pydicom module, or a one-line UserError naming the extra that provides it."""
    try:
        import pydicom
    except ImportError:
        from sigplex.core.errors import UserError

        raise UserError(f"DICOM input needs pydicom and highdicom: {INSTALL}") from None
    return pydicom


def require_dicom_extra() -> None:
    """A one-line UserError unless pydicom and highdicom are importable."""
    from importlib.util import find_spec

    missing = [m for m in ("pydicom", "highdicom") if find_spec(m) is None]
    if missing:
        from sigplex.core.errors import UserError

        raise UserError(f"DICOM input needs {' and '.join(missing)}: {INSTALL}")


def _study_uid(path: Path) -> str | None:
    try:
        import pydicom
    except ImportError:
        return "unknown (pydicom missing)"  # still a DICOM folder: reading it says what to install
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["StudyInstanceUID"])
    except Exception:
        return None
    return str(getattr(ds, "StudyInstanceUID", "")) or None


def is_study_folder(folder: str | Path) -> bool:
    """True if ``folder`` holds DICOM files of exactly one study (see the module docstring)."""
    folder = Path(folder)
    if not folder.is_dir():
        return False
    probes = []
    try:
        entries = sorted(folder.iterdir())
    except OSError:
        return False
    here = next((p for p in entries if p.is_file() and is_dicom_file(p)), None)
    if here is not None:
        probes.append(here)
    for sub in entries:
        if sub.is_dir() and not sub.name.startswith("."):
            found = first_dicom_file(sub)
            if found is not None:
                probes.append(found)
    if not probes:
        return False
    uids = {_study_uid(p) for p in probes}
    return len(uids) == 1 and None not in uids
