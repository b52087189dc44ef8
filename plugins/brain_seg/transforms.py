"""MONAI dictionary transforms for brain-tumour segmentation (the Swin UNETR BraTS recipe).

``train_transforms(roi, source)``: load the four modalities as channels, convert the label
map to TC/WT/ET channels with the source's label map, optionally reorient to RAS, crop to
the head's foreground, channel-wise non-zero intensity normalisation, pad to the ROI if
needed, random ROI crop, random flips on the three axes, random intensity scale and shift.
``eval_transforms(source)``: the same without the random parts (whole volumes, for
sliding-window inference). Items are dicts ``{"image": (4, X, Y, Z) float32, "label":
(3, X, Y, Z) float32 (if the case has one), "case_id": str, "reference": str}``.

Errors inside the pipeline (unreadable file, modalities on different grids, label values
outside the source's set) surface as one-line :class:`UserError` naming the file.
"""
from __future__ import annotations

from typing import Hashable, Mapping, Sequence

import numpy as np
import torch
from monai.transforms import (
    Compose,
    CropForegroundd,
    EnsureTyped,
    LoadImaged,
    MapTransform,
    NormalizeIntensityd,
    Orientationd,
    RandFlipd,
    RandomizableTransform,
    RandScaleIntensityd,
    RandShiftIntensityd,
    RandSpatialCropd,
    SpatialPadd,
)

from sigplex.core.errors import UserError
from sigplex.datasets.nifti import CaseRecord, get_source, validate_case

KEYS = ("image", "label")


def find_user_error(exc: BaseException) -> UserError | None:
    """The first :class:`UserError` in ``exc``'s cause/context chain (MONAI wraps errors
    raised inside transforms in ``RuntimeError('applying transform ...')``)."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, UserError):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


class UserErrorCompose(Compose):
    """A MONAI ``Compose`` that re-raises a UserError from inside the chain unwrapped."""

    def __call__(self, input_, *args, **kwargs):
        try:
            return super().__call__(input_, *args, **kwargs)
        except UserError:
            raise
        except Exception as exc:
            user = find_user_error(exc)
            if user is not None:
                raise user from None
            raise


class LoadCased(MapTransform):
    """``LoadImaged`` (NIfTI, channel first) whose failures name the offending file.

    On a load error the case's files are checked one by one (existence, NIfTI header and
    data, shapes and affines across modalities) to report exactly which file is wrong.
    """

    def __init__(self, keys: Sequence[Hashable] = KEYS, source: str = "brats2021",
                 allow_missing_keys: bool = True):
        super().__init__(keys, allow_missing_keys)
        self.source = get_source(source).name
        self.loader = LoadImaged(keys, reader="NibabelReader", image_only=True,
                                 ensure_channel_first=True, allow_missing_keys=allow_missing_keys)

    def __call__(self, data: Mapping) -> dict:
        try:
            return self.loader(data)
        except UserError:
            raise
        except Exception as exc:
            images = data.get("image")
            images = [images] if isinstance(images, str) else list(images or [])
            rec = CaseRecord(str(data.get("case_id", "?")), tuple(images), data.get("label"),
                             self.source)
            validate_case(rec, level="full")  # raises a precise UserError if a file is bad
            raise UserError(
                f"{', '.join(map(str, images))}: case {rec.case_id}: image: could not be "
                f"loaded ({type(exc).__name__}: {exc})"
            ) from None


class ReorderChannelsd(MapTransform):
    """Reorder the channels of a 4D image (e.g. MSD's FLAIR, T1w, T1gd, T2w) to canonical."""

    def __init__(self, keys: Sequence[Hashable], order: Sequence[int]):
        super().__init__(keys)
        self.order = list(order)

    def __call__(self, data: Mapping) -> dict:
        d = dict(data)
        for key in self.key_iterator(d):
            img = d[key]
            if img.shape[0] != len(self.order):
                where = getattr(img, "meta", {}).get("filename_or_obj", key)
                raise UserError(
                    f"{where}: image channels: expected {len(self.order)} modalities, "
                    f"got shape {tuple(img.shape)} (channel first)"
                )
            d[key] = img[self.order]
        return d


class ConvertToTCWTETd(MapTransform):
    """Native label map ``(1, X, Y, Z)`` → float32 ``(3, X, Y, Z)`` TC/WT/ET channels.

    Uses the source's label map (BraTS 2021: TC {1,4}, WT {1,2,4}, ET {4}; BraTS 2023:
    ET is 3; MSD: TC {2,3}, WT {1,2,3}, ET {3}). Values outside the source's label set are
    a UserError naming the label file and the bad values.
    """

    def __init__(self, keys: Sequence[Hashable] = ("label",), source: str = "brats2021",
                 allow_missing_keys: bool = True):
        super().__init__(keys, allow_missing_keys)
        self.src = get_source(source)

    def __call__(self, data: Mapping) -> dict:
        d = dict(data)
        for key in self.key_iterator(d):
            orig = d[key]
            lab = orig.as_tensor() if hasattr(orig, "as_tensor") else torch.as_tensor(orig)
            if lab.ndim == 4 and lab.shape[0] == 1:
                lab = lab[0]
            values = torch.unique(lab).tolist()
            bad = [v for v in values if v not in self.src.labels]
            if bad:
                where = getattr(orig, "meta", {}).get("filename_or_obj", key)
                raise UserError(
                    f"{where}: label values: expected a subset of {list(self.src.labels)} for "
                    f"source {self.src.name}, found {', '.join(f'{v:g}' for v in bad[:10])}"
                )
            lab = lab.round().to(torch.int64)
            out = torch.stack(
                [torch.isin(lab, torch.tensor(v)) for v in (self.src.tc, self.src.wt, self.src.et)]
            ).to(torch.float32)
            if hasattr(orig, "meta"):
                from monai.data import MetaTensor

                out = MetaTensor(out, meta=dict(orig.meta),
                                 applied_operations=list(orig.applied_operations))
            d[key] = out
        return d


class RandModalityDropoutd(RandomizableTransform, MapTransform):
    """Zero whole image channels (modalities), each with probability ``prob``, never all of them.

    Trains a model to predict from any non-empty subset of the sequences; at prediction a
    missing sequence is then a zero channel (after normalisation, like here).
    """

    def __init__(self, keys: Sequence[Hashable] = ("image",), prob: float = 0.0):
        RandomizableTransform.__init__(self, prob=1.0)
        MapTransform.__init__(self, keys)
        self.p = float(prob)

    def __call__(self, data: Mapping) -> dict:
        d = dict(data)
        for key in self.key_iterator(d):
            img = d[key]
            drop = self.R.random_sample(img.shape[0]) < self.p
            if drop.all():
                drop[self.R.randint(img.shape[0])] = False
            if drop.any():
                img = img.clone()
                img[torch.as_tensor(drop)] = 0
            d[key] = img
        return d


def _roi(roi) -> tuple[int, int, int]:
    roi = (int(roi),) * 3 if np.isscalar(roi) else tuple(int(r) for r in roi)
    if len(roi) != 3 or min(roi) < 1:
        raise UserError(f"data.roi: expected three positive sizes, got {roi}")
    return roi


def _load_part(source: str, ras: bool) -> list:
    src = get_source(source)
    parts = [LoadCased(KEYS, src.name)]
    if src.channel_order is not None:
        parts.append(ReorderChannelsd(["image"], src.channel_order))
    if ras:
        parts.append(Orientationd(keys=list(KEYS), axcodes="RAS", allow_missing_keys=True))
    parts.append(ConvertToTCWTETd(["label"], src.name))
    return parts


def _normalise() -> NormalizeIntensityd:
    return NormalizeIntensityd(keys="image", nonzero=True, channel_wise=True)


def train_transforms(roi, source: str = "brats2021", ras: bool = False,
                     modality_dropout: float = 0.0) -> UserErrorCompose:
    """Random-crop training pipeline producing ``image (4, *roi)`` and ``label (3, *roi)``.

    Volumes smaller than ``roi`` (after cropping to the foreground) are zero-padded. With
    ``modality_dropout`` > 0 whole modalities are zeroed at random (never all four).
    """
    dropout = [RandModalityDropoutd(["image"], modality_dropout)] if modality_dropout > 0 else []
    roi = _roi(roi)
    keys = list(KEYS)
    return UserErrorCompose(
        _load_part(source, ras)
        + [
            CropForegroundd(keys=keys, source_key="image", allow_smaller=True,
                            start_coord_key=None, end_coord_key=None),
            _normalise(),
            SpatialPadd(keys=keys, spatial_size=roi),
            RandSpatialCropd(keys=keys, roi_size=roi, random_size=False),
            RandFlipd(keys=keys, prob=0.5, spatial_axis=0),
            RandFlipd(keys=keys, prob=0.5, spatial_axis=1),
            RandFlipd(keys=keys, prob=0.5, spatial_axis=2),
            RandScaleIntensityd(keys="image", factors=0.1, prob=1.0),
            RandShiftIntensityd(keys="image", offsets=0.1, prob=1.0),
            *dropout,
            EnsureTyped(keys=keys, dtype=torch.float32, track_meta=False),
        ],
        log_stats=False,
    )


def eval_transforms(source: str = "brats2021", ras: bool = False) -> UserErrorCompose:
    """Deterministic pipeline for validation/inference: whole volumes on the input grid
    (keep ``ras=False`` to write predictions on the input's grid); the label is optional."""
    return UserErrorCompose(
        _load_part(source, ras)
        + [
            _normalise(),
            EnsureTyped(keys=list(KEYS), dtype=torch.float32, track_meta=False,
                        allow_missing_keys=True),
        ],
        log_stats=False,
    )
