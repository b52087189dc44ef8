"""Brain-tumour NIfTI data: readers of BraTS / MSD / datalist layouts, checks, label maps, phantoms.

Importing this package loads numpy only; nibabel is imported inside the functions that
open files. Public API:

* records: :class:`CaseRecord`, :data:`MODALITIES` (t1, t1ce, t2, flair), :class:`Source`,
  :func:`get_source`, :data:`SOURCES` (brats2021, brats2023, msd)
* readers: :func:`detect_source`, :func:`read_cases`, :func:`read_brats_folder`,
  :func:`read_case_folder`, :func:`read_msd`, :func:`read_datalist`, :func:`split_folds`,
  :func:`read_nifti4d`
* labels: :func:`labels_to_channels` (→ TC/WT/ET), :func:`channels_to_labels` (→ 0/1/2/4),
  :func:`check_label_values`
* checks: :func:`validate_case`, :func:`validate_cases`, :func:`load_nifti`, :func:`read_nifti_data`
* phantom: :func:`ensure_phantom_dataset`, :func:`generate_phantom_case`, :func:`cache_root`
"""
from sigplex.core.arrays import register_header_check

from .phantom import cache_root, ensure_phantom_dataset, generate_phantom_case, phantom_affine
from .readers import (
    Detected,
    detect_source,
    read_brats_folder,
    read_case_folder,
    read_cases,
    read_datalist,
    read_msd,
    read_nifti4d,
    split_folds,
)
from .sources import (
    BRATS_LABELS,
    CHANNELS,
    MODALITIES,
    SOURCES,
    CaseRecord,
    Source,
    channels_to_labels,
    check_label_values,
    get_source,
    labels_to_channels,
)
from .validate import load_nifti, read_nifti_data, validate_case, validate_cases

# a .nii.gz whose header declares a volume past the input limit is refused before the core inflates it
register_header_check((".nii", ".nii.gz"), load_nifti)

__all__ = [
    "BRATS_LABELS", "CHANNELS", "MODALITIES", "SOURCES", "CaseRecord", "Detected", "Source",
    "cache_root", "channels_to_labels", "check_label_values", "detect_source",
    "ensure_phantom_dataset", "generate_phantom_case", "get_source", "labels_to_channels",
    "load_nifti", "phantom_affine", "read_brats_folder", "read_case_folder", "read_cases",
    "read_datalist", "read_msd", "read_nifti4d", "read_nifti_data", "split_folds",
    "validate_case", "validate_cases",
]
