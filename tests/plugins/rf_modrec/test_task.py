"""The classify task: metrics, fresh-noise frames, prediction I/O, and train/evaluate/predict/distil end to end."""
import csv
import json
import pickle

import numpy as np
import pytest
import torch
from helpers import run_cli

pytest.importorskip("sionna")
h5py = pytest.importorskip("h5py")

from sigplex.core.errors import UserError
from sigplex.plugins.rf_modrec.data import FrameSet, unit_power
from sigplex.plugins.rf_modrec.metrics import confusion, scores, snr_key

TINY = ["--set", "data.train_per=3", "--set", "data.val_per=1", "--set", "data.test_per=2",
        "--set", "data.snrs=[-10, 0, 10, 18]", "--set", "trainer.batch_size=16", "--set", "trainer.val_every=2",
        "--set", "trainer.checkpoint_every=2",
        "--set", "model.options={dims: [8, 16], depths: [1, 1], heads: [1, 2]}"]


# --- metrics and frames -------------------------------------------------------------------
def test_snr_keys():
    assert [snr_key(s) for s in (-20, -2, 0, 18, 2.5)] == ["acc_snr_m20", "acc_snr_m2", "acc_snr_0", "acc_snr_18",
                                                          "acc_snr_2p5"]


def test_scores_per_snr_mean_and_high_snr():
    y = np.array([0, 1, 0, 1, 0, 1])
    snr = np.array([-10, -10, 0, 0, 10, 10], np.float32)
    pred = np.array([1, 0, 0, 0, 0, 1])  # 0 %, 50 %, 100 %
    logits = np.eye(2)[pred] * 5.0
    s = scores(logits, y, snr, high_snr=10)
    assert s["acc_snr_m10"] == 0 and s["acc_snr_0"] == 0.5 and s["acc_snr_10"] == 1
    assert s["acc_mean"] == pytest.approx(0.5) and s["acc_high"] == 1 and s["accuracy"] == pytest.approx(0.5)
    assert s["loss"] > 0
    np.testing.assert_allclose(confusion(pred, y, 2), [[2 / 3, 1 / 3], [2 / 3, 1 / 3]])  # rows: true class


def test_fresh_noise_frames_are_unit_power_seeded_and_at_their_snr():
    clean = unit_power(np.random.default_rng(0).standard_normal((4, 2, 4096)).astype(np.float32))
    fs = FrameSet(clean, [0, 1, 2, 3], [0.0, 10.0, -10.0, 20.0], clean=clean, fresh_noise=True)
    torch.manual_seed(1)
    a = fs[1]["x"]
    torch.manual_seed(1)
    assert torch.equal(a, fs[1]["x"])
    assert not torch.equal(a, fs[1]["x"])  # a new draw on the next access
    for i, snr in enumerate([0.0, 10.0, -10.0, 20.0]):
        x = fs[i]["x"]
        assert float(x.square().sum(0).mean()) == pytest.approx(1.0, rel=1e-4)
        # the clean frame (rotated by an unknown phase) explains signal / (signal + noise) of the power
        c = torch.complex(fs.clean[i, 0], fs.clean[i, 1])
        z = torch.complex(x[0], x[1])
        share = float((z * c.conj()).mean().abs() ** 2 / c.abs().square().mean())
        assert share == pytest.approx(1 / (1 + 10 ** (-snr / 10)), abs=0.03)
    fixed = FrameSet(clean, [0, 1, 2, 3], [0.0] * 4)
    assert torch.equal(fixed[2]["x"], torch.from_numpy(clean[2]))


# --- end to end ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def teacher_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("rf") / "teacher"
    res = run_cli("train", "--plugin", "rf_modrec", "--max-steps", 3, "--out", out, *TINY)
    assert res.returncode == 0, res.stderr
    assert "v1 task contract" not in res.stderr
    return out


def radioml_pickle(path, n=2, mods=("QPSK", "WBFM", "GFSK"), snrs=(0, 10)):
    from sigplex.datasets.rf.generator import RADIOML_CLASSES, generate

    g = generate(n, snrs=snrs, classes=mods, seed=9)
    data = {(m, int(s)): g["x"][(g["y"] == i) & (g["snr"] == s)] for i, m in enumerate(mods) for s in snrs}
    path.write_bytes(pickle.dumps(data, protocol=2))
    assert all(m in RADIOML_CLASSES for m in mods)
    return g


def test_run_records_metrics_plots_and_state(teacher_run):
    summary = json.loads((teacher_run / "summary.json").read_text())
    test = summary["test"]
    assert {"accuracy", "acc_mean", "acc_high", "acc_snr_m10", "acc_snr_0", "acc_snr_10", "acc_snr_18"} <= set(test)
    rows = (teacher_run / "plots" / "accuracy_by_snr.csv").read_text().splitlines()
    assert rows[0] == "snr_db,accuracy,frames" and [r.split(",")[0] for r in rows[1:]] == ["-10", "0", "10", "18"]
    assert rows[1].split(",")[2] == str(2 * 11)  # test_per x 11 classes
    for png in ("accuracy_vs_snr.png", "confusion_high_snr.png"):
        assert (teacher_run / "plots" / png).read_bytes()[:4] == b"\x89PNG"
    card = (teacher_run / "MODEL_CARD.md").read_text()
    assert "modulation" in card.lower()


def test_prepared_state_round_trips_and_predicts(teacher_run, tmp_path):
    from sigplex.core.api import load_run
    from sigplex.datasets.rf.generator import RADIOML_CLASSES

    predictor = load_run(teacher_run)
    state = predictor.prepared.state
    assert state["classes"] == list(RADIOML_CLASSES) and state["n_samples"] == 128
    assert predictor.prepared.train is None
    frames = np.random.default_rng(0).standard_normal((4, 2, 128)).astype(np.float32)
    out = predictor.predict(frames)
    assert out["probabilities"].shape == (4, 11)
    np.testing.assert_allclose(out["probabilities"].sum(1), 1.0, rtol=1e-5)
    # [N, L, 2] layout and a scaled copy give the same answer (frames are normalised to unit power)
    again = predictor.predict(10 * frames.transpose(0, 2, 1))
    np.testing.assert_allclose(again["probabilities"], out["probabilities"], atol=1e-5)
    with pytest.raises(UserError, match=r"shape \[4, 3, 128\]"):
        predictor.predict(np.zeros((4, 3, 128), np.float32))


def test_cli_predict_npy_h5_and_pickle_to_csv(teacher_run, tmp_path):
    x = np.random.default_rng(1).standard_normal((3, 128, 2)).astype(np.float32)
    np.save(tmp_path / "frames.npy", x)
    with h5py.File(tmp_path / "frames.h5", "w") as f:
        f["X"] = x
    radioml_pickle(tmp_path / "frames.pkl")
    for name, n in (("frames.npy", 3), ("frames.h5", 3), ("frames.pkl", 12)):
        out = tmp_path / f"{name}.csv"
        res = run_cli("predict", "--checkpoint", teacher_run, "--input", tmp_path / name, "--output", out)
        assert res.returncode == 0, res.stderr
        rows = list(csv.DictReader(out.read_text().splitlines()))
        assert len(rows) == n
        assert abs(sum(float(rows[0][f"prob_{c}"]) for c in ("8PSK", "QPSK", "WBFM", "AM-SSB")) - 1) < 1.0
        probs = np.array([[float(r[k]) for k in r if k.startswith("prob_")] for r in rows])
        np.testing.assert_allclose(probs.sum(1), 1.0, atol=2e-3)
        assert rows[0]["predicted"] in {k[5:] for k in rows[0] if k.startswith("prob_")}
        if name.endswith(".pkl"):
            assert {r["label"] for r in rows} == {"GFSK", "QPSK", "WBFM"} and {r["snr_db"] for r in rows} == {"0", "10"}
    bad = tmp_path / "bad.npy"
    np.save(bad, np.zeros((2, 5, 7), np.float32))
    res = run_cli("predict", "--checkpoint", teacher_run, "--input", bad, "--output", tmp_path / "bad.csv")
    assert res.returncode == 2 and "bad.npy has shape [2, 5, 7]; expected IQ frames" in res.stderr
    assert "Traceback" not in res.stderr


def test_cli_evaluate_on_a_radioml_pickle(teacher_run, tmp_path):
    radioml_pickle(tmp_path / "RML.pkl", n=3)
    res = run_cli("evaluate", "--checkpoint", teacher_run, "--data", tmp_path / "RML.pkl")
    assert res.returncode == 0, res.stderr
    assert "acc_snr_0" in res.stdout and "acc_snr_10" in res.stdout and "acc_high" in res.stdout


def test_train_on_a_radioml_file_takes_its_classes(tmp_path):
    from sigplex.core.api import fit, load_run

    radioml_pickle(tmp_path / "RML.pkl", n=6)
    run = fit("rf_modrec", data=tmp_path / "RML.pkl", out=tmp_path / "run", max_steps=2,
              overrides={"model.name": "kd_cnn", "trainer.batch_size": 8, "trainer.val_every": 2})
    assert load_run(run).prepared.state["classes"] == ["GFSK", "QPSK", "WBFM"]


def test_student_distils_from_the_clst_run(teacher_run, tmp_path):
    from sigplex.core.api import fit

    run = fit("rf_modrec", out=tmp_path / "student", max_steps=2, distill_from=teacher_run,
              overrides={"model.name": "kd_mobilenet", "data.train_per": 2, "data.val_per": 1, "data.test_per": 1,
                         "data.snrs": [0, 10], "trainer.batch_size": 16, "trainer.val_every": 2,
                         "distill.alpha": 0.7, "distill.temperature": 3.0})
    header = (run.path / "metrics.csv").read_text().splitlines()[0].split(",")
    assert "distill_loss" in header and "task_loss" in header


def test_cli_predict_a_sigmf_capture_frame_by_frame(teacher_run, tmp_path):
    """A software-radio recording (SigMF) is cut into consecutive 128-sample frames, each row timed."""
    rng = np.random.default_rng(2)
    samples = rng.integers(-2000, 2000, size=(1000, 2)).astype("<i2")
    samples.tofile(tmp_path / "capture.sigmf-data")
    (tmp_path / "capture.sigmf-meta").write_text(json.dumps(
        {"global": {"core:datatype": "ci16_le", "core:sample_rate": 200000.0, "core:version": "1.0.0"},
         "captures": [{"core:sample_start": 0}], "annotations": []}))
    out = tmp_path / "capture.csv"
    res = run_cli("predict", "--checkpoint", teacher_run, "--input", tmp_path / "capture.sigmf-meta", "--output", out)
    assert res.returncode == 0, res.stderr
    rows = list(csv.DictReader(out.read_text().splitlines()))
    assert len(rows) == 1000 // 128
    assert [r["start_sample"] for r in rows[:3]] == ["0", "128", "256"] and rows[1]["start_s"] == "0.000640"
    # the same frames given as an array get the same probabilities
    from sigplex.core.api import load_run

    frames = samples[: 7 * 128].astype(np.float32).reshape(7, 128, 2)
    direct = load_run(teacher_run).predict(frames)["probabilities"]
    got = np.array([[float(r[k]) for k in r if k.startswith("prob_")] for r in rows])
    np.testing.assert_allclose(got, direct, atol=1e-4)


def test_batch_prediction_writes_one_combined_table(teacher_run, tmp_path):
    rng = np.random.default_rng(2)
    (tmp_path / "in").mkdir()
    for name, n in (("a.npy", 2), ("b.npy", 3)):
        np.save(tmp_path / "in" / name, rng.standard_normal((n, 2, 128)).astype(np.float32))
    res = run_cli("predict", "--checkpoint", teacher_run, "--input", tmp_path / "in", "--output", tmp_path / "out")
    assert res.returncode == 0, res.stderr
    rows = list(csv.DictReader((tmp_path / "out" / "all_predictions.csv").open()))
    assert [r["input"].rsplit("/", 1)[-1] for r in rows] == ["a.npy"] * 2 + ["b.npy"] * 3
    per_file = list(csv.DictReader((tmp_path / "out" / "b.csv").open()))
    assert [{k: v for k, v in r.items() if k != "input"} for r in rows[2:]] == per_file


def test_hostile_inputs_are_answered_or_refused_in_one_line(teacher_run, tmp_path):
    """The core's harness on this task's sample inputs and its format's variants: predict, serve, evaluate."""
    from helpers import check_hostile

    import sigplex.core as sp

    report = check_hostile(sp.load_run(teacher_run), tmp_path, ["--checkpoint", teacher_run], "frames.npy")
    assert report["ok"] >= 2 and report["http_413"] >= 2, report
