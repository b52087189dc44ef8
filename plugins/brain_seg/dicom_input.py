"""A DICOM study folder as one brain_seg input: choose the series, read them, put them on the model grid.

:func:`read_dicom_case` scans the study (headers only), applies the series rules
(``data.dicom_rules``), reads the chosen series as volumes, checks they share one
FrameOfReferenceUID, resamples them to the run's working spacing (1 mm for BraTS) in RAS, on a grid defined by the reference
sequence (``data.reference_sequence``) and normalises them like training data. A missing
sequence is zero-filled only for a model trained with ``data.modality_dropout > 0`` (the fitted
state says so); otherwise it is a one-line error naming what is missing. It prints one line
per sequence to stderr saying what it chose, and returns the same facts as ``provenance``.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

from sigplex.core.errors import UserError
from sigplex.datasets.dicom import read_volume, require_dicom_extra, scan_study
from sigplex.datasets.nifti import MODALITIES

from .native_space import model_grid, resample, run_spacing
from .series_rules import choose_series, describe_found, load_rules


def _missing(study: Path, chosen: dict, series: list, rules, dropout: float, reference: str) -> list[str]:
    missing = [seq for seq in MODALITIES if chosen[seq] is None]
    found = describe_found(series)
    if len(missing) == len(MODALITIES):
        raise UserError(f"{study}: missing all of t1, t1ce, t2, flair: no series fits the rules in {rules.path} "
                        f"(series found: {found})")
    if missing and dropout <= 0:
        raise UserError(f"{study}: missing {', '.join(missing)}: no series fits the rules in {rules.path} (series "
                        f"found: {found}); this model was trained without data.modality_dropout, so it needs all "
                        "four sequences")
    if reference in missing:
        present = [seq for seq in MODALITIES if chosen[seq] is not None]
        raise UserError(f"{study}: the reference sequence {reference} (data.reference_sequence) is missing; set "
                        f"data.reference_sequence to one of {', '.join(present)}")
    return missing


def _check_frame_of_reference(study: Path, chosen: dict) -> None:
    frames = {seq: s.frame_of_reference for seq, s in chosen.items() if s is not None}
    if any(not f for f in frames.values()) or len(set(frames.values())) > 1:
        listing = ", ".join(f"{seq} {chosen[seq].label()}: {frames[seq] or 'none'}" for seq in frames)
        raise UserError(f"{study}: the chosen series are not in one frame of reference (FrameOfReferenceUID {listing}); "
                        "registering them is out of scope")


def read_dicom_case(study, data, state: dict) -> dict:
    """One study -> ``{"image" [4, *grid], "grid_affine", "native" (reference Volume), "case_id", "provenance"}``."""
    from monai.transforms import NormalizeIntensity

    require_dicom_extra()
    study = Path(study)
    rules = load_rules(data.dicom_rules)
    series = scan_study(study)
    chosen = choose_series(study, series, rules)
    dropout = float(state.get("modality_dropout", 0.0) or 0.0)
    reference = data.reference_sequence
    missing = _missing(study, chosen, series, rules, dropout, reference)
    _check_frame_of_reference(study, chosen)
    volumes = {seq: read_volume(s) for seq, s in chosen.items() if s is not None}
    native = volumes[reference]
    spacing = run_spacing(state)
    ref_grid = model_grid(native.array, native.affine, spacing)
    grid_affine, shape = ref_grid.affine.numpy(), tuple(ref_grid.shape[1:])
    channels = []
    for seq in MODALITIES:
        if seq == reference:
            channels.append(ref_grid.as_tensor()[0])
        elif seq in volumes:
            channels.append(resample(volumes[seq].array, volumes[seq].affine, grid_affine, shape)[0])
        else:
            channels.append(torch.zeros(shape))
    image = NormalizeIntensity(nonzero=True, channel_wise=True)(torch.stack(channels))
    for seq in MODALITIES:
        s = chosen[seq]
        if s is None:
            print(f"brain_seg: {seq:<5} <- missing: zero-filled (model trained with data.modality_dropout={dropout:g})",
                  file=sys.stderr)
        else:
            sp = "x".join(f"{v:.3g}" for v in volumes[seq].spacing)
            print(f"brain_seg: {seq:<5} <- {s.label()} ({s.frames} slices, {sp} mm, {s.uid})"
                  + (" [reference grid]" if seq == reference else ""), file=sys.stderr)
    provenance = {"input": "dicom_study", "study_instance_uid": series[0].study_uid,
                  "rules": {"path": str(rules.path), "sha256": rules.sha256},
                  "series": {seq: (None if chosen[seq] is None else chosen[seq].as_dict()) for seq in MODALITIES},
                  "zero_filled": missing, "modality_dropout": dropout, "reference_sequence": reference,
                  "model_grid": {"shape": list(shape), "spacing_mm": list(spacing)},
                  "native_grid": {"shape": list(native.array.shape), "spacing_mm": [round(v, 4) for v in native.spacing]}}
    return {"image": torch.as_tensor(np.asarray(image), dtype=torch.float32), "grid_affine": grid_affine,
            "native": native, "case_id": study.name, "provenance": provenance}


def predict_study(model, study, prepared):
    """Labels for one DICOM study on the reference series' native grid, as a :class:`Prediction`."""
    from .inference import infer_volume
    from .native_space import to_native
    from .prediction import Prediction

    d = prepared.config.data
    case = read_dicom_case(study, d, prepared.state)
    probs = infer_volume(model, case["image"], d)
    native = case["native"]
    labels = to_native(probs, case["grid_affine"], native.affine, native.array.shape, d.threshold)
    return Prediction({"labels": labels, "reference": None, "native": native, "case_id": case["case_id"],
                       "image": native.array}, case["provenance"])
