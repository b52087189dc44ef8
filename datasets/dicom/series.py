"""A study folder's image series: headers only (no pixel data), grouped by SeriesInstanceUID.

:func:`scan_study` reads every DICOM file's header once (``stop_before_pixels``) and returns one
:class:`Series` per SeriesInstanceUID that holds images (Rows/Columns present): classic series
(one file per slice) and enhanced multi-frame series (one file with NumberOfFrames). Series
without pixel data (structured reports, presentation states) are left out, as are DICOM SEG /
RT objects (Modality SEG, RTSTRUCT, RTDOSE...). Files of several studies in one folder are a
one-line error.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from sigplex.core.errors import UserError

from .files import dicom_files, import_pydicom

#: Modalities that are never source images.
NOT_IMAGES = ("SEG", "SR", "RTSTRUCT", "RTDOSE", "RTPLAN", "PR", "KO", "DOC", "REG")
_HEADER_TAGS = ["StudyInstanceUID", "SeriesInstanceUID", "SeriesNumber", "SeriesDescription", "ProtocolName",
                "Modality", "SOPClassUID", "SOPInstanceUID", "FrameOfReferenceUID", "Rows", "Columns",
                "NumberOfFrames", "ImageType"]


@dataclass
class Series:
    """One image series of a study (header facts only)."""

    uid: str
    number: int | None
    description: str
    protocol: str
    modality: str
    sop_class: str
    frame_of_reference: str
    study_uid: str
    image_type: tuple[str, ...] = ()
    files: list[Path] = field(default_factory=list)
    frames: int = 0  # slices: files of a classic series, NumberOfFrames of a multi-frame file

    @property
    def multiframe(self) -> bool:
        return len(self.files) == 1 and self.frames > 1

    def label(self) -> str:
        """How messages name the series: ``series 5 'AX T1 POST'``."""
        number = "?" if self.number is None else str(self.number)
        return f"series {number} '{self.description or self.protocol or self.uid}'"

    def as_dict(self) -> dict:
        """JSON facts for provenance records."""
        return {"series_instance_uid": self.uid, "series_number": self.number,
                "series_description": self.description, "protocol_name": self.protocol,
                "sop_class_uid": self.sop_class, "frame_of_reference_uid": self.frame_of_reference,
                "files": len(self.files), "slices": self.frames}


def _number(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def read_header(path: Path):
    """The header of one DICOM file (no pixel data); an unreadable file is a one-line UserError."""
    pydicom = import_pydicom()

    try:
        return pydicom.dcmread(path, stop_before_pixels=True, specific_tags=_HEADER_TAGS)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"{path}: not a readable DICOM file ({first})") from None


def scan_study(folder: str | Path) -> list[Series]:
    """Every image series below ``folder`` (one study), sorted by SeriesNumber then UID."""
    folder = Path(folder)
    files = dicom_files(folder)
    if not files:
        raise UserError(f"{folder}: no DICOM files found (expected files with the DICM preamble)")
    by_uid: dict[str, Series] = {}
    studies: set[str] = set()
    for path in files:
        ds = read_header(path)
        modality = str(getattr(ds, "Modality", "") or "").upper()
        if "Rows" not in ds or "Columns" not in ds or modality in NOT_IMAGES:
            continue
        uid = str(getattr(ds, "SeriesInstanceUID", "") or "")
        if not uid:
            raise UserError(f"{path}: DICOM image without SeriesInstanceUID")
        studies.add(str(getattr(ds, "StudyInstanceUID", "") or ""))
        series = by_uid.get(uid)
        if series is None:
            image_type = getattr(ds, "ImageType", ()) or ()
            image_type = (image_type,) if isinstance(image_type, str) else tuple(str(v) for v in image_type)
            series = by_uid[uid] = Series(
                uid=uid, number=_number(getattr(ds, "SeriesNumber", None)),
                description=str(getattr(ds, "SeriesDescription", "") or "").strip(),
                protocol=str(getattr(ds, "ProtocolName", "") or "").strip(), modality=modality,
                sop_class=str(getattr(ds, "SOPClassUID", "") or ""),
                frame_of_reference=str(getattr(ds, "FrameOfReferenceUID", "") or ""),
                study_uid=str(getattr(ds, "StudyInstanceUID", "") or ""), image_type=image_type)
        series.files.append(path)
        series.frames += int(getattr(ds, "NumberOfFrames", 1) or 1)
    if len(studies) > 1:
        raise UserError(f"{folder}: holds {len(studies)} studies (StudyInstanceUIDs differ); expected one study "
                        "folder per input")
    if not by_uid:
        raise UserError(f"{folder}: holds DICOM files but no image series")
    return sorted(by_uid.values(), key=lambda s: (s.number is None, s.number or 0, s.uid))
