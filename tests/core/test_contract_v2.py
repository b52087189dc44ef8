"""Plugins written against the v2 task contract (tests/fixtures/sigplex-v2-plugin) keep working.

The fixture overrides ``prepare_model`` and ``move_batch``, has a two-argument ``output_files``,
returns ``(loss, logs)`` from ``training_step`` and keeps its card text in class attributes.
"""
import csv
import json
from importlib.metadata import entry_points

import numpy as np
import pytest
from helpers import run_cli

import sigplex.core as sp

pytestmark = pytest.mark.skipif(not any(ep.name == "v2demo" for ep in entry_points(group="sigplex.plugins")),
                                reason="pip install --no-deps tests/fixtures/sigplex-v2-plugin (tox does)")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("v2") / "run"
    done = run_cli("train", "--plugin", "v2demo", "--out", out)
    assert done.returncode == 0, done.stderr
    return out


def test_a_v2_run_trains_scores_and_records_its_card(run):
    summary = json.loads((run / "summary.json").read_text())
    assert summary["test"]["accuracy"] > 0.8
    assert sp.evaluate(run)["accuracy"] == pytest.approx(summary["test"]["accuracy"], abs=1e-6)
    card = json.loads((run / "card.json").read_text())
    assert card["intended_use"] == "A test fixture of the v2 task contract."
    assert card["license"]["data"] == "generated, CC0"
    with open(run / "metrics.csv", newline="") as fh:
        assert "accuracy" in next(csv.reader(fh))  # the logs training_step returned


def test_the_v2_task_warns_once_per_replacement_and_keeps_working(monkeypatch):
    from sigplex.core import errors
    from sigplex.core.loading import load_task
    from sigplex.core.task import StepResult

    monkeypatch.setattr(errors, "_SEEN", set())  # each notice is given once per process; earlier tests gave it

    with pytest.warns(DeprecationWarning, match=r"v2 task contract.*card = TaskCard.*prepare_model\(model, prepared\) "
                                                r"-> .*move_batch\(batch, device\) -> .*output_files\(output, prepared, "
                                                r"source=None\)"):
        _, task, cfg = load_task("v2demo")
    assert task.card.intended_use == "A test fixture of the v2 task contract."
    assert task.output_files("out.csv", None, source="in.npy") == ["out.csv"]
    from sigplex.core.compat import step_result

    with pytest.warns(DeprecationWarning, match=r"training_step returning \(loss, logs\[, outputs\]\) -> StepResult"):
        step = step_result((1.0, {"accuracy": 0.5}), task)
    assert step == StepResult(1.0, {"accuracy": 0.5}, None)


def test_a_v2_run_predicts_and_exports(run, tmp_path):
    x = np.sin(np.arange(64) * 2 * np.pi * 7 / 64).astype(np.float32)[None]
    np.save(tmp_path / "x.npy", x)
    done = run_cli("predict", "--checkpoint", run, "--input", tmp_path / "x.npy", "--output", tmp_path / "p.csv")
    assert done.returncode == 0, done.stderr
    rows = np.loadtxt(tmp_path / "p.csv", delimiter=",", skiprows=1, ndmin=2)
    assert rows.shape == (1, 2) and rows[0, 1] > 0.5
    done = run_cli("export", "--checkpoint", run, "--format", "onnx", "--output", tmp_path / "m.onnx")
    assert done.returncode == 0, done.stderr
