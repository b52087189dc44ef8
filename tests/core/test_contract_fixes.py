"""Regression tests for the contract-v2 fixes: messages, metrics time, install hints, notices, state files, cards."""
import csv
import json
import pickle

import pytest
import torch
from helpers import needs_example, run_cli

from sigplex.core.config import TaskConfig, resolve_config
from sigplex.core.errors import UserError
from sigplex.core.plugins import PluginManager, hookimpl
from sigplex.core.task import Prepared, TaskSpec, load_state, save_state

FAST = ["--set", "model.channels=4", "--set", "model.depth=1", "--set", "trainer.val_every=5",
        "--set", "trainer.log_every=1"]


def test_override_errors_name_their_source_once():
    with pytest.raises(UserError) as cli:
        resolve_config(TaskConfig, overrides=["trainer.bogus=1"], override_label="--set")
    assert str(cli.value) == "--set: trainer.bogus: unknown key"
    with pytest.raises(UserError) as api:
        resolve_config(TaskConfig, overrides={"trainer.bogus": 1})
    assert str(api.value) == "overrides: trainer.bogus: unknown key"


def test_fitted_state_round_trips_without_pickle(tmp_path):
    import numpy as np

    state = {"mean": torch.arange(3.0), "weights": np.ones((2, 2), np.float32), "columns": ["a", "b"], "n": 3}
    save_state(state, tmp_path)
    back = load_state(tmp_path)
    assert torch.equal(back["mean"], state["mean"]) and isinstance(back["weights"], np.ndarray)
    assert back["columns"] == ["a", "b"] and back["n"] == 3
    with pytest.raises(TypeError, match="prepared.state\\['bad'\\]"):
        save_state({"bad": object()}, tmp_path / "x")
    assert Prepared(config=None, state=state).without_data().train is None


def test_third_party_missing_dependency_names_its_own_package():
    class Plugin:
        @hookimpl
        def register_tasks(self, register):
            register(TaskSpec("t", "needs a module that is not here", "x:y", requires=("no_such_module_xyz",),
                              extra="gpu"))

    pm = PluginManager(entry_points=False)
    record = pm.add_plugin(Plugin(), name="thirdparty", distribution="sigplex-thirdparty")
    assert record.status == "unavailable"
    assert "pip install 'sigplex-thirdparty[gpu]'" in record.reason and "sigplex[gpu]" not in record.reason


def test_unknown_and_deprecated_hooks_are_one_plain_line(capsys):
    from sigplex.core import errors

    class Old:
        @hookimpl
        def register_backbones(self, register):
            raise AssertionError("deprecated hooks are not called")

    errors.NOTICES["stderr"] = True
    try:
        PluginManager(entry_points=False).add_plugin(Old(), name="old_style")
    finally:
        errors.NOTICES["stderr"] = False
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["warning: plugin 'old_style' implements register_backbones, which is deprecated and ignored: "
                   "register models through TaskSpec.models"]


@needs_example
def test_run_files_time_curves_card_and_bad_state(tmp_path):
    run = tmp_path / "run"
    out = run_cli("train", "--plugin", "example", "--max-steps", 6, "--out", run, *FAST)
    assert out.returncode == 0, out.stderr
    rows = list(csv.DictReader(open(run / "metrics.csv")))
    times = [float(r["time_s"]) for r in rows]
    assert 0 <= times[0] < 600 and times == sorted(times)  # seconds since the run started, not Unix time
    assert (run / "plots" / "curves.png").stat().st_size > 1000
    card = json.loads((run / "card.json").read_text())
    assert card["task"] == "denoise" and card["model"]["parameters"] > 0
    assert card["data"]["splits"] == {"train": 512, "val": 64, "test": 64}
    assert "synthetic" in card["limitations"] and card["metrics"]["test"]
    text = (run / "MODEL_CARD.md").read_text()
    assert text.startswith("---\nlibrary_name: sigplex") and "## Intended use" in text and "## Limitations" in text
    (run / "MODEL_CARD.md").unlink()
    assert run_cli("card", run).returncode == 0 and (run / "MODEL_CARD.md").is_file()

    # a state.pt that weights_only refuses is a one-line user error on --resume, not an internal error
    last = sorted((run / "checkpoints").iterdir())[-1]
    (last / "state.pt").write_bytes(pickle.dumps(Exception("not tensors")))
    meta = json.loads((last / "meta.json").read_text())
    from sigplex.core.fileio import sha256_file

    meta["files"]["state.pt"] = sha256_file(last / "state.pt")
    (last / "meta.json").write_text(json.dumps(meta))
    resumed = run_cli("train", "--resume", run, "--plugin", "example", "--max-steps", 8)
    assert resumed.returncode == 2, resumed.stderr
    assert "weights_only" in resumed.stderr and len(resumed.stderr.strip().splitlines()) == 1


@needs_example
def test_failed_run_leaves_no_debris_and_out_is_reusable(tmp_path):
    run = tmp_path / "run"
    bad = run_cli("train", "--plugin", "example", "--out", run, "--set", "trainer.monitor=nope", *FAST,
                  "--max-steps", 6)
    assert bad.returncode == 2 and "trainer.monitor" in bad.stderr
    assert not run.exists()
    assert run_cli("train", "--plugin", "example", "--out", run, *FAST, "--max-steps", 2).returncode == 0


def test_write_prediction_may_return_one_path(tmp_path):
    from sigplex.core.api import write_outputs

    class T:
        def write_prediction(self, prediction, output, prepared):
            output.write_text("x")
            return output

    assert write_outputs(T(), None, tmp_path / "o.txt", None, [tmp_path / "o.txt"]) == [tmp_path / "o.txt"]
