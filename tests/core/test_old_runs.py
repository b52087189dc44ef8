"""Run folders written by an earlier sigplex still load, predict, evaluate, serve and export.

tests/fixtures/runs-v2 holds two runs of the example plugin made on 2026-12-07, before the core
v3 restructuring: ``base`` (4 steps, channels 4, depth 1) and ``lora`` (``--adapter lora:r=2
--init-from base``, adapter format sigplex-adapter/2). Their plots are left out to keep them small.
"""
import asyncio
import json
import shutil

import numpy as np
import pytest
from helpers import ROOT, needs_example, run_cli

import sigplex.core as sp

pytestmark = needs_example
FIXTURE = ROOT / "tests" / "fixtures" / "runs-v2"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("old_runs")
    shutil.copytree(FIXTURE, root, dirs_exist_ok=True)
    info = json.loads((root / "lora" / "run.json").read_text())
    info["init_from"] = str(root / "base")  # the base moved with the runs
    (root / "lora" / "run.json").write_text(json.dumps(info))
    return root


@pytest.mark.parametrize("name", ["base", "lora"])
def test_an_old_run_evaluates_to_its_summary(runs, name):
    predictor = sp.load_run(runs / name)
    summary = json.loads((runs / name / "summary.json").read_text())
    evaluated = predictor.evaluate()
    assert set(evaluated) == set(summary["test"])
    for key, value in summary["test"].items():
        assert evaluated[key] == pytest.approx(value, rel=1e-5, abs=1e-6), key


@pytest.mark.parametrize("name", ["base", "lora"])
def test_an_old_run_predicts_serves_and_exports(runs, name, tmp_path):
    httpx = pytest.importorskip("httpx")
    pytest.importorskip("onnxruntime")
    from sigplex.core.serve import create_app

    x = np.random.default_rng(0).normal(size=(3, 64)).astype(np.float32)
    predictor = sp.load_run(runs / name)
    expected = predictor.predict(x)
    np.save(tmp_path / "x.npy", x)
    done = run_cli("predict", "--checkpoint", runs / name, "--input", tmp_path / "x.npy", "--output", tmp_path / "y.npy")
    assert done.returncode == 0, done.stderr
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), expected, rtol=0, atol=1e-6)
    assert json.loads((tmp_path / "y.npy.json").read_text())["checkpoint"]
    exported = sp.export(runs / name, format="onnx", output=tmp_path / "m.onnx")
    assert exported["max_abs_diff"] < 1e-4

    async def ask():
        transport = httpx.ASGITransport(app=create_app(predictor))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.post("/predict", json={"inputs": x.tolist()})

    answer = asyncio.run(ask())
    assert answer.status_code == 200, answer.text
    np.testing.assert_allclose(np.array(answer.json()["prediction"]), expected, rtol=0, atol=1e-5)
