"""brain_seg results as a DICOM Segmentation (highdicom) that references the source series.

Three BINARY segments, overlapping as the regions are nested (ET inside TC inside WT), each
coded (category SCT 49755003 "Morphologically abnormal structure", anatomic region SCT
12738006 "Brain"):

* 1 ``TC`` tumour core (necrosis + enhancing + non-enhancing tumour): SCT 108369006 "Neoplasm"
  (DICOM CID 7159 Lesion Segmentation Type) - the tumour proper, without oedema;
* 2 ``WT`` whole tumour (tumour core + peritumoural oedema): SCT 52988006 "Lesion" (CID 7159) -
  the whole abnormal region, which is more than neoplasm;
* 3 ``ET`` enhancing tumour: NCIt C113842 "Enhancing Lesion" (CID 7168 Brain Lesion Segmentation
  Type With Necrosis, the DICOM group made for BraTS-style brain tumour components).

The frames follow the reference series' images (one per source image, or per source frame of a
multi-frame image), so viewers overlay the SEG on the series it was computed for. An enhanced
multi-frame source may keep its plane orientation and pixel measures per frame (Philips, Siemens XA)
or shared (GE); highdicom reads them from the shared groups only, so it is given the source header
as :func:`~sigplex.datasets.dicom.with_shared_geometry` lays it out (same values, same UIDs): the
SEG's frame ``f`` then has the position of source frame ``f`` and references it by number.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from sigplex.core.errors import UserError
from sigplex.core.fileio import atomic_path

SEGMENT_CODES = (
    ("TC", "tumour core (necrotic + enhancing + non-enhancing tumour)", ("108369006", "SCT", "Neoplasm")),
    ("WT", "whole tumour (tumour core + peritumoural oedema)", ("52988006", "SCT", "Lesion")),
    ("ET", "enhancing tumour", ("C113842", "NCIt", "Enhancing Lesion")),
)
CATEGORY = ("49755003", "SCT", "Morphologically abnormal structure")
BRAIN = ("12738006", "SCT", "Brain")


def segment_descriptions(version: str):
    import highdicom as hd
    from pydicom.sr.codedict import codes
    from pydicom.sr.coding import Code

    algorithm = hd.AlgorithmIdentificationSequence(name="sigplex brain_seg Swin UNETR",
                                                   family=codes.cid7162.ArtificialIntelligence, version=version)
    return [hd.seg.SegmentDescription(
        segment_number=i + 1, segment_label=label, segmented_property_category=Code(*CATEGORY),
        segmented_property_type=Code(*code), algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
        algorithm_identification=algorithm, anatomic_regions=[Code(*BRAIN)], tracking_id=f"{label}: {meaning}",
        tracking_uid=hd.UID()) for i, (label, meaning, code) in enumerate(SEGMENT_CODES)]


def write_dicom_seg(labels: np.ndarray, native, path: str | Path, version: str = "") -> Path:
    """Write BraTS ``labels`` (on the grid of ``native``, a :class:`~sigplex.datasets.dicom.Volume`) as a SEG."""
    import pydicom

    from sigplex.datasets.dicom import with_shared_geometry
    from sigplex.datasets.nifti import labels_to_channels

    masks = labels_to_channels(labels, "brats2021").astype(bool)  # [3, i, j, k]
    frames = np.transpose(masks, (3, 2, 1, 0))  # [k, rows (j), columns (i), segment]
    if len(set(native.files)) == 1 and len(native.files) > 1:  # one multi-frame image: its frame order
        sources = [with_shared_geometry(pydicom.dcmread(native.files[0], stop_before_pixels=True),
                                        str(native.files[0]))]
        ordered = np.zeros_like(frames)
        ordered[np.asarray(native.frames)] = frames
        frames = ordered
    else:
        sources = [pydicom.dcmread(f, stop_before_pixels=True) for f in native.files]
    try:
        seg = _segmentation(sources, frames, version)
    except (ValueError, TypeError, AttributeError, KeyError) as exc:  # highdicom refusing a source's attributes
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"{path}: cannot write the DICOM SEG for {native.files[0].parent} ({text})") from None
    path = Path(path)
    with atomic_path(path) as tmp:
        seg.save_as(tmp)
    return path


def _segmentation(sources, frames, version: str):
    import highdicom as hd

    return hd.seg.Segmentation(
        source_images=sources, pixel_array=frames, segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=segment_descriptions(version or "unknown"), series_instance_uid=hd.UID(),
        series_number=int(getattr(sources[0], "SeriesNumber", 0) or 0) + 1000, sop_instance_uid=hd.UID(),
        instance_number=1, manufacturer="sigplex", manufacturer_model_name="brain_seg Swin UNETR",
        software_versions=version or "unknown", device_serial_number="none", series_description="brain_seg TC/WT/ET",
        content_label="TUMOUR", content_description="Brain tumour regions TC, WT, ET (research use only)")
