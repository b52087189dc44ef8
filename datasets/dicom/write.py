"""Write a volume with a RAS affine as a DICOM MR series (classic or enhanced multi-frame), with pydicom.

Used to make test studies from NIfTI data (e.g. the brain phantom), to arrange one real scan as the
series of a study (:func:`write_series_copy`), and to check the reader's
affine against nibabel's conventions: ``read_volume(write_series(a, affine))`` gives back ``a`` and
``affine``. Values are stored as unsigned 16-bit integers with RescaleSlope/RescaleIntercept
(exact for integer data in 0..65535). The first two voxel axes must be orthogonal (DICOM rows and
columns are); the slice axis may be oblique to them (gantry tilt).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from .geometry import slice_geometry

MR_IMAGE = "1.2.840.10008.5.1.4.1.1.4"
ENHANCED_MR_IMAGE = "1.2.840.10008.5.1.4.1.1.4.1"
#: Where an enhanced multi-frame file keeps its functional groups: "shared" (every group that is the same
#: for all frames in SharedFunctionalGroupsSequence, as GE writes) or "per-frame" (every group in each
#: frame's item of PerFrameFunctionalGroupsSequence, as Philips and Siemens XA write).
LAYOUTS = ("shared", "per-frame")
#: Groups that are per frame by definition (PS3.3 C.7.6.16.2.2: Frame Content is never shared).
PER_FRAME_ONLY = ("FrameContentSequence",)


@dataclass
class Study:
    """Patient and study attributes shared by the series of one written study."""

    study_uid: str = field(default_factory=lambda: _uid())
    frame_of_reference_uid: str = field(default_factory=lambda: _uid())
    patient_id: str = "PHANTOM-0001"
    patient_name: str = "Phantom^Brain"
    study_id: str = "1"
    accession: str = ""
    date: str = "20240101"


def _uid() -> str:
    from pydicom.uid import generate_uid

    return generate_uid()


def _encode(array: np.ndarray) -> tuple[np.ndarray, float, float]:
    """``array`` as uint16 plus (slope, intercept) so that ``stored * slope + intercept`` gives it back."""
    a = np.asarray(array, dtype=np.float64)
    lo, hi = float(a.min()), float(a.max())
    if np.all(a == np.round(a)) and lo >= 0 and hi <= 65535:
        return a.astype(np.uint16), 1.0, 0.0
    slope = (hi - lo) / 65535 if hi > lo else 1.0
    return np.round((a - lo) / slope).astype(np.uint16), slope, lo


def _base(study: Study, sop_class: str, series_uid: str, description: str, protocol: str | None,
          series_number: int, shape_ij: tuple[int, int]):
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian

    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = sop_class
    ds.SOPClassUID = sop_class
    ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.PatientSex = (study.patient_name, study.patient_id, "",
                                                                        "O")
    ds.StudyInstanceUID, ds.StudyID, ds.AccessionNumber = study.study_uid, study.study_id, study.accession
    ds.StudyDate, ds.StudyTime, ds.ReferringPhysicianName = study.date, "120000", ""
    ds.SeriesInstanceUID, ds.SeriesNumber, ds.SeriesDescription = series_uid, series_number, description
    ds.ProtocolName = protocol if protocol is not None else description
    ds.Modality, ds.Manufacturer = "MR", "sigplex"
    ds.FrameOfReferenceUID, ds.PositionReferenceIndicator = study.frame_of_reference_uid, ""
    ds.SeriesDate, ds.SeriesTime = study.date, "120000"
    ds.ContentDate, ds.ContentTime = study.date, "120000"
    ds.Rows, ds.Columns = int(shape_ij[1]), int(shape_ij[0])  # rows run along j, columns along i
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    return ds


def _save(ds, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def write_series(array: np.ndarray, affine: np.ndarray, folder: str | Path, *, description: str,
                 protocol: str | None = None, series_number: int = 1, study: Study | None = None,
                 series_uid: str | None = None) -> list[Path]:
    """Write ``array[i, j, k]`` with RAS ``affine`` as a classic MR series, one file per slice, in ``folder``.

    Returns the files (``IM0001.dcm`` ...); slice ``k`` is file ``k``.
    """
    study, series_uid = study or Study(), series_uid or _uid()
    geometry = slice_geometry(affine)
    stored, slope, intercept = _encode(array)
    folder, files = Path(folder), []
    for k in range(array.shape[2]):
        ds = _base(study, MR_IMAGE, series_uid, description, protocol, series_number, array.shape[:2])
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = _uid()
        ds.InstanceNumber = k + 1
        ds.ImageType = ["ORIGINAL", "PRIMARY", "OTHER"]
        ds.ImageOrientationPatient = [round(v, 8) for v in geometry["orientation"]]
        ds.ImagePositionPatient = [round(v, 6) for v in geometry["position"](k)]
        ds.PixelSpacing = [round(v, 8) for v in geometry["spacing"]]
        ds.SliceThickness = round(geometry["slice_step"], 6)
        ds.SliceLocation = round(float(np.dot(geometry["position"](k), _normal(geometry))), 6)
        ds.RescaleSlope, ds.RescaleIntercept, ds.RescaleType = _ds(slope), _ds(intercept), "US"
        ds.PixelData = np.ascontiguousarray(stored[:, :, k].T).tobytes()
        files.append(_save(ds, folder / f"IM{k + 1:04d}.dcm"))
    return files


def _normal(geometry) -> np.ndarray:
    o = np.asarray(geometry["orientation"])
    return np.cross(o[:3], o[3:])


def move_functional_groups(ds, layout: str) -> None:
    """Rearrange the functional groups of the enhanced multi-frame header ``ds`` in place (see :data:`LAYOUTS`).

    ``"per-frame"`` copies each shared group into every frame's item and empties the shared item;
    ``"shared"`` moves each group whose value is the same in every frame into the shared item. Values are
    unchanged, only where they are kept: a reader must place every frame as before.
    """
    from copy import deepcopy

    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence as Seq

    if layout not in LAYOUTS:
        raise ValueError(f"layout: expected one of {', '.join(LAYOUTS)}, got {layout!r}")
    frames = ds.PerFrameFunctionalGroupsSequence
    if not ds.get("SharedFunctionalGroupsSequence"):
        ds.SharedFunctionalGroupsSequence = Seq([Dataset()])
    shared = ds.SharedFunctionalGroupsSequence[0]
    if layout == "per-frame":
        for element in list(shared):
            if element.VR == "SQ" and element.keyword:
                for item in frames:
                    if element.tag not in item:
                        item.add(deepcopy(element))
                del shared[element.tag]
        return
    first = frames[0]
    for element in list(first):
        if element.VR != "SQ" or not element.keyword or element.keyword in PER_FRAME_ONLY:
            continue
        if all(element.tag in item and item[element.tag].value == element.value for item in frames):
            shared.add(deepcopy(element))
            for item in frames:
                del item[element.tag]


def write_enhanced_series(array: np.ndarray, affine: np.ndarray, path: str | Path, *, description: str,
                          protocol: str | None = None, series_number: int = 1, study: Study | None = None,
                          series_uid: str | None = None, frame_order: Sequence[int] | None = None,
                          layout: str = "shared") -> Path:
    """Write ``array[i, j, k]`` with RAS ``affine`` as one Enhanced MR Image (multi-frame) file.

    ``frame_order[f]`` is the slice stored as frame ``f`` (default: in order), to test readers
    that must sort frames by position; ``layout`` says where the functional groups go (:data:`LAYOUTS`).
    """
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence as Seq

    study, series_uid = study or Study(), series_uid or _uid()
    geometry = slice_geometry(affine)
    stored, slope, intercept = _encode(array)
    n = array.shape[2]
    order = list(range(n)) if frame_order is None else [int(f) for f in frame_order]
    ds = _base(study, ENHANCED_MR_IMAGE, series_uid, description, protocol, series_number, array.shape[:2])
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = _uid()
    ds.InstanceNumber, ds.NumberOfFrames = 1, n
    ds.ImageType = ["ORIGINAL", "PRIMARY", "VOLUME", "NONE"]
    ds.ContentQualification, ds.ResonantNucleus, ds.MagneticFieldStrength = "RESEARCH", "1H", 3
    ds.AcquisitionDateTime = study.date + "120000"
    ds.BurnedInAnnotation, ds.LossyImageCompression = "NO", "00"
    ds.PresentationLUTShape = "IDENTITY"
    measures = Dataset()
    measures.PixelSpacing = [round(v, 8) for v in geometry["spacing"]]
    measures.SliceThickness = round(geometry["slice_step"], 6)
    plane = Dataset()
    plane.ImageOrientationPatient = [round(v, 8) for v in geometry["orientation"]]
    rescale = Dataset()
    rescale.RescaleSlope, rescale.RescaleIntercept, rescale.RescaleType = _ds(slope), _ds(intercept), "US"
    shared = Dataset()
    shared.PixelMeasuresSequence, shared.PlaneOrientationSequence = Seq([measures]), Seq([plane])
    shared.PixelValueTransformationSequence = Seq([rescale])
    ds.SharedFunctionalGroupsSequence = Seq([shared])
    dim_uid = _uid()
    organisation = Dataset()
    organisation.DimensionOrganizationUID = dim_uid
    ds.DimensionOrganizationSequence = Seq([organisation])
    index = Dataset()
    index.DimensionOrganizationUID = dim_uid
    index.DimensionIndexPointer = 0x00209057  # InStackPositionNumber
    index.FunctionalGroupPointer = 0x00209111  # FrameContentSequence
    ds.DimensionIndexSequence = Seq([index])
    per_frame = []
    for k in order:
        position = Dataset()
        position.ImagePositionPatient = [round(v, 6) for v in geometry["position"](k)]
        content = Dataset()
        content.StackID, content.InStackPositionNumber, content.DimensionIndexValues = "1", k + 1, [k + 1]
        item = Dataset()
        item.PlanePositionSequence, item.FrameContentSequence = Seq([position]), Seq([content])
        per_frame.append(item)
    ds.PerFrameFunctionalGroupsSequence = Seq(per_frame)
    move_functional_groups(ds, layout)
    ds.PixelData = np.ascontiguousarray(np.stack([stored[:, :, k].T for k in order])).tobytes()
    return _save(ds, Path(path))


def write_series_copy(source, path: str | Path, *, description: str, series_number: int,
                      pixel_data: np.ndarray | None = None) -> Path:
    """Write the dataset ``source`` (changed in place) to ``path`` as a new series of its study: new
    SeriesInstanceUID and SOPInstanceUID, ``description`` as SeriesDescription and ProtocolName, and
    ``pixel_data`` (stored values, frames in the file's order) when given. Study, frame of reference and
    geometry stay the source's: one real scan arranged as the several series of a study, for tests.
    """
    source.SeriesInstanceUID = _uid()
    source.SOPInstanceUID = source.file_meta.MediaStorageSOPInstanceUID = _uid()
    source.SeriesNumber, source.SeriesDescription, source.ProtocolName = series_number, description, description
    if pixel_data is not None:
        source.PixelData = np.ascontiguousarray(pixel_data, dtype=np.uint16).tobytes()
    return _save(source, Path(path))


def _ds(value: float):
    from pydicom.valuerep import DSfloat

    return DSfloat(float(value), auto_format=True)
