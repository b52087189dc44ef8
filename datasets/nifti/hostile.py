"""NIfTI variants of a valid volume for the hostile-input checks (:mod:`sigplex.core.hostile`).

A header declaring dimensions far past the input limit (its data never written), a ``.nii.gz`` bomb
(a real volume of zeros past the limit, a few hundred KB compressed), NaN and infinite voxels, an
all-zero volume, a 2D slice, and a volume of another shape than its neighbours.
"""
from __future__ import annotations

import gzip
from pathlib import Path


def hostile_variants(sample: Path, folder: Path) -> list:
    """The variants of the NIfTI file ``sample`` (``.nii`` or ``.nii.gz``), written below ``folder``."""
    import nibabel as nib
    import numpy as np

    from sigplex.core.hostile import HostileInput
    from sigplex.core.limits import max_input_bytes

    img = nib.load(str(sample))
    data = np.asarray(img.dataobj, dtype=np.float32)
    nan, inf = data.copy(), data.copy()
    nan[tuple(s // 2 for s in data.shape)] = np.nan
    inf.reshape(-1)[0] = np.inf
    arrays = {"nan": nan, "inf": inf, "all-zero": np.zeros_like(data), "2d-slice": data[..., data.shape[-1] // 2],
              "other-shape": data[: max(1, data.shape[0] // 2)]}
    found = []
    for name, array in arrays.items():
        path = Path(folder) / f"nifti-{name}" / sample.name
        path.parent.mkdir(parents=True, exist_ok=True)
        nib.save(nib.Nifti1Image(array, img.affine), str(path))
        found.append(HostileInput(f"nifti:{name}", path))
    side = round((2 * max_input_bytes() / 4) ** (1 / 3)) + 1  # a cube of float32 twice the limit
    header = nib.Nifti1Header()
    header.set_data_shape((side, side, side))
    header.set_data_dtype(np.float32)
    header.set_data_offset(352)
    huge = Path(folder) / "nifti-declares-over-limit" / sample.name
    huge.parent.mkdir(parents=True, exist_ok=True)
    head = header.binaryblock + b"\0" * (352 - len(header.binaryblock))  # the extension flag: none
    raw = head + b"\0" * 4096
    huge.write_bytes(gzip.compress(raw) if sample.name.lower().endswith(".gz") else raw)
    found.append(HostileInput("nifti:declares-over-limit", huge, too_large=True))
    bomb = Path(folder) / "nifti-gz-bomb" / (sample.name if sample.name.endswith(".gz") else sample.name + ".gz")
    bomb.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(bomb, "wb", compresslevel=9) as fh:
        fh.write(head)
        zero = bytes(1 << 20)
        for _ in range(side ** 3 * 4 // len(zero) + 1):
            fh.write(zero)
    found.append(HostileInput("nifti:gz-bomb", bomb, too_large=True))
    return found
