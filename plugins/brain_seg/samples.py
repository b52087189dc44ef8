"""Valid inputs of ``predict`` for the core's self-checks (hostile-input variants are made from them)."""
from __future__ import annotations

from pathlib import Path


def write_samples(prepared, folder: Path) -> list[Path]:
    """A phantom case folder (the four modalities, no label) at the run's ROI size, and the same case as one
    4D NIfTI in the channel order of the run's label source."""
    import nibabel as nib
    import numpy as np

    from sigplex.datasets.nifti.phantom import generate_phantom_case, write_phantom_case
    from sigplex.datasets.nifti.sources import MODALITIES

    folder = Path(folder)
    case = generate_phantom_case(tuple(prepared.config.data.roi), seed=123)
    case_dir = write_phantom_case(case, folder, "Sample_00001")
    next(case_dir.glob("*_seg.nii.gz")).unlink()
    four_d = folder / "sample_4d.nii.gz"
    nib.save(nib.Nifti1Image(np.stack([case[m] for m in MODALITIES], -1), case["affine"]), str(four_d))
    return [case_dir, four_d]
