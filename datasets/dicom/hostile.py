"""DICOM variants of a valid MR image file for the hostile-input checks (:mod:`sigplex.core.hostile`).

An object without pixel data, one whose Rows x Columns declare far more than the input limit (the
pixels never written), pixel data cut in half, and a file whose header says CT.
"""
from __future__ import annotations

from pathlib import Path


def hostile_variants(sample: Path, folder: Path) -> list:
    """The variants of the DICOM file ``sample``, written below ``folder`` under its own name."""
    import pydicom

    from sigplex.core.hostile import HostileInput

    def write(name: str, change) -> HostileInput:
        ds = pydicom.dcmread(sample)
        too_large = change(ds)
        path = Path(folder) / f"dicom-{name}" / sample.name
        path.parent.mkdir(parents=True, exist_ok=True)
        ds.save_as(path, enforce_file_format=True)
        return HostileInput(f"dicom:{name}", path, too_large=bool(too_large))

    def no_pixels(ds):
        del ds.PixelData

    def huge(ds):  # refused for its size, or earlier for not matching its series' other files
        ds.Rows = ds.Columns = 65535

    def cut(ds):
        ds.PixelData = ds.PixelData[: len(ds.PixelData) // 2]

    def ct(ds):
        ds.Modality = "CT"

    return [write(name, change) for name, change in
            (("no-pixel-data", no_pixels), ("declares-over-limit", huge), ("pixel-data-cut", cut), ("modality-ct", ct))]
