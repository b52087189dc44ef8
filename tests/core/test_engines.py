"""ONNX exports with dynamic axes and provenance, and the onnxruntime engine standing in for torch in predict."""
import json
import shutil

import numpy as np
import pytest
import torch
from helpers import needs_example, run_cli

pytest.importorskip("onnxruntime")


def test_export_checks_a_second_shape_along_dynamic_axes(tmp_path):
    from sigplex.core.exporter import export_model

    net = torch.nn.Sequential(torch.nn.Conv1d(1, 4, 5, padding=2), torch.nn.ReLU(), torch.nn.Conv1d(4, 1, 1)).eval()
    res = export_model(net, torch.randn(1, 1, 64), format="onnx", output=tmp_path / "m.onnx",
                       dynamic_axes={0: {0: "batch", 2: "time"}}, metadata={"sigplex.plugin": "x"})
    assert res["max_abs_diff"] <= 1e-4
    import onnx

    proto = onnx.load(str(tmp_path / "m.onnx"))
    assert {p.key: p.value for p in proto.metadata_props} == {"sigplex.plugin": "x"}
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param == "batch" and dims[2].dim_param == "time" and dims[1].dim_value == 1


@needs_example
@pytest.mark.slow
def test_onnxruntime_engine_matches_torch(tmp_path):
    import sigplex.core as sp
    from sigplex.core.engines import OnnxModel

    run = tmp_path / "run"
    trained = run_cli("train", "--plugin", "example", "--max-steps", 3, "--out", run, "--set", "model.channels=4")
    assert trained.returncode == 0
    x = np.random.default_rng(0).normal(size=(20, 96)).astype(np.float32)  # batch 20, another length than export's
    torch_out = sp.load_run(run).predict(x)
    ort = sp.load_run(run, engine="onnxruntime")
    assert isinstance(ort.model, OnnxModel) and (run / "export" / "model.onnx").is_file()
    assert np.abs(ort.predict(x) - torch_out).max() <= 1e-4
    options = ort.model.session.get_session_options()  # idle workers leave the cores to the torch work around
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    meta = ort.model.metadata()
    assert meta["sigplex.plugin"] == "example" and len(meta["sigplex.checkpoint_sha256"]) == 64
    np.save(tmp_path / "x.npy", x[0])
    out = run_cli("predict", "--checkpoint", run, "--engine", "onnxruntime", "--input", tmp_path / "x.npy",
                  "--output", tmp_path / "y.npy")
    assert out.returncode == 0, out.stderr
    assert json.loads((tmp_path / "y.npy.json").read_text())["engine"] == "onnxruntime"
    assert np.abs(np.load(tmp_path / "y.npy") - torch_out[0]).max() <= 1e-4


@needs_example
def test_engines_agree_within_the_tasks_tolerance_and_auto_records_its_choice(tmp_path):
    import sigplex.core as sp
    from sigplex.core.cache import cache_root
    from sigplex.core.engines import ENGINES

    torch._dynamo.reset()
    run = sp.fit("example", out=tmp_path / "run", max_steps=3, overrides=["model.channels=4", "trainer.progress=none"])
    x = np.random.default_rng(0).normal(size=(5, 80)).astype(np.float32)
    reference = sp.load_run(run.path).predict(x)
    tolerance = sp.load_run(run.path).task.engine_tolerance
    np.save(tmp_path / "x.npy", x[0])
    shutil.rmtree(cache_root() / "probes" / "engine", ignore_errors=True)  # a deterministic run's earlier choice
    first = run_cli("predict", "--checkpoint", run.path, "--engine", "auto", "--input", tmp_path / "x.npy",
                    "--output", tmp_path / "y.npy")
    assert first.returncode == 0, first.stderr
    record = json.loads((tmp_path / "y.npy.json").read_text())
    choice = record["engine_choice"]
    assert record["engine"] == choice["engine"] in ENGINES and choice["requested"] == "auto"
    assert set(choice["latency_s"]) == set(ENGINES), choice  # every engine ran on the sample input
    assert choice["probe_s"] > 0 and "cached" not in choice
    assert list((cache_root() / "probes" / "engine").glob("*.json"))
    assert not (run.path / "export").exists()  # the probe's export lives in the machine cache
    again = run_cli("predict", "--checkpoint", run.path, "--engine", "auto", "--input", tmp_path / "x.npy",
                    "--output", tmp_path / "y2.npy")
    assert again.returncode == 0, again.stderr
    cached = json.loads((tmp_path / "y2.npy.json").read_text())["engine_choice"]
    assert cached["cached"] is True and cached["engine"] == choice["engine"]
    assert np.abs(np.load(tmp_path / "y2.npy") - reference[0]).max() <= tolerance * max(1.0, np.abs(reference).max())
    for engine in ENGINES:  # (an explicit onnxruntime engine exports into the run, as platform export would)
        out = sp.load_run(run.path, engine=engine).predict(x)
        assert np.abs(out - reference).max() <= tolerance * max(1.0, np.abs(reference).max()), engine
    metrics = {e: sp.evaluate(run.path, engine=e) for e in ("torch", "compiled")}
    assert metrics["compiled"]["mse"] == pytest.approx(metrics["torch"]["mse"], rel=1e-3)


def test_auto_keeps_torch_unless_another_engine_is_clearly_faster():
    from sigplex.core.engines import MARGIN, choose_engine

    assert choose_engine({"torch": 1.0, "compiled": 1.0 - MARGIN / 2, "onnxruntime": 1.2}) == "torch"
    assert choose_engine({"torch": 1.0, "compiled": 0.9, "onnxruntime": 0.5}) == "onnxruntime"
    assert choose_engine({"torch": 1.0}) == "torch"
    assert choose_engine({"compiled": 2.0, "onnxruntime": 1.0}) == "onnxruntime"  # torch failed to run


def test_outputs_agree_measures_relative_to_scale():
    from sigplex.core.engines import outputs_agree

    ref = {"a": torch.tensor([100.0, -50.0]), "b": torch.tensor([0.1])}
    near = {"a": torch.tensor([100.05, -50.0]), "b": torch.tensor([0.1])}
    assert outputs_agree(ref, near, 1e-3) == pytest.approx(5e-4, rel=1e-3)
    assert outputs_agree(ref, {"a": torch.tensor([100.5, -50.0]), "b": torch.tensor([0.1])}, 1e-3) is None
    assert outputs_agree(torch.zeros(2), torch.zeros(3), 1.0) is None  # shapes differ
    assert outputs_agree(torch.zeros(2), torch.tensor([0.0, float("nan")]), 1.0) is None


def test_weights_sha256_is_read_once_and_follows_a_changed_file(tmp_path, monkeypatch):
    import hashlib

    from sigplex.core import fileio

    path = tmp_path / "model.safetensors"
    path.write_bytes(b"first weights")
    reads = []
    real = fileio.sha256_file
    monkeypatch.setattr(fileio, "sha256_file", lambda p: reads.append(p) or real(p))
    assert fileio.weights_sha256(path) == hashlib.sha256(b"first weights").hexdigest()
    assert fileio.weights_sha256(path) == hashlib.sha256(b"first weights").hexdigest()
    assert len(reads) == 1  # the second ask is answered from memory
    path.write_bytes(b"other weights, longer")
    assert fileio.weights_sha256(path) == hashlib.sha256(b"other weights, longer").hexdigest()
    assert len(reads) == 2
