"""Plugins written against the v1 task contract keep working for one release: train, predict, export."""
import json
from importlib.metadata import entry_points

import numpy as np
import pytest
from helpers import run_cli

pytestmark = pytest.mark.skipif(not any(ep.name == "v1demo" for ep in entry_points(group="sigplex.plugins")),
                                reason="pip install --no-deps tests/fixtures/sigplex-v1-plugin (tox does)")
FAST = ["--set", "model.channels=8", "--set", "trainer.val_every=10", "--set", "trainer.checkpoint_every=10"]
NOTICE = "warning: plugin sigplex_v1_plugin uses the v1 task contract"


def test_v1_plugin_trains_predicts_exports_with_one_notice(tmp_path):
    run = tmp_path / "run"
    out = run_cli("train", "--plugin", "v1demo", "--max-steps", 12, "--out", run, *FAST,
                  env={"PYTHONWARNINGS": "error"})  # the notice is printed whatever the warning filters are
    assert out.returncode == 0, out.stderr
    assert out.stderr.count(NOTICE) == 1 and "Prepared" in out.stderr
    assert json.loads((run / "run.json").read_text())["contract"] == 1
    assert (run / "plots" / "denoise_example.png").is_file() and (run / "plots" / "curves.png").is_file()

    x = np.sin(np.arange(64) / 3).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    out = run_cli("predict", "--checkpoint", run, "--input", tmp_path / "x.npy", "--output", tmp_path / "y.npy")
    assert out.returncode == 0, out.stderr
    assert out.stderr.count(NOTICE) == 1
    assert np.load(tmp_path / "y.npy").shape == (64,)

    out = run_cli("export", "--checkpoint", run, "--format", "torchscript", "--output", tmp_path / "m.pt")
    assert out.returncode == 0, out.stderr
    assert "max abs diff" in out.stdout


def test_v1_task_through_the_python_api_warns_deprecation(tmp_path):
    import sigplex.core as sp

    with pytest.warns(DeprecationWarning, match="v1 task contract"):
        run = sp.fit("v1demo", overrides={"trainer.max_steps": 4, "model.channels": 4}, out=tmp_path / "r")
    metrics = sp.evaluate(run)
    assert set(metrics) == {"mse", "snr_improvement_db"}
