"""brain_seg on a real enhanced multi-frame MR study at full size: read, predict, write NIfTI + DICOM SEG.

The study is nibabel's packaged Philips Enhanced MR (``nibabel/nicom/tests/data/philips_mprage.dcm.gz``:
176 sagittal frames of 256 x 256, geometry in per-frame functional groups; pixels blanked in the package,
which does not change the work) arranged as four series, T1, T1 +C, T2 and FLAIR, as a site names them.
The model is brain_seg's default Swin UNETR (feature_size 24, untrained: the time does not depend on the
weights), 1 mm working grid, its default ROI and overlap, 2 threads; ``--quick`` works at 2 mm.
``ours_s`` is the whole prediction (``read_s`` series choice, reading and resampling; ``infer_s`` the
sliding-window model; ``write_s`` NIfTI, overlay PNG and SEG on the native grid); ``peer_s`` is a budget of
120 s for one study on this machine (ratio > 1: within it). Needs nibabel, pydicom and highdicom.
"""
from __future__ import annotations

import gzip
import tempfile
import time
from importlib.util import find_spec
from pathlib import Path

from benchmarks._timing import row

NAMES = {"t1": "T1W_3D_TFE", "t1ce": "T1W_3D_TFE +C", "t2": "T2W_3D_TSE", "flair": "T2W_3D_FLAIR"}
BUDGET_S = 120.0


def _study(folder: Path) -> Path:
    import io

    import pydicom

    from sigplex.datasets.dicom import write_series_copy

    spec = find_spec("nibabel")
    src = Path(list(spec.submodule_search_locations)[0]) / "nicom" / "tests" / "data" / "philips_mprage.dcm.gz"
    ds = pydicom.dcmread(io.BytesIO(gzip.decompress(src.read_bytes())))
    for number, (seq, name) in enumerate(NAMES.items(), start=2):
        write_series_copy(ds, folder / f"{number:02d}_{seq}" / "IM_0001.dcm", description=name, series_number=number)
    return folder


def run(quick: bool = False) -> list[dict]:
    import torch

    import sigplex.plugins.brain_seg.swin_unetr  # noqa: F401  (registers the model)
    from sigplex.core.config import resolve_config
    from sigplex.core.task import Prepared
    from sigplex.plugins.brain_seg.config import BrainSegConfig
    from sigplex.plugins.brain_seg.dicom_input import read_dicom_case
    from sigplex.plugins.brain_seg.inference import infer_volume
    from sigplex.plugins.brain_seg.native_space import to_native
    from sigplex.plugins.brain_seg.prediction import Prediction, write_files

    torch.set_num_threads(2)
    torch.manual_seed(0)
    spacing = [2.0] * 3 if quick else [1.0] * 3
    prep = Prepared(resolve_config(BrainSegConfig), state={"source": "brats2021", "spacing_mm": spacing})
    from sigplex.plugins.brain_seg.task import BrainSegTask

    model = BrainSegTask().build_model(prep.config).eval()
    d = prep.config.data
    with tempfile.TemporaryDirectory() as tmp:
        study = _study(Path(tmp) / "study")
        t0 = time.perf_counter()
        case = read_dicom_case(study, d, prep.state)
        t1 = time.perf_counter()
        with torch.no_grad():
            probs = infer_volume(model, case["image"], d)
        native = case["native"]
        labels = to_native(probs, case["grid_affine"], native.affine, native.array.shape, d.threshold)
        t2 = time.perf_counter()
        write_files(Prediction({"labels": labels, "reference": None, "native": native, "case_id": "study",
                                "image": native.array}), Path(tmp) / "out" / "study.nii.gz")
        t3 = time.perf_counter()
    return [row("brain_seg_enhanced_dicom", t3 - t0, f"budget {BUDGET_S:g} s", BUDGET_S,
                read_s=round(t1 - t0, 2), infer_s=round(t2 - t1, 2), write_s=round(t3 - t2, 2),
                grid=list(case["image"].shape[1:]), native=list(native.array.shape), spacing_mm=spacing[0],
                note="philips_mprage (nibabel wheel) as four series; default Swin UNETR, untrained")]
