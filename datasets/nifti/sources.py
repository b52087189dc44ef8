"""Brain-tumour NIfTI sources: case records, modality orders and label maps per layout.

Every reader returns :class:`CaseRecord` objects whose image paths are in the canonical
modality order :data:`MODALITIES` = (t1, t1ce, t2, flair). Each :class:`Source` knows its
native label values and how they map to the three training channels TC / WT / ET (tumour
core, whole tumour, enhancing tumour). :func:`labels_to_channels` converts a native label
map to the channels; :func:`channels_to_labels` turns three sigmoid channels back into a
label map (BraTS 2021 values 0/1/2/4 by default).

Pure numpy; no nibabel or monai import here.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from sigplex.core.errors import UserError

#: Canonical modality order of every record and of the model's input channels.
MODALITIES: tuple[str, ...] = ("t1", "t1ce", "t2", "flair")
#: Names of the three training channels, in order.
CHANNELS: tuple[str, ...] = ("TC", "WT", "ET")
#: BraTS 2021 label values written by :func:`channels_to_labels` (default) and outputs.
BRATS_LABELS: tuple[int, ...] = (0, 1, 2, 4)


@dataclass(frozen=True)
class Source:
    """A data source's label map and modality naming.

    ``tc``/``wt``/``et`` are the native label values forming each channel; ``necrotic``,
    ``oedema`` and ``enhancing`` are the values written back by :func:`channels_to_labels`
    (``necrotic`` is the tumour-core-but-not-enhancing class). ``file_suffixes`` maps each
    canonical modality to its file-name suffix (one file per modality), and
    ``channel_order`` is, for sources storing all modalities in one 4D file, the index in
    that file of each canonical modality.
    """

    name: str
    labels: tuple[int, ...]
    tc: tuple[int, ...]
    wt: tuple[int, ...]
    et: tuple[int, ...]
    necrotic: int
    oedema: int
    enhancing: int
    file_suffixes: dict = field(default_factory=dict, hash=False)
    label_suffix: str = "seg"
    channel_order: Optional[tuple[int, ...]] = None


BRATS2021 = Source(
    name="brats2021",
    labels=(0, 1, 2, 4),
    tc=(1, 4), wt=(1, 2, 4), et=(4,),
    necrotic=1, oedema=2, enhancing=4,
    file_suffixes={"t1": "_t1", "t1ce": "_t1ce", "t2": "_t2", "flair": "_flair"},
    label_suffix="_seg",
)
BRATS2023 = Source(
    name="brats2023",
    labels=(0, 1, 2, 3),
    tc=(1, 3), wt=(1, 2, 3), et=(3,),
    necrotic=1, oedema=2, enhancing=3,
    file_suffixes={"t1": "-t1n", "t1ce": "-t1c", "t2": "-t2w", "flair": "-t2f"},
    label_suffix="-seg",
)
MSD = Source(
    name="msd",
    labels=(0, 1, 2, 3),
    tc=(2, 3), wt=(1, 2, 3), et=(3,),
    necrotic=2, oedema=1, enhancing=3,
    # Task01_BrainTumour 4D images hold FLAIR, T1w, T1gd, T2w: canonical t1 is index 1, ...
    channel_order=(1, 2, 3, 0),
)

SOURCES: dict[str, Source] = {s.name: s for s in (BRATS2021, BRATS2023, MSD)}
NIFTI_EXTENSIONS: tuple[str, ...] = (".nii.gz", ".nii")


@dataclass(frozen=True)
class CaseRecord:
    """One case: id, image paths in canonical order, label path (or None), source name.

    ``images`` holds four paths (one per modality) or one path to a 4D file whose channels
    are reordered with the source's ``channel_order`` (or taken as canonical when None).
    """

    case_id: str
    images: tuple[Path, ...]
    label: Optional[Path]
    source: str
    fold: Optional[int] = None

    def to_dict(self) -> dict:
        """The record as a MONAI data dict: ``image`` (list of str), ``label``, ``case_id``.

        ``label`` is left out when there is none, so that batches collate.
        """
        d = {"image": [str(p) for p in self.images], "case_id": self.case_id}
        if len(self.images) == 1:
            d["image"] = str(self.images[0])
        if self.label is not None:
            d["label"] = str(self.label)
        return d


def get_source(name: str | Source) -> Source:
    """The :class:`Source` called ``name`` (brats2021, brats2023, msd)."""
    if isinstance(name, Source):
        return name
    try:
        return SOURCES[str(name).lower()]
    except KeyError:
        raise UserError(
            f"data.source: expected one of {', '.join(SOURCES)}, got {name!r}"
        ) from None


def strip_nifti_ext(name: str) -> Optional[str]:
    """``name`` without its ``.nii.gz``/``.nii`` extension, or None if it is not NIfTI."""
    low = name.lower()
    for ext in NIFTI_EXTENSIONS:
        if low.endswith(ext):
            return name[: -len(ext)]
    return None


def check_label_values(seg: np.ndarray, source: str | Source, where: str = "label") -> None:
    """Raise a UserError naming ``where`` and the bad values if ``seg`` holds values
    outside the source's label set."""
    src = get_source(source)
    values = np.unique(np.asarray(seg))
    bad = [v for v in values.tolist() if v not in src.labels]
    if bad:
        shown = ", ".join(f"{v:g}" for v in bad[:10]) + (" ..." if len(bad) > 10 else "")
        raise UserError(
            f"{where}: label values: expected a subset of {list(src.labels)} for source "
            f"{src.name}, found {shown}"
        )


def labels_to_channels(seg: np.ndarray, source: str | Source, check: bool = True) -> np.ndarray:
    """Native label map (spatial, optionally with a leading channel of 1) → float32
    array ``(3, *spatial)`` with the TC, WT, ET masks."""
    src = get_source(source)
    seg = np.asarray(seg)
    if seg.ndim >= 4 and seg.shape[0] == 1:
        seg = seg[0]
    if check:
        check_label_values(seg, src)
    seg = np.rint(seg).astype(np.int64) if seg.dtype.kind == "f" else seg
    out = np.stack([np.isin(seg, vals) for vals in (src.tc, src.wt, src.et)])
    return out.astype(np.float32)


def channels_to_labels(
    channels, source: str | Source = "brats2021", threshold: float = 0.5
) -> np.ndarray:
    """Three sigmoid channels ``(3, *spatial)`` (TC, WT, ET) → uint8 label map.

    Standard rule: ET → enhancing (4 for BraTS 2021), TC without ET → necrotic (1),
    WT without TC → oedema (2), elsewhere 0. Values are written in the order WT, TC, ET so
    a voxel counts as its innermost region. ``source`` picks the label values written.
    Accepts numpy arrays or torch tensors (probabilities, compared with ``threshold``).
    """
    src = get_source(source)
    if hasattr(channels, "detach"):
        channels = channels.detach().cpu().numpy()
    ch = np.asarray(channels)
    if ch.ndim < 2 or ch.shape[0] != 3:
        raise UserError(
            f"prediction: shape: expected (3, *spatial) channels TC/WT/ET, got {tuple(ch.shape)}"
        )
    masks = ch > threshold
    out = np.zeros(ch.shape[1:], dtype=np.uint8)
    out[masks[1]] = src.oedema
    out[masks[0]] = src.necrotic
    out[masks[2]] = src.enhancing
    return out
