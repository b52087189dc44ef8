"""brain_seg from DICOM studies: series rules, model-grid geometry, native-space outputs, DICOM SEG, missing sequences."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from helpers import run_cli

pytest.importorskip("monai")
pytest.importorskip("scipy")
pydicom = pytest.importorskip("pydicom")
hd = pytest.importorskip("highdicom")
nib = pytest.importorskip("nibabel")

from sigplex.core.config import resolve_config  # noqa: E402
from sigplex.core.errors import UserError  # noqa: E402
from sigplex.core.task import Prepared  # noqa: E402
from sigplex.datasets.dicom import Series, read_volume, scan_study  # noqa: E402
from sigplex.plugins.brain_seg.config import BrainSegConfig  # noqa: E402
from sigplex.plugins.brain_seg.series_rules import candidates, choose_series, load_rules  # noqa: E402

MODALITIES = ("t1", "t1ce", "t2", "flair")
TINY = ["data.roi=[64,64,64]", "model.depths=[1,1,1,1]", "model.num_heads=[3,3,3,3]", "data.sw_batch_size=1"]


def prepared(dropout=0.0, *overrides) -> Prepared:
    return Prepared(resolve_config(BrainSegConfig, overrides=[*TINY, *overrides]),
                    state={"source": "brats2021", "modality_dropout": dropout})


@pytest.fixture(scope="module")
def task_and_model():
    import sigplex.plugins.brain_seg.swin_unetr  # noqa: F401  (registers the model)
    from sigplex.plugins.brain_seg.task import BrainSegTask

    task = BrainSegTask()
    torch.manual_seed(0)
    return task, task.build_model(prepared().config).eval()


def series(description, protocol="", image_type=("ORIGINAL", "PRIMARY"), modality="MR", number=1) -> Series:
    return Series(uid=f"1.2.{number}", number=number, description=description, protocol=protocol, modality=modality,
                  sop_class="", frame_of_reference="1.2.3", study_uid="1.2", image_type=tuple(image_type))


@pytest.mark.parametrize("description, protocol, expected", [
    ("AX T1 SE", "", ["t1"]), ("t1_mprage_sag_p2", "", ["t1"]), ("T1W_3D_TFE", "", ["t1"]), ("AX T1 FLAIR", "", ["t1"]),
    ("AX T1 POST GD", "", ["t1ce"]), ("T1+C", "", ["t1ce"]), ("T1 C+ AX", "", ["t1ce"]), ("MPRAGE GAD", "", ["t1ce"]),
    ("t1_mprage_sag_p2_POST", "t1_mprage_sag_p2", ["t1ce"]), ("Ax T1 FLAIR post", "", ["t1ce"]), ("T1CE", "", ["t1ce"]),
    ("SAG T2 TSE", "", ["t2"]), ("Ax T2 FSE", "", ["t2"]), ("T2W_TSE", "", ["t2"]),
    ("COR T2 FLAIR", "", ["flair"]), ("t2_tirm_tra_dark-fluid", "", ["flair"]), ("3D FLAIR SAG", "", ["flair"]),
    ("T2*", "", []), ("AX T2 GRE", "", []), ("T2 STAR", "", []), ("DWI b1000", "", []), ("ADC", "", []),
    ("Localizer", "", []), ("AX T1 MPR", "", []), ("T1 MAP MOLLI", "", []), ("SWI", "", []), ("", "", []),
])
def test_default_rules(description, protocol, expected):
    assert candidates(series(description, protocol), load_rules()) == expected


def test_rules_ignore_localizers_reformats_and_other_modalities():
    rules = load_rules()
    assert candidates(series("AX T1", image_type=("DERIVED", "SECONDARY", "MPR")), rules) == []
    assert candidates(series("AX T1", image_type=("ORIGINAL", "PRIMARY", "LOCALIZER")), rules) == []
    assert candidates(series("AX T1", modality="CT"), rules) == []


def test_ambiguous_series_are_one_line(tmp_path):
    rules = load_rules()
    two = [series("AX T1 POST", number=5), series("COR T1 POST", number=7), series("AX T1", number=3)]
    with pytest.raises(UserError, match="ambiguous series for t1ce: series 5 'AX T1 POST', series 7 'COR T1 POST'"):
        choose_series(tmp_path, two, rules)
    with pytest.raises(UserError, match="series 4 'T1 T2 combined' fits t1 and t2"):
        choose_series(tmp_path, [series("T1 T2 combined", number=4)], rules)
    chosen = choose_series(tmp_path, [series("AX T1", number=3), series("FLAIR", number=4)], rules)
    assert chosen["t1"].number == 3 and chosen["flair"].number == 4 and chosen["t2"] is None


@pytest.mark.parametrize("text, match", [
    ("sequences: [1, 2", "not valid YAML"),
    ("version: 1", "expected a mapping with 'sequences'"),
    ("sequences: {t3: {match: [x]}}", "unknown t3"),
    ("sequences: {t1: {match: ['(']}}", "sequences.t1.match: '\\(' is not a valid regular expression"),
    ("sequences: {t1: {exclude: [x]}}", "sequences.t1.match: expected at least one pattern"),
])
def test_bad_rules_files_are_one_line(tmp_path, text, match):
    path = tmp_path / "rules.yaml"
    path.write_text(text)
    with pytest.raises(UserError, match=match) as exc:
        load_rules(path)
    assert "\n" not in str(exc.value)
    with pytest.raises(UserError, match="cannot read the rules file"):
        load_rules(tmp_path / "absent.yaml")


def test_series_land_on_the_model_grid_where_the_phantom_is(phantom_study, capsys, dcm):
    """Each channel on the 1 mm grid matches the phantom sampled there independently (scipy), not its mirror image."""
    from sigplex.plugins.brain_seg.dicom_input import read_dicom_case

    case = read_dicom_case(phantom_study.folder, prepared().config.data, {})
    image, affine = case["image"].numpy(), case["grid_affine"]
    np.testing.assert_allclose(np.linalg.norm(affine[:3, :3], axis=0), 1.0, atol=1e-6)  # 1 mm
    assert np.all(np.diag(affine)[:3] > 0)  # RAS
    for i, seq in enumerate(MODALITIES):
        expected = dcm.sample(phantom_study.case[seq], phantom_study.case["affine"], affine, image.shape[1:])
        mirrored = dcm.sample(phantom_study.case[seq][::-1], phantom_study.case["affine"], affine, image.shape[1:])
        m = (expected > 0) & (image[i] != 0)
        r, r_mirror = np.corrcoef(image[i][m], expected[m])[0, 1], np.corrcoef(image[i][m], mirrored[m])[0, 1]
        assert r > 0.94 and r - r_mirror > 0.2, (seq, r, r_mirror)
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("brain_seg:")]
    assert len(lines) == 4 and "t1ce  <- series 3 'AX T1 POST GD' (43 slices, 0.9x0.9x1.5 mm" in lines[1]
    assert "[reference grid]" in lines[1] and "t2    <- series 4 'SAG T2 TSE'" in lines[2]
    series = case["provenance"]["series"]
    assert series["flair"]["series_instance_uid"] == phantom_study.series_uids["flair"] and series["flair"]["files"] == 1
    assert case["provenance"]["zero_filled"] == [] and case["provenance"]["reference_sequence"] == "t1ce"


def test_results_map_back_to_the_reference_grid(phantom_study, dcm):
    """Phantom tumour masks on the model grid, mapped back, match the phantom labels on the native grid."""
    from sigplex.datasets.nifti import labels_to_channels
    from sigplex.plugins.brain_seg.native_space import model_grid, to_native

    native = read_volume(next(s for s in scan_study(phantom_study.folder)
                              if s.uid == phantom_study.series_uids["t1ce"]))
    grid = model_grid(native.array, native.affine)
    affine, shape = grid.affine.numpy(), grid.shape[1:]
    truth_grid = dcm.sample(phantom_study.case["seg"], phantom_study.case["affine"], affine, shape, order=0)
    probs = torch.as_tensor(labels_to_channels(truth_grid.astype(np.uint8), "brats2021"))
    labels = to_native(probs, affine, native.affine, native.array.shape, 0.5)
    truth = dcm.sample(phantom_study.case["seg"], phantom_study.case["affine"], native.affine, native.array.shape, order=0)
    assert labels.shape == native.array.shape and labels.dtype == np.uint8
    for value in (1, 2, 4):
        a, b = labels == value, truth == value
        assert 2 * (a & b).sum() / (a.sum() + b.sum()) > 0.85, value


def read_seg_back(path, labels, native):
    """Check a SEG file with pydicom and highdicom; return the highdicom object."""
    ds = pydicom.dcmread(path)
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.66.4" and ds.Modality == "SEG"
    codes = [(s.SegmentLabel, s.SegmentedPropertyTypeCodeSequence[0].CodeValue,
              s.SegmentedPropertyTypeCodeSequence[0].CodingSchemeDesignator) for s in ds.SegmentSequence]
    assert codes == [("TC", "108369006", "SCT"), ("WT", "52988006", "SCT"), ("ET", "C113842", "NCIt")]
    assert all(s.SegmentedPropertyCategoryCodeSequence[0].CodeValue == "49755003" for s in ds.SegmentSequence)
    assert all(s.AnatomicRegionSequence[0].CodeValue == "12738006" for s in ds.SegmentSequence)
    seg = hd.seg.segread(path)
    volume = seg.get_volume(combine_segments=False)
    ras = np.diag([-1.0, -1.0, 1.0, 1.0]) @ volume.affine  # highdicom: LPS, voxel order (slice, row, column)
    idx = np.stack(np.nonzero(np.ones(volume.array.shape[:3])), -1)
    world = idx @ ras[:3, :3].T + ras[:3, 3]
    ours = np.rint((world - native.affine[:3, 3]) @ np.linalg.inv(native.affine[:3, :3]).T).astype(int)
    from sigplex.datasets.nifti import labels_to_channels

    expected = labels_to_channels(labels, "brats2021").astype(bool)[:, ours[:, 0], ours[:, 1], ours[:, 2]].T
    np.testing.assert_array_equal(volume.array.reshape(-1, 3).astype(bool), expected)
    return ds


@pytest.mark.parametrize("reference", ["t1ce", "flair"])  # classic series, enhanced multi-frame (shuffled frames)
def test_dicom_seg_references_the_source_and_reads_back(phantom_study, tmp_path, reference, dcm):
    from sigplex.plugins.brain_seg.dicom_seg import write_dicom_seg

    native = read_volume(next(s for s in scan_study(phantom_study.folder)
                              if s.uid == phantom_study.series_uids[reference]))
    labels = dcm.sample(phantom_study.case["seg"], phantom_study.case["affine"], native.affine, native.array.shape,
                    order=0).astype(np.uint8)
    ds = read_seg_back(write_dicom_seg(labels, native, tmp_path / "x.seg.dcm", "test"), labels, native)
    assert ds.ReferencedSeriesSequence[0].SeriesInstanceUID == phantom_study.series_uids[reference]
    assert ds.StudyInstanceUID == pydicom.dcmread(native.files[0], stop_before_pixels=True).StudyInstanceUID
    assert ds.FrameOfReferenceUID == pydicom.dcmread(native.files[0], stop_before_pixels=True).FrameOfReferenceUID


def test_predict_a_study_writes_nifti_on_the_native_grid_and_a_seg(phantom_study, task_and_model, tmp_path):
    task, model = task_and_model
    prep = prepared()
    with torch.no_grad():
        prediction = task.predict(model, phantom_study.folder, prep)
    affine, shape = phantom_study.grids["t1ce"]
    assert prediction["labels"].shape == shape and prediction.provenance["input"] == "dicom_study"
    files = task.output_files(tmp_path / "out.nii.gz", prep, source=phantom_study.folder)
    assert [f.name for f in files] == ["out.nii.gz", "out_overlay.png", "out.seg.dcm"]
    assert task.write_prediction(prediction, tmp_path / "out.nii.gz", prep) == files
    img = nib.load(str(files[0]))
    np.testing.assert_allclose(img.affine, affine, atol=1e-4)
    np.testing.assert_array_equal(np.asarray(img.dataobj), prediction["labels"])
    read_seg_back(files[2], prediction["labels"], prediction["native"])
    # without the input (today's core): the SEG is listed once it exists, so it is never replaced unchecked
    assert task.output_files(tmp_path / "out.nii.gz", prep) == files
    assert len(task.output_files(tmp_path / "new.nii.gz", prep)) == 2


def test_missing_sequences_zero_filled_only_for_modality_dropout_runs(tmp_path, task_and_model, dcm):
    from sigplex.plugins.brain_seg.dicom_input import read_dicom_case

    task, model = task_and_model
    study = dcm.make_study(tmp_path / "study", missing=("t2",))
    with pytest.raises(UserError, match="missing t2: no series fits the rules in .* trained without "
                                        "data.modality_dropout") as exc:
        task.predict(model, study.folder, prepared(0.0))
    assert "\n" not in str(exc.value) and "series 3 'AX T1 POST GD'" in str(exc.value)
    with torch.no_grad():
        prediction = task.predict(model, study.folder, prepared(0.3))
    assert prediction.provenance["zero_filled"] == ["t2"] and prediction.provenance["modality_dropout"] == 0.3
    assert prediction.provenance["series"]["t2"] is None
    assert read_dicom_case(study.folder, prepared(0.3).config.data, {"modality_dropout": 0.3})["image"][2].abs().max() == 0
    with pytest.raises(UserError, match="reference sequence t2 \\(data.reference_sequence\\) is missing"):
        task.predict(model, study.folder, prepared(0.3, "data.reference_sequence=t2"))
    nothing = dcm.make_study(tmp_path / "none", missing=MODALITIES, extra_series=("DWI",))
    with pytest.raises(UserError, match="missing all of t1, t1ce, t2, flair"):
        task.predict(model, nothing.folder, prepared(0.3))


def test_series_in_different_frames_of_reference_are_refused(tmp_path, task_and_model, dcm):
    from pydicom.uid import generate_uid

    task, model = task_and_model
    study = dcm.make_study(tmp_path / "study", frame_of_reference={"t2": generate_uid()})
    with pytest.raises(UserError, match="not in one frame of reference .* registering them is out of scope"):
        task.predict(model, study.folder, prepared())


def test_ambiguous_study_and_custom_rules(tmp_path, task_and_model, dcm):
    task, model = task_and_model
    study = dcm.make_study(tmp_path / "study", extra_series=("AX T1 POST GD repeat",))
    with pytest.raises(UserError, match="ambiguous series for t1ce: series 3 'AX T1 POST GD', series 20 "):
        task.predict(model, study.folder, prepared())
    rules = tmp_path / "rules.yaml"
    from sigplex.plugins.brain_seg.series_rules import DEFAULT_RULES

    rules.write_text(DEFAULT_RULES.read_text().replace("ignore:\n", "ignore:\n  - 'repeat'\n"))
    with torch.no_grad():
        prediction = task.predict(model, study.folder, prepared(0.0, f"data.dicom_rules={rules}"))
    assert prediction.provenance["rules"]["path"] == str(rules)
    assert prediction.provenance["series"]["t1ce"]["series_number"] == 3


def test_modality_dropout_zeroes_whole_channels_never_all():
    from sigplex.plugins.brain_seg.transforms import RandModalityDropoutd

    drop = RandModalityDropoutd(["image"], prob=0.6)
    drop.set_random_state(seed=0)
    image = torch.ones(4, 8, 8, 8)
    kept = np.array([[bool(ch.abs().max()) for ch in drop({"image": image})["image"]] for _ in range(400)])
    assert kept.any(axis=1).all()  # never all four dropped
    assert 0.3 < 1 - kept.mean() < 0.6  # about prob, less because an all-dropped draw keeps one
    assert set(np.unique(drop({"image": image})["image"].numpy())) <= {0.0, 1.0}  # whole channels only
    assert torch.equal(RandModalityDropoutd(["image"], 0.0)({"image": image})["image"], image)


def test_modality_dropout_is_fitted_state_and_drops_training_channels(task_and_model):
    task, _ = task_and_model
    config = resolve_config(BrainSegConfig, overrides=[*TINY, "data.phantom_cases=5", "data.phantom_shape=[64,64,64]",
                                                       "data.modality_dropout=0.5"])
    prep = task.build_data(config, None)
    assert prep.state == {"source": "brats2021", "modality_dropout": 0.5, "spacing_mm": [1.0, 1.0, 1.0]}
    task.seed_item(0, prep)
    zeroed = [sum(int(ch.abs().max() == 0) for ch in prep.train[0]["image"]) for _ in range(12)]
    assert any(zeroed) and max(zeroed) < 4, zeroed


def test_cli_predict_study_writes_both_outputs_with_choices_in_provenance(run_dir, phantom_study, tmp_path, dcm):
    out = tmp_path / "pred" / "case.nii.gz"
    res = run_cli("predict", "--checkpoint", run_dir, "--input", phantom_study.folder, "--output", out)
    assert res.returncode == 0, res.stderr
    chosen = [ln for ln in res.stderr.splitlines() if ln.startswith("brain_seg:")]
    assert [ln.split()[1] for ln in chosen] == list(MODALITIES)
    files = [out, tmp_path / "pred" / "case_overlay.png", tmp_path / "pred" / "case.seg.dcm"]
    for f in files:
        sidecar = json.loads(f.with_name(f.name + ".json").read_text())
        assert sidecar["choices"]["series"]["t1ce"]["series_instance_uid"] == phantom_study.series_uids["t1ce"]
        assert sidecar["choices"]["zero_filled"] == []
    np.testing.assert_allclose(nib.load(str(out)).affine, phantom_study.grids["t1ce"][0], atol=1e-4)
    assert pydicom.dcmread(files[2]).ReferencedSeriesSequence[0].SeriesInstanceUID == phantom_study.series_uids["t1ce"]
    again = run_cli("predict", "--checkpoint", run_dir, "--input", phantom_study.folder, "--output", out)
    assert again.returncode == 0 and "brain_seg:" not in again.stderr  # same model, same study: left as it is
    missing = dcm.make_study(tmp_path / "no_flair", missing=("flair",))
    res = run_cli("predict", "--checkpoint", run_dir, "--input", missing.folder, "--output", tmp_path / "m.nii.gz")
    assert res.returncode == 2 and "missing flair" in res.stderr and "Traceback" not in res.stderr


def test_batch_predict_a_folder_of_studies(run_dir, tmp_path, dcm):
    dcm.make_study(tmp_path / "studies" / "patient_a", seed=1)
    dcm.make_study(tmp_path / "studies" / "patient_b", seed=2)
    res = run_cli("predict", "--checkpoint", run_dir, "--input", tmp_path / "studies", "--output", tmp_path / "out")
    assert res.returncode == 0, res.stderr
    assert sorted(p.name for p in (tmp_path / "out").glob("*.seg.dcm")) == ["patient_a.seg.dcm", "patient_b.seg.dcm"]
    records = [json.loads(ln) for ln in (tmp_path / "out" / "manifest.jsonl").read_text().splitlines()]
    assert [len(r["outputs"]) for r in records] == [3, 3]
