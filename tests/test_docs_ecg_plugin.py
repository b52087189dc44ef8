"""The ECG beat plugin of docs/plugin-authoring.md, extracted from the page: train, evaluate, predict, LoRA, ONNX.

The guide promises a complete new-domain plugin in at most 120 lines of Python; this test keeps the
promise and the code honest. The plugin is registered in-process (no install) with
``PluginManager(entry_points=False).add_plugin``.
"""
import csv
import importlib
import json
import re
import sys

import numpy as np
import pytest
import torch
from helpers import ROOT

import sigplex.core as sp
from sigplex.core.api import load_run
from sigplex.core.plugins import PluginManager

PAGE = ROOT / "docs" / "plugin-authoring.md"
FILE_BLOCK = re.compile(r'```python title="ecg_beats/(\w+\.py)"\n(.*?)```', re.S)
FAST = {"trainer.batch_size": 32, "optim.lr": 3e-3, "trainer.val_every": 20, "trainer.checkpoint_every": 20,
        "trainer.progress": "none", "trainer.tensorboard": False}
MAX_LINES = 120


def code_lines(text: str) -> int:
    """Non-blank lines that are not comments (docstrings count)."""
    return sum(1 for line in text.splitlines() if line.strip() and not line.strip().startswith("#"))


def beats_of(module, n: int, seed: int):
    data = module.DataSection(n_beats=n, seed=seed)
    return module.synthetic_beats(data)


@pytest.fixture(scope="module")
def plugin(tmp_path_factory):
    files = dict(FILE_BLOCK.findall(PAGE.read_text()))
    assert set(files) == {"__init__.py", "model.py", "task.py"}
    root = tmp_path_factory.mktemp("ecg_plugin")
    (root / "ecg_beats").mkdir()
    for name, text in files.items():
        (root / "ecg_beats" / name).write_text(text)
    sys.path.insert(0, str(root))
    try:
        module = importlib.import_module("ecg_beats")
        pm = PluginManager(entry_points=False)
        record = pm.add_plugin(module, name="ecg_beats")
        assert record.status == "ok", record.reason
        yield files, pm, importlib.import_module("ecg_beats.task")
    finally:
        sys.path.remove(str(root))
        for name in [m for m in sys.modules if m == "ecg_beats" or m.startswith("ecg_beats.")]:
            del sys.modules[name]


@pytest.fixture(scope="module")
def base_run(plugin, tmp_path_factory):
    _, pm, _ = plugin
    return sp.fit("ecg_beats", pm=pm, max_steps=40, overrides=FAST, out=tmp_path_factory.mktemp("runs") / "base")


def test_the_plugin_is_at_most_120_lines_as_the_guide_says(plugin):
    files, _, _ = plugin
    total = sum(code_lines(text) for text in files.values())
    assert total <= MAX_LINES
    stated = re.search(r"\*\*(\d+) lines of Python\*\*", PAGE.read_text())
    assert stated and int(stated.group(1)) == total, "update the line count stated in docs/plugin-authoring.md"


def test_trains_evaluates_and_keeps_its_fitted_state(plugin, base_run, tmp_path):
    _, pm, task_module = plugin
    summary = base_run.summary
    assert summary["val"]["macro_f1"] > 0.8 and summary["test"]["accuracy"] > 0.8
    assert (base_run.path / "plots" / "p_pvc.png").is_file() and (base_run.path / "MODEL_CARD.md").is_file()
    assert "not for diagnosis" in (base_run.path / "MODEL_CARD.md").read_text()

    predictor = load_run(base_run, pm=pm)
    state = predictor.prepared.state
    assert state["classes"] == ["normal", "pvc"] and state["mean"].shape == (128,) and state["std"] > 0
    assert json.loads((base_run.path / "prepared.json").read_text())["arrays"] == {"mean": "numpy"}
    assert set(predictor.evaluate()) == {"accuracy", "macro_f1"}

    beats, labels = beats_of(task_module, 200, seed=11)  # beats the run never saw, evaluated with its state
    np.savez(tmp_path / "more.npz", beats=beats, labels=labels)
    assert predictor.evaluate(data=tmp_path / "more.npz")["accuracy"] > 0.8
    np.savez(tmp_path / "bad.npz", beats=beats, labels=labels + 1)
    with pytest.raises(sp.UserError, match="labels"):
        predictor.evaluate(data=tmp_path / "bad.npz")


def test_predicts_per_beat_probabilities_to_csv(plugin, base_run, tmp_path):
    _, pm, task_module = plugin
    predictor = load_run(base_run, pm=pm)
    beats, labels = beats_of(task_module, 20, seed=5)
    probabilities = predictor.predict(beats)
    assert probabilities.shape == (20, 2) and np.allclose(probabilities.sum(1), 1, atol=1e-5)
    assert predictor.predict(beats[0]).shape == (1, 2)
    with pytest.raises(sp.UserError, match="expected \\[n_beats, 128\\]"):
        predictor.predict(beats[:, :100])

    (tmp_path / "in").mkdir()
    np.save(tmp_path / "in" / "a.npy", beats[:12])
    np.savetxt(tmp_path / "in" / "b.csv", beats[12:], delimiter=",")
    (tmp_path / "in" / "junk.npy").write_text("not an array")
    results = list(predictor.predict_many([tmp_path / "in"], tmp_path / "out"))
    assert [r.status for r in results] == ["ok", "ok", "failed"]
    assert "expected a .npy array" in results[2].error and results[2].error_type == "UserError"
    assert (tmp_path / "out" / "manifest.jsonl").is_file() and (tmp_path / "out" / "a.csv.json").is_file()
    rows = []
    for name in ("a.csv", "b.csv"):
        with open(tmp_path / "out" / name, newline="") as fh:
            rows += list(csv.DictReader(fh))
    assert list(rows[0]) == ["beat", "class", "p_normal", "p_pvc"] and len(rows) == 20
    predicted = [int(r["class"] == "pvc") for r in rows]
    assert np.mean(np.array(predicted) == labels) > 0.8
    assert np.allclose([float(r["p_pvc"]) for r in rows], probabilities[:, 1], atol=1e-3)


def test_lora_adapter_fine_tunes_only_the_adapter(plugin, base_run, tmp_path):
    _, pm, task_module = plugin
    run = sp.fit("ecg_beats", pm=pm, adapter="lora:r=4", init_from=base_run, max_steps=10, overrides=FAST,
                 out=tmp_path / "lora")
    assert json.loads((run.path / "run.json").read_text())["adapter"] == "lora:r=4"
    predictor = load_run(run, pm=pm)
    lora = [n for n, p in predictor.model.named_parameters() if p.requires_grad]
    assert lora and all("lora" in n for n in lora)
    beats, _ = beats_of(task_module, 16, seed=3)
    merged = load_run(run, pm=pm, merge=True)
    np.testing.assert_allclose(merged.predict(beats), predictor.predict(beats), atol=1e-5)


@pytest.mark.slow
def test_onnx_export_matches_pytorch(plugin, base_run, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    from sigplex.core.exporter import export_model

    _, pm, _ = plugin
    predictor = load_run(base_run, pm=pm, merge=True)
    example = predictor.task.example_input(predictor.prepared)
    result = export_model(predictor.model, example, format="onnx", output=tmp_path / "beats.onnx")
    assert result["max_abs_diff"] < 1e-4
    session = ort.InferenceSession(str(tmp_path / "beats.onnx"), providers=["CPUExecutionProvider"])
    (logits,) = session.run(None, {"input": example.numpy()})
    assert logits.shape == (1, 2)


@pytest.mark.slow
def test_onnx_batch_axis_is_dynamic(plugin, base_run, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    from sigplex.core.exporter import export_model

    _, pm, task_module = plugin
    predictor = load_run(base_run, pm=pm, merge=True)
    example = predictor.task.example_input(predictor.prepared)
    export_model(predictor.model, example, format="onnx", output=tmp_path / "beats.onnx")
    session = ort.InferenceSession(str(tmp_path / "beats.onnx"), providers=["CPUExecutionProvider"])
    x = task_module.model_input(beats_of(task_module, 12, seed=1)[0], predictor.prepared.state)
    (logits,) = session.run(None, {"input": x.numpy()})
    with torch.no_grad():
        np.testing.assert_allclose(logits, predictor.model(x).numpy(), atol=1e-4)
