"""brain_seg on real enhanced multi-frame MR: study -> predict -> NIfTI + DICOM SEG, and a SEG failure that loses nothing.

The real file is ``philips_mprage.dcm.gz`` from nibabel's wheel (also in Debian's python3-nibabel): a Philips
Enhanced MR Image with every functional group per frame (pixel measures, plane orientation and position
in each frame's item), 176 sagittal frames of 256 x 256. Its pixels are blanked in the package, so each
series' frames are filled with the brain phantom sampled at the frames' real positions; the header
(geometry, functional groups, UIDs) is the file's. No GE enhanced MR ships in a package here, so GE's
layout (groups that are the same for all frames in SharedFunctionalGroupsSequence) is a stand-in: the
Philips file with those groups moved to the shared item (``move_functional_groups(ds, "shared")``).
The model is the tiny untrained Swin UNETR of test_dicom.py, at a 6 mm working spacing so that the
volume is one window; the full-size time is ``python -m benchmarks brain_seg_enhanced_dicom``.
"""
from __future__ import annotations

import json
from copy import deepcopy
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from helpers import read_packaged

pytest.importorskip("monai")
pytest.importorskip("scipy")
pydicom = pytest.importorskip("pydicom")
hd = pytest.importorskip("highdicom")
nib = pytest.importorskip("nibabel")

from sigplex.core.config import resolve_config
from sigplex.core.errors import PartialOutput, UserError
from sigplex.core.task import Prepared
from sigplex.datasets.dicom import move_functional_groups, read_volume, scan_study
from sigplex.datasets.nifti import labels_to_channels
from sigplex.plugins.brain_seg.config import BrainSegConfig

TINY = ["data.roi=[64,64,64]", "model.depths=[1,1,1,1]", "model.num_heads=[3,3,3,3]", "data.sw_batch_size=1"]
LAYOUTS = {"philips-per-frame": ("philips", None), "ge-shared-stand-in": ("ge", "shared")}


@pytest.fixture(scope="module")
def task_and_model():
    import sigplex.plugins.brain_seg.swin_unetr  # noqa: F401  (registers the model)
    from sigplex.plugins.brain_seg.task import BrainSegTask

    task = BrainSegTask()
    prep = Prepared(resolve_config(BrainSegConfig, overrides=TINY),
                    state={"source": "brats2021", "modality_dropout": 0.0, "spacing_mm": [6.0, 6.0, 6.0]})
    torch.manual_seed(0)
    return task, task.build_model(prep.config).eval(), prep


@pytest.fixture(scope="module")
def philips():
    return read_packaged("philips_mprage")


@pytest.fixture(scope="module", params=list(LAYOUTS))
def real_study(request, philips, tmp_path_factory, dcm):
    """The Philips file (as shipped, or as the GE-layout stand-in) arranged as a four-series study."""
    vendor, layout = LAYOUTS[request.param]
    ds = deepcopy(philips)
    if layout:
        move_functional_groups(ds, layout)
    root = tmp_path_factory.mktemp(request.param)
    (root / "probe" / "s").mkdir(parents=True)
    ds.save_as(root / "probe" / "s" / "mf.dcm", enforce_file_format=True)
    native = read_volume(scan_study(root / "probe")[0])  # the frames' grid, to fill them with the phantom
    case = dcm.phantom_in(native.array.shape, native.affine)
    fill = {}
    for seq in ("t1", "t1ce", "t2", "flair"):
        vol = np.rint(dcm.on_native(case[seq], case["affine"], native.affine, native.array.shape))
        frames = np.empty((len(native.frames), *vol.shape[1::-1]), np.uint16)
        frames[np.asarray(native.frames)] = np.moveaxis(vol, 2, 0).transpose(0, 2, 1)
        fill[seq] = frames
    paths = dcm.arrange_study(ds, root / "study", dcm.site_names[vendor], fill)
    return SimpleNamespace(folder=root / "study", paths=paths, case=case, layout=request.param, source=ds)


def seg_matches_source(seg_path, source_path, labels, native, positions):
    """The SEG, read back by highdicom, has source frame f's position and the labels of f, for every frame."""
    seg = hd.seg.segread(seg_path)
    src = pydicom.dcmread(source_path, stop_before_pixels=True)
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == src.SeriesInstanceUID
    assert seg.FrameOfReferenceUID == src.FrameOfReferenceUID and seg.StudyInstanceUID == src.StudyInstanceUID
    measures = seg.SharedFunctionalGroupsSequence[0].PixelMeasuresSequence[0]
    np.testing.assert_allclose([float(v) for v in measures.PixelSpacing], native.spacing[1::-1], atol=1e-4)
    masks = labels_to_channels(labels, "brats2021").astype(bool)  # [segment, i, j, k]
    k_of = {f: k for k, f in enumerate(native.frames)}
    seen = set()
    for item, pixels in zip(seg.PerFrameFunctionalGroupsSequence, seg.pixel_array.reshape(-1, *labels.shape[1::-1])):
        ref = item.DerivationImageSequence[0].SourceImageSequence[0]
        assert ref.ReferencedSOPInstanceUID == src.SOPInstanceUID
        f, s = int(ref.ReferencedFrameNumber) - 1, int(item.SegmentIdentificationSequence[0].ReferencedSegmentNumber)
        np.testing.assert_allclose([float(v) for v in item.PlanePositionSequence[0].ImagePositionPatient],
                                   positions[f], atol=1e-3)
        np.testing.assert_array_equal(pixels.astype(bool), masks[s - 1][:, :, k_of[f]].T)
        seen.add((f, s))
    expected = {(f, s + 1) for s in range(3) for k, f in enumerate(native.frames) if masks[s][:, :, k].any()}
    assert expected <= seen  # every non-empty (frame, segment); highdicom may keep empty ones too
    if expected:  # highdicom's own look-up by source frame number agrees
        f = min(f for f, _ in expected)
        got = seg.get_pixels_by_source_frame(src.SOPInstanceUID, [f + 1], combine_segments=False)
        np.testing.assert_array_equal(got[0].astype(bool), np.moveaxis(masks[:, :, :, k_of[f]], 0, -1).transpose(1, 0, 2))
    return seg


def test_real_enhanced_frames_read_and_a_seg_lands_on_each_source_frame(real_study, tmp_path, dcm):
    """Both layouts: the reference series reads with the frames' real geometry, and the phantom's labels
    (non-empty, asymmetric) written as a SEG land on the source frames they were computed for."""
    from sigplex.plugins.brain_seg.dicom_seg import write_dicom_seg

    shared = real_study.source.SharedFunctionalGroupsSequence[0]
    per_frame = real_study.source.PerFrameFunctionalGroupsSequence[0]
    where = shared if real_study.layout == "ge-shared-stand-in" else per_frame
    assert "PixelMeasuresSequence" in where and "PlaneOrientationSequence" in where  # the layout under test
    native = read_volume(next(s for s in scan_study(real_study.folder) if s.description.endswith("+C")
                              or "POST" in s.description))
    assert native.array.shape == (256, 256, 176) and native.files[0] == real_study.paths["t1ce"]
    positions = dcm.frame_positions(real_study.source)
    # voxel (0, 0, k) is where source frame native.frames[k] is (ImagePositionPatient, LPS -> RAS)
    corners = np.column_stack([np.zeros((176, 2)), np.arange(176), np.ones(176)]) @ native.affine.T
    np.testing.assert_allclose(corners[:, :3] * [-1, -1, 1], positions[np.asarray(native.frames)], atol=1e-3)
    truth = np.rint(dcm.on_native(real_study.case["seg"], real_study.case["affine"], native.affine,
                                  native.array.shape, order=0)).astype(np.uint8)
    assert (truth == 4).sum() > 100
    seg = seg_matches_source(write_dicom_seg(truth, native, tmp_path / "truth.seg.dcm", "test"),
                             real_study.paths["t1ce"], truth, native, positions)
    assert seg.NumberOfFrames >= len({k for k in range(176) if truth[:, :, k].any()})


@pytest.mark.parametrize("real_study", ["philips-per-frame"], indirect=True)
def test_real_enhanced_study_predicts_to_nifti_and_a_seg(real_study, task_and_model, tmp_path, dcm):
    """The real file as shipped: the default rules choose the four series, and the outputs are on its grid."""
    task, model, prep = task_and_model
    with torch.no_grad():
        prediction = task.predict(model, real_study.folder, prep)
    series = prediction.provenance["series"]
    for seq, path in real_study.paths.items():  # each chosen by the default rules from the site's names
        assert series[seq]["series_instance_uid"] == pydicom.dcmread(path, stop_before_pixels=True).SeriesInstanceUID
    native = prediction["native"]
    assert prediction["labels"].shape == native.array.shape == (256, 256, 176)
    files = task.output_files(tmp_path / "case.nii.gz", prep, source=real_study.folder)
    assert task.write_prediction(prediction, tmp_path / "case.nii.gz", prep) == files
    img = nib.load(str(files[0]))
    np.testing.assert_allclose(img.affine, native.affine, atol=1e-4)
    np.testing.assert_array_equal(np.asarray(img.dataobj), prediction["labels"])
    seg_matches_source(files[2], real_study.paths["t1ce"], prediction["labels"], native,
                       dcm.frame_positions(real_study.source))


# --- a SEG failure keeps the NIfTI: partial, exit 3, resume completes it -------------------------------------
def _cli(*args) -> int:
    from sigplex.core.cli import main

    return main([str(a) for a in args])


def _sidecar(path):
    return json.loads(path.with_name(path.name + ".json").read_text())


def test_seg_failure_single_input_is_partial_exit_3_and_a_rerun_completes_it(run_dir, tmp_path, dcm, monkeypatch,
                                                                                capsys):
    import sigplex.plugins.brain_seg.dicom_seg as dicom_seg

    study = dcm.make_study(tmp_path / "study")
    real = dicom_seg.write_dicom_seg

    def broken(labels, native, path, version=""):
        raise AttributeError("'Dataset' object has no attribute 'PixelMeasuresSequence'")

    monkeypatch.setattr(dicom_seg, "write_dicom_seg", broken)
    out = tmp_path / "pred" / "case.nii.gz"
    assert _cli("predict", "--checkpoint", run_dir, "--input", study.folder, "--output", out) == 3
    err = capsys.readouterr().err
    assert "partial: " in err and "PixelMeasuresSequence" in err and "Traceback" not in err
    nifti, png, seg = out, out.with_name("case_overlay.png"), out.with_name("case.seg.dcm")
    assert nifti.is_file() and png.is_file() and not seg.exists()
    assert _sidecar(nifti)["output"] == "case.nii.gz" and _sidecar(png)["input_sha256"]
    assert not list(out.parent.glob("*.tmp*"))  # written atomically, nothing half-done left behind
    np.testing.assert_allclose(nib.load(str(nifti)).affine, study.grids["t1ce"][0], atol=1e-4)
    from sigplex.core.api import load_predictor
    from sigplex.core.batch import predict_one

    with pytest.raises(PartialOutput) as exc:  # the Python API raises it, carrying the files written
        predict_one(load_predictor(run_dir), study.folder, tmp_path / "api" / "case.nii.gz")
    assert [p.name for p in exc.value.written] == ["case.nii.gz", "case_overlay.png"]
    assert isinstance(exc.value, UserError) and exc.value.exit_code == 3

    monkeypatch.setattr(dicom_seg, "write_dicom_seg", real)  # the SEG writer works again: re-run the command
    assert _cli("predict", "--checkpoint", run_dir, "--input", study.folder, "--output", out) == 0
    assert pydicom.dcmread(seg).ReferencedSeriesSequence[0].SeriesInstanceUID == study.series_uids["t1ce"]
    assert _sidecar(seg)["input_sha256"] == _sidecar(nifti)["input_sha256"]
    assert _cli("predict", "--checkpoint", run_dir, "--input", study.folder, "--output", out) == 0
    assert "already done" in capsys.readouterr().out


def test_seg_failure_in_a_batch_is_a_partial_row_exit_3_and_resume_completes_it(run_dir, tmp_path, dcm, monkeypatch,
                                                                                capsys):
    import sigplex.plugins.brain_seg.dicom_seg as dicom_seg

    dcm.make_study(tmp_path / "studies" / "patient_a", seed=1)
    dcm.make_study(tmp_path / "studies" / "patient_b", seed=2)
    real = dicom_seg.write_dicom_seg

    def fails_for_b(labels, native, path, version=""):
        if "patient_b" in str(path):
            raise UserError(f"{path}: cannot write the DICOM SEG for study/s1 (forced)")
        return real(labels, native, path, version)

    monkeypatch.setattr(dicom_seg, "write_dicom_seg", fails_for_b)
    out = tmp_path / "out"
    assert _cli("predict", "--checkpoint", run_dir, "--input", tmp_path / "studies", "--output", out) == 3
    assert "partial 1, failed 0 of 2" in capsys.readouterr().out
    rows = {r["input"].split("/")[-1]: r for r in map(json.loads, (out / "manifest.jsonl").read_text().splitlines())}
    assert rows["patient_a"]["status"] == "ok" and len(rows["patient_a"]["outputs"]) == 3
    b = rows["patient_b"]
    assert b["status"] == "partial" and b["error_type"] == "PartialOutput" and "(forced)" in b["error"]
    assert [p.split("/")[-1] for p in b["outputs"]] == ["patient_b.nii.gz", "patient_b_overlay.png"]
    assert all(_sidecar(out / p.split("/")[-1])["input"] for p in b["outputs"])
    assert not (out / "patient_b.seg.dcm").exists()

    monkeypatch.setattr(dicom_seg, "write_dicom_seg", real)
    assert _cli("predict", "--checkpoint", run_dir, "--input", tmp_path / "studies", "--output", out) == 0
    rows = {r["input"].split("/")[-1]: r for r in map(json.loads, (out / "manifest.jsonl").read_text().splitlines())}
    assert rows["patient_a"]["status"] == "skipped" and rows["patient_b"]["status"] == "ok"
    assert (out / "patient_b.seg.dcm").is_file() and _sidecar(out / "patient_b.seg.dcm")["output"] == "patient_b.seg.dcm"


def test_seg_failure_behind_serve_answers_what_was_written_and_says_what_is_missing(run_dir, tmp_path, dcm,
                                                                                   monkeypatch):
    """A server-side SEG failure is no client error: 200 with the NIfTI and overlay, and a header with the reason."""
    import asyncio
    import io
    import zipfile

    import httpx

    import sigplex.plugins.brain_seg.dicom_seg as dicom_seg
    from sigplex.core.api import load_predictor
    from sigplex.core.serve import PARTIAL_HEADER, create_app

    study = dcm.make_study(tmp_path / "study")

    def broken(labels, native, path, version=""):
        raise AttributeError("'Dataset' object has no attribute 'PixelMeasuresSequence'")

    monkeypatch.setattr(dicom_seg, "write_dicom_seg", broken)
    files = [("file", (str(p.relative_to(study.folder)), p.read_bytes()))
             for p in sorted(study.folder.rglob("*")) if p.is_file()]

    async def go():
        transport = httpx.ASGITransport(app=create_app(load_predictor(run_dir)))
        async with httpx.AsyncClient(transport=transport, base_url="http://test", timeout=300) as client:
            return await client.post("/predict", files=files)

    r = asyncio.run(go())
    assert r.status_code == 200 and "PixelMeasuresSequence" in r.headers[PARTIAL_HEADER]
    with zipfile.ZipFile(io.BytesIO(r.content)) as zf:
        assert sorted(zf.namelist()) == ["prediction.nii.gz", "prediction_overlay.png"]
