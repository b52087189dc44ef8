"""Valid inputs of ``predict`` for the core's self-checks (hostile-input variants are made from them)."""
from __future__ import annotations

from pathlib import Path

#: series descriptions as a site names them (the default series rules pick each)
DESCRIPTIONS = {"t1": "AX T1 SE", "t1ce": "AX T1 POST GD", "t2": "AX T2 TSE", "flair": "AX T2 FLAIR"}


def write_samples(prepared, folder: Path) -> list[Path]:
    """A phantom case folder (the four modalities, no label) at the run's ROI size, the same case as one
    4D NIfTI in the order t1, t1ce, t2, flair, and as a DICOM study of four classic MR series."""
    import nibabel as nib
    import numpy as np

    from sigplex.datasets.dicom import Study, write_series
    from sigplex.datasets.nifti.phantom import generate_phantom_case, write_phantom_case
    from sigplex.datasets.nifti.sources import MODALITIES

    folder = Path(folder)
    case = generate_phantom_case(tuple(prepared.config.data.roi), seed=123)
    case_dir = write_phantom_case(case, folder, "Sample_00001")
    next(case_dir.glob("*_seg.nii.gz")).unlink()
    four_d = folder / "sample_4d.nii.gz"
    nib.save(nib.Nifti1Image(np.stack([case[m] for m in MODALITIES], -1), case["affine"]), str(four_d))
    study, dicom = Study(), folder / "sample_study"
    for number, modality in enumerate(MODALITIES, start=2):
        write_series(np.rint(case[modality]), case["affine"], dicom / f"{number:02d}_{modality}",
                     description=DESCRIPTIONS[modality], series_number=number, study=study)
    return [case_dir, four_d, dicom]


def format_variants(sample: Path, folder: Path) -> list:
    """Hostile variants of one input file by its format: DICOM (``.dcm``) or NIfTI."""
    from sigplex.datasets.dicom.hostile import hostile_variants as dicom_variants
    from sigplex.datasets.nifti.hostile import hostile_variants as nifti_variants

    return dicom_variants(sample, folder) if sample.name.lower().endswith(".dcm") else nifti_variants(sample, folder)
