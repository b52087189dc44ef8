"""eeg_conformer tasks end to end on small simulated data: training, metrics, plots, prediction, errors."""
import csv
import json

import numpy as np
import pytest

mne = pytest.importorskip("mne")

import sigplex.core as sp
from sigplex.core.errors import UserError
from sigplex.datasets.eeg.simulate import MI_CHANNELS, simulate_motor_imagery

SMALL_MODEL = {"model.emb_dim": 16, "model.heads": 2, "model.temporal_depth": 1, "model.spatial_depth": 1,
               "model.dropout": 0.25}
MI = {**SMALL_MODEL, "data.sim_subjects": 3, "data.sim_trials": 40, "data.sfreq": 125.0, "data.resample": True,
      "data.window_s": 2.0, "data.tmin": 0.5, "data.protocol": "within", "trainer.max_steps": 60,
      "trainer.val_every": 20, "trainer.checkpoint_every": 20, "trainer.batch_size": 16, "trainer.progress": "none",
      "trainer.tensorboard": False, "trainer.early_stopping_patience": None}


@pytest.fixture(scope="module")
def mi_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("mi") / "run"
    return sp.fit("eeg_conformer", task="motor_imagery", overrides=MI, out=out)


@pytest.fixture(scope="module")
def predictor(mi_run):
    return sp.load_run(mi_run)


@pytest.fixture(scope="module")
def recording(mi_run):
    root = simulate_motor_imagery(n_subjects=3, n_trials=40, sfreq=250.0)
    return sorted(root.glob("*.fif"))[-1]


def test_training_beats_chance_and_reports_per_subject_metrics(mi_run):
    test = mi_run.summary["test"]
    for key in ("accuracy", "balanced_accuracy", "kappa"):
        assert key in test
        for subject in ("01", "02", "03"):
            assert f"{key}_{subject}" in test
    assert test["accuracy"] >= 0.7, test  # chance is 0.5 (24 held-out epochs)
    assert test["kappa"] > 0.3


def test_montage_travels_with_the_run_and_topomap_is_written(mi_run):
    cfg = mi_run.config_dict
    assert cfg["data"]["channels"] == MI_CHANNELS
    state = json.loads((mi_run.path / "prepared.json").read_text())["values"]
    assert state["channels"] == MI_CHANNELS and state["classes"] == ["left_hand", "right_hand"]
    png = mi_run.path / "plots" / "channel_attention_topomap.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = list(csv.DictReader((mi_run.path / "plots" / "channel_attention.csv").open()))
    assert [r["channel"] for r in rows] == MI_CHANNELS
    assert sum(float(r["weight"]) for r in rows) == pytest.approx(1.0, abs=1e-4)


def test_predict_matches_channels_by_name_whatever_their_order(predictor, recording):
    raw = mne.io.read_raw(recording, preload=True, verbose="error")
    first = predictor.predict(raw)
    n_events = sum(d in ("left_hand", "right_hand") for d in raw.annotations.description)
    assert first["probabilities"].shape == (n_events, 2)
    np.testing.assert_allclose(first["probabilities"].sum(1), 1.0, atol=1e-5)
    shuffled = raw.copy().reorder_channels(list(reversed(raw.ch_names)))
    extra = mne.io.RawArray(np.random.default_rng(0).standard_normal((1, raw.n_times)) * 1e-5,
                            mne.create_info(["EOG1"], raw.info["sfreq"], "eog"), verbose="error")
    shuffled.add_channels([extra], force_update_info=True)
    again = predictor.predict(shuffled)
    np.testing.assert_allclose(again["probabilities"], first["probabilities"], atol=1e-5)
    assert again["event"] == first["event"]


def test_predict_accepts_epochs_and_a_missing_channel_is_a_clear_error(predictor, recording):
    raw = mne.io.read_raw(recording, preload=True, verbose="error")
    events, event_id = mne.events_from_annotations(raw, verbose="error")
    epochs = mne.Epochs(raw.copy().filter(4, 40, verbose="error").resample(125, verbose="error"),
                        events, event_id, tmin=0.5, tmax=2.5, baseline=None, preload=True, verbose="error")
    out = predictor.predict(epochs)
    assert out["probabilities"].shape == (len(epochs), 2)
    assert set(out["event"]) <= {"left_hand", "right_hand"}
    with pytest.raises(UserError, match=r"channel\(s\) C3 of data.channels not found"):
        predictor.predict(raw.copy().drop_channels(["C3"]))


def test_predict_writes_csv_atomically_and_never_overwrites(mi_run, recording, tmp_path):
    target = tmp_path / "pred.csv"
    sp.predict(mi_run, str(recording), output=target)
    rows = list(csv.DictReader(target.open()))
    assert rows and set(rows[0]) == {"window", "onset_s", "event", "prob_left_hand", "prob_right_hand", "predicted"}
    assert all(abs(float(r["prob_left_hand"]) + float(r["prob_right_hand"]) - 1) < 1e-4 for r in rows)
    other = tmp_path / "other.csv"
    other.write_text("not ours\n")
    with pytest.raises(UserError, match="already exists"):
        sp.predict(mi_run, str(recording), output=other)
    assert other.read_text() == "not ours\n"
    sp.predict(mi_run, str(recording), output=other, overwrite=True)
    assert other.read_bytes() == target.read_bytes()
    with pytest.raises(UserError, match=r"expected a file name ending in \.csv"):
        sp.predict(mi_run, str(recording), output=tmp_path / "pred.txt")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


@pytest.mark.slow
def test_cli_predict(mi_run, recording, tmp_path):
    from helpers import run_cli

    out = tmp_path / "p.csv"
    res = run_cli("predict", "--plugin", "eeg_conformer", "--checkpoint", mi_run.path, "--input", recording,
                  "--output", out)
    assert res.returncode == 0, res.stderr
    assert out.read_text().startswith("window,onset_s,event,prob_left_hand")
    taken = tmp_path / "taken.csv"
    taken.write_text("someone else's\n")
    res = run_cli("predict", "--plugin", "eeg_conformer", "--checkpoint", mi_run.path, "--input", recording,
                  "--output", taken)
    assert res.returncode == 2 and "already exists" in res.stderr
    assert taken.read_text() == "someone else's\n"


def _write_fif(path, sfreq, channels=MI_CHANNELS[:3], annotations=("left_hand", "right_hand"), seconds=12):
    rng = np.random.default_rng(0)
    raw = mne.io.RawArray(rng.standard_normal((len(channels), int(seconds * sfreq))) * 1e-5,
                          mne.create_info(list(channels), sfreq, "eeg"), verbose="error")
    raw.set_annotations(mne.Annotations([1.0, 5.0], [2.0, 2.0], list(annotations)))
    raw.save(path, verbose="error")


def _task_and_config(task, overrides):
    from sigplex.core.api import load_task

    return load_task("eeg_conformer", task, overrides=[f"{k}={v}" for k, v in overrides.items()])[1:]


def test_inconsistent_sampling_rates_and_missing_events_are_user_errors(tmp_path):
    _write_fif(tmp_path / "sub-01_raw.fif", 100.0)
    _write_fif(tmp_path / "sub-02_raw.fif", 128.0)
    task, cfg = _task_and_config("motor_imagery", {"data.channels": json.dumps(MI_CHANNELS[:3]), "data.sfreq": 100,
                                                   "data.window_s": 1.0})
    with pytest.raises(UserError, match=r"inconsistent sampling rates .*sub-01_raw.fif .*100 Hz, sub-02_raw.fif .*128 Hz"):
        task.build_data(cfg, tmp_path)
    other = tmp_path / "other"
    other.mkdir()
    _write_fif(other / "sub-01_raw.fif", 100.0, annotations=("769", "770"))
    with pytest.raises(UserError, match=r"sub-01_raw.fif: no events found .*769, 770"):
        task.build_data(cfg, other)
    task, cfg = _task_and_config("motor_imagery", {"data.channels": json.dumps(MI_CHANNELS[:3]), "data.sfreq": 100,
                                                   "data.window_s": 1.0, "data.protocol": "within",
                                                   "data.event_id": json.dumps({"left_hand": "769", "right_hand": 770})})
    prepared = task.build_data(cfg, other)
    assert sum(len(s) for s in (prepared.train, prepared.val, prepared.test) if s is not None) == 2
    assert prepared.train.y.tolist()[:1] == [0]  # "769" -> left_hand (class 0)


def test_full_loso_runs_every_fold_and_summarises(tmp_path):
    from sigplex.plugins.eeg_conformer.protocols import cross_validate, fold_names

    over = {**SMALL_MODEL, "data.sim_subjects": 2, "data.sim_trials": 8, "data.sfreq": 125.0, "data.resample": True,
            "data.window_s": 2.0, "trainer.progress": "none", "trainer.tensorboard": False, "trainer.batch_size": 4}
    assert fold_names("motor_imagery", overrides=over) == ["01", "02"]
    result = cross_validate("motor_imagery", out=tmp_path / "cv", overrides=over, max_steps=2)
    assert sorted(result["folds"]) == ["01", "02"]
    assert (tmp_path / "cv" / "fold-01" / "summary.json").is_file()
    assert result["folds"]["01"]["accuracy_01"] == result["folds"]["01"]["accuracy"]  # fold-01 tests on subject 01
    assert "accuracy_02" in result["folds"]["02"] and "accuracy_01" not in result["folds"]["02"]
    saved = json.loads((tmp_path / "cv" / "cv_summary.json").read_text())
    assert saved["mean"]["accuracy"] == pytest.approx(np.mean([f["accuracy"] for f in result["folds"].values()]))


def test_folds_name_subjects_for_loso_indices_for_kfold_and_none_for_within(tmp_path):
    for k in (1, 2, 3):
        _write_fif(tmp_path / f"sub-0{k}_raw.fif", 100.0)
    base = {"data.channels": json.dumps(MI_CHANNELS[:3]), "data.sfreq": 100, "data.window_s": 1.0}
    task, cfg = _task_and_config("motor_imagery", base)
    assert task.folds(cfg, tmp_path) == ["01", "02", "03"]
    task, cfg = _task_and_config("motor_imagery", {**base, "data.subjects": '["01", "03"]'})
    assert task.folds(cfg, tmp_path) == ["01", "03"]
    task, cfg = _task_and_config("motor_imagery", {**base, "data.protocol": "kfold", "data.n_folds": 3})
    assert task.folds(cfg, tmp_path) == ["0", "1", "2"]
    task, cfg = _task_and_config("motor_imagery", {**base, "data.protocol": "within"})
    assert task.folds(cfg, tmp_path) == []
    task, cfg = _task_and_config("motor_imagery", {**base, "data.test_subject": "'02'"})
    with pytest.raises(UserError, match="data.test_subject pins the held-out subject"):
        task.folds(cfg, tmp_path)
    with pytest.raises(UserError, match=r"data.fold=3 is out of range for data.n_folds=3"):
        _task_and_config("motor_imagery", {**base, "data.protocol": "kfold", "data.n_folds": 3, "data.fold": 3})
    # data.fold=k in build_data holds out the k-th subject of folds()
    task, cfg = _task_and_config("motor_imagery", {**base, "data.fold": 1})
    prepared = task.build_data(cfg, tmp_path)
    assert prepared.test.subjects == ["02"] and prepared.val.subjects == ["01"] and prepared.train.subjects == ["03"]


def test_seizure_task_trains_and_reports_detection_metrics(tmp_path):
    over = {**SMALL_MODEL, "data.sim_subjects": 3, "data.sim_minutes": 3, "data.window_s": 2.0, "data.stride_s": 2.0,
            "trainer.max_steps": 30, "trainer.val_every": 15, "trainer.checkpoint_every": 15, "trainer.batch_size": 16,
            "trainer.progress": "none", "trainer.tensorboard": False}
    run = sp.fit("eeg_conformer", task="seizure", overrides=over, out=tmp_path / "sz")
    test = run.summary["test"]
    for key in ("sensitivity", "specificity", "auroc", "false_alarms_per_hour"):
        assert np.isfinite(test[key]), key
    assert 0 <= test["specificity"] <= 1 and test["false_alarms_per_hour"] >= 0
    assert test["auroc"] > 0.6
    # the loss weights are fitted on the training windows and saved with the run
    predictor = sp.load_run(run)
    weights = predictor.prepared.state["class_weights"]
    assert weights.shape == (2,) and weights[1] > weights[0]  # seizures are the rare class
    from sigplex.datasets.eeg import subject_of
    from sigplex.datasets.eeg.simulate import simulate_seizures

    root = simulate_seizures(n_subjects=3, minutes=3, sfreq=128.0)
    rec = sorted(root.glob("*.fif"))[0]
    pred = sp.predict(run, str(rec))
    assert pred["probabilities"].shape == (90, 2)  # 3 min in 2-s windows, stride 2 s
    np.testing.assert_allclose(pred["onset_s"][:3], [0.0, 2.0, 4.0])
    assert set(pred["predicted"]) <= {"background", "seizure"}
    # evaluate --data: one recording is enough, no training split needed
    one = sp.evaluate(run, data=rec)
    assert np.isfinite(one["auroc"]) and {k for k in one if k.startswith("auroc_")} == {f"auroc_{subject_of(rec)}"}


def test_unset_channels_are_resolved_from_the_first_recording_and_saved(tmp_path):
    _write_fif(tmp_path / "sub-01_raw.fif", 100.0, channels=["Cz", "C3", "C4"])
    _write_fif(tmp_path / "sub-02_raw.fif", 100.0, channels=["C4", "Cz", "C3"])
    task, cfg = _task_and_config("motor_imagery", {"data.sfreq": 100, "data.window_s": 1.0,
                                                   "data.protocol": "within"})
    assert cfg.data.channels is None
    with pytest.raises(ValueError, match="data.channels is unset"):
        task.build_model(cfg)
    prepared = task.build_data(cfg, tmp_path)
    assert prepared.config.data.channels == ["Cz", "C3", "C4"] and cfg.data.channels is None
    assert prepared.state["channels"] == ["Cz", "C3", "C4"]
    assert prepared.state["classes"] == ["left_hand", "right_hand"] and "class_weights" not in prepared.state
    assert task.build_model(prepared.config).n_chans == 3
    assert tuple(prepared.train.x.shape[1:]) == (3, 100)


def test_prepared_state_round_trips_and_predict_needs_only_the_run(mi_run, recording):
    """After training, load_run(run).prepared.state holds the montage and classes, and predict works from it."""
    from sigplex.core.task import Prepared

    predictor = sp.load_run(mi_run)
    state = predictor.prepared.state
    assert state["channels"] == MI_CHANNELS and state["classes"] == ["left_hand", "right_hand"]
    assert predictor.prepared.train is None and predictor.prepared.test is None
    expected = predictor.predict(str(recording))
    # a config that lost its montage still predicts: channels and classes come from the state alone
    cfg = predictor.prepared.config.model_copy(deep=True)
    cfg.data.channels, cfg.data.classes = None, ["x", "y"]
    again = predictor.task.predict(predictor.model, str(recording), Prepared(config=cfg, state=dict(state)))
    np.testing.assert_allclose(again["probabilities"], expected["probabilities"], atol=1e-6)
    assert again["classes"] == ["left_hand", "right_hand"]


def test_recordings_without_class_events_are_cut_into_consecutive_windows(predictor, tmp_path):
    """No event of data.event_id: consecutive windows of data.window_s (a real check, not an error message)."""
    path = tmp_path / "rest_raw.fif"
    rng = np.random.default_rng(1)
    raw = mne.io.RawArray(rng.standard_normal((len(MI_CHANNELS), 250 * 9)) * 1e-5,
                          mne.create_info(MI_CHANNELS, 250.0, "eeg"), verbose="error")
    raw.set_annotations(mne.Annotations([1.0], [1.0], ["blink"]))
    raw.save(path, verbose="error")
    out = predictor.predict(str(path))
    assert out["event"] is None and out["probabilities"].shape == (4, 2)  # 9 s in 2-s windows
    np.testing.assert_allclose(out["onset_s"], [0.0, 2.0, 4.0, 6.0])


def test_evaluate_data_reads_every_subject_with_the_run_montage(mi_run):
    """evaluate --data scores all of the folder (no protocol split), every subject, with the run's montage."""
    root = simulate_motor_imagery(n_subjects=3, n_trials=40, sfreq=250.0)
    metrics = sp.evaluate(mi_run, data=root)
    assert {"accuracy_01", "accuracy_02", "accuracy_03"} <= set(metrics)
    assert metrics["accuracy"] >= 0.7


def test_export_axes_are_batch_only_and_onnx_export_works(mi_run, tmp_path):
    pytest.importorskip("onnxruntime")
    predictor = sp.load_run(mi_run)
    assert predictor.task.export_axes(predictor.prepared) == {0: {0: "batch"}}
    result = sp.export(mi_run, format="onnx", output=tmp_path / "m.onnx")
    assert result["max_abs_diff"] < 1e-4


def test_hostile_inputs_are_answered_or_refused_in_one_line(mi_run, tmp_path):
    """The core's harness on this task's sample inputs and its format's variants: predict, serve, evaluate."""
    from helpers import check_hostile

    import sigplex.core as sp

    report = check_hostile(sp.load_run(mi_run), tmp_path, ["--checkpoint", mi_run], "recording_raw.fif")
    assert report["ok"] >= 2, report
