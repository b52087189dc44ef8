"""What brain_seg's predict returns and the files it becomes.

:class:`Prediction` is a dict (``labels``, ``reference``/``affine``, ``case_id``, ``image`` and,
for DICOM studies, ``native``) with a ``provenance`` attribute: the choices made on the input
(which series, what was zero-filled), which the core's batch writer copies into every output's
sidecar under ``"choices"``. :func:`output_paths` names the files of one output and
:func:`write_files` writes them: the NIfTI label map, the overlay PNG and, for a DICOM study,
a DICOM SEG ``<stem>.seg.dcm`` next to the NIfTI. The SEG is written last: when it cannot be made,
the NIfTI and PNG are kept and :class:`~sigplex.core.errors.PartialOutput` says so (batch
prediction records the study as ``partial`` and a re-run retries it).
"""
from __future__ import annotations

from pathlib import Path

from sigplex.core.errors import PartialOutput, UserError

SEG_SUFFIX = ".seg.dcm"


class Prediction(dict):
    """A prediction's fields plus ``provenance`` (a JSON dict of the choices made on the input)."""

    def __init__(self, fields: dict, provenance: dict | None = None):
        super().__init__(fields)
        self.provenance = dict(provenance or {})


def _stem(output: Path) -> str:
    return output.name.split(".nii")[0]


def output_paths(output, source=None) -> list[Path]:
    """NIfTI, overlay PNG and, for a DICOM study ``source``, the SEG.

    The core passes the input as ``source``; without one (a caller that does not know it) the
    SEG is listed when it already exists, so the overwrite check still covers it.
    """
    from sigplex.datasets.dicom import is_study_folder

    output = Path(output)
    files = [output, output.with_name(_stem(output) + "_overlay.png")]
    seg = output.with_name(_stem(output) + SEG_SUFFIX)
    if (is_study_folder(source) if source is not None else seg.exists()):
        files.append(seg)
    return files


def software_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"sigplex {version('sigplex')}"
    except PackageNotFoundError:
        return "sigplex"


def write_files(prediction: dict, output) -> list[Path]:
    """Write ``prediction`` as NIfTI + overlay PNG (+ DICOM SEG for a study); return the paths written."""
    from .outputs import write_label_nifti, write_label_nifti_affine, write_overlay_png

    output = Path(output)
    nifti, png, seg = output, *output_paths(output)[1:2], output.with_name(_stem(output) + SEG_SUFFIX)
    labels = prediction["labels"]
    if prediction.get("native") is not None:  # a DICOM study: the reference series' native grid
        from .dicom_seg import write_dicom_seg

        written = [write_label_nifti_affine(labels, prediction["native"].affine, nifti),
                   write_overlay_png(prediction["image"], labels, png)]
        try:
            return [*written, write_dicom_seg(labels, prediction["native"], seg, software_version())]
        except Exception as exc:  # any SEG failure keeps the NIfTI: the study is partial, not lost
            text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            reason = str(exc) if isinstance(exc, UserError) else \
                f"{seg}: cannot write the DICOM SEG ({type(exc).__name__}: {text})"
            raise PartialOutput(reason, written) from exc
    if prediction.get("reference") is None:
        raise UserError("an in-memory prediction has no reference image to copy the grid from; "
                        "save prediction['labels'] yourself or predict from a file")
    return [write_label_nifti(labels, prediction["reference"], nifti, overwrite=True),
            write_overlay_png(prediction["image"], labels, png)]
