"""ONNX exports with dynamic axes and provenance, and the onnxruntime engine standing in for torch in predict."""
import json

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
    meta = ort.model.metadata()
    assert meta["sigplex.plugin"] == "example" and len(meta["sigplex.checkpoint_sha256"]) == 64
    np.save(tmp_path / "x.npy", x[0])
    out = run_cli("predict", "--checkpoint", run, "--engine", "onnxruntime", "--input", tmp_path / "x.npy",
                  "--output", tmp_path / "y.npy")
    assert out.returncode == 0, out.stderr
    assert json.loads((tmp_path / "y.npy.json").read_text())["engine"] == "onnxruntime"
    assert np.abs(np.load(tmp_path / "y.npy") - torch_out[0]).max() <= 1e-4
