"""DICOM studies as volumes: find the files, group series, stack slices with their RAS affine, write test series.

Needs the ``dicom`` extra (``pip install 'sigplex[dicom]'``: pydicom, highdicom); importing this
package loads numpy only, pydicom is imported inside the functions that open files. Public API:

* files: :func:`is_dicom_file` (``DICM`` preamble), :func:`dicom_files`, :func:`is_study_folder`,
  :func:`require_dicom_extra` (a one-line error naming the extra when pydicom/highdicom are missing)
* series: :class:`Series`, :func:`scan_study` (headers only, grouped by SeriesInstanceUID)
* volumes: :class:`Volume`, :func:`read_volume` (classic or enhanced multi-frame, checked geometry)
* geometry: :func:`stack_affine`, :func:`slice_geometry`, :func:`lps_to_ras` (DICOM LPS -> NIfTI RAS),
  :func:`functional_group`, :func:`frame_geometry`, :func:`with_shared_geometry` (where a file keeps it)
* writers: :class:`Study`, :func:`write_series`, :func:`write_enhanced_series`, :func:`move_functional_groups`,
  :func:`write_series_copy`
"""
from .files import dicom_files, first_dicom_file, import_pydicom, is_dicom_file, is_study_folder, require_dicom_extra
from .geometry import (
    LPS_TO_RAS,
    frame_geometry,
    functional_group,
    lps_to_ras,
    slice_geometry,
    stack_affine,
    with_shared_geometry,
)
from .series import Series, scan_study
from .volume import Volume, read_volume
from .write import (
    ENHANCED_MR_IMAGE,
    MR_IMAGE,
    Study,
    move_functional_groups,
    write_enhanced_series,
    write_series,
    write_series_copy,
)

__all__ = [
    "ENHANCED_MR_IMAGE", "LPS_TO_RAS", "MR_IMAGE", "Series", "Study", "Volume", "dicom_files",
    "first_dicom_file", "frame_geometry", "functional_group", "import_pydicom", "is_dicom_file", "is_study_folder",
    "lps_to_ras", "move_functional_groups", "read_volume", "require_dicom_extra", "scan_study", "slice_geometry",
    "stack_affine", "with_shared_geometry", "write_enhanced_series", "write_series", "write_series_copy",
]
