"""ofdm_chest through the CLI: fine-tune the shipped weights (cpu60 recipe), evaluate, predict (from a run or
the shipped weights without --checkpoint), bad input."""
import json

import numpy as np
import pytest
from helpers import run_cli

pytest.importorskip("sionna")

SMALL = ["--set", "data.train_size=32", "--set", "data.val_size=12", "--set", "data.test_size=12",
         "--set", "trainer.val_every=2", "--set", "trainer.checkpoint_every=2", "--set", "trainer.eval_batch_size=12"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    from sigplex.plugins.ofdm_chest.pretrained import WEIGHTS

    tmp = tmp_path_factory.mktemp("ofdm")
    env = {"SIGPLEX_CACHE": str(tmp / "cache")}
    out = tmp / "run"
    res = run_cli("train", "--plugin", "ofdm_chest", "--config", "cpu60", "--init-from", WEIGHTS, "--max-steps", 2,
                  "--out", out, *SMALL, env=env)
    assert res.returncode == 0, res.stderr
    assert "v1 task contract" not in res.stderr
    return out


def test_fine_tuned_run_keeps_the_shipped_quality(run_dir):
    summary = json.loads((run_dir / "summary.json").read_text())
    test = summary["test"]
    assert summary["steps"] == 2
    # two small bf16 steps from the shipped weights cannot undo 60 minutes of training
    assert test["nmse_db"] < test["nmse_db_ls"] - 2.0, test
    table = (run_dir / "plots" / "nmse_table.csv").read_text().splitlines()
    assert table[0] == "axis,lo,hi,n,nmse_db_model,nmse_db_ls,nmse_db_lmmse,nmse_db_genie"
    assert (run_dir / "plots" / "nmse_vs_snr.png").is_file()


def test_predict_writes_estimates_and_refuses_bad_input(run_dir, tmp_path):
    from sigplex.datasets.ofdm import generate

    d = generate(5, 77)
    src = tmp_path / "ls.npz"
    np.savez(src, ls=d["ls"], snr_db=d["cond"][:, 1], delay_spread_ns=d["cond"][:, 2], doppler_hz=d["cond"][:, 3])
    out = tmp_path / "est.npz"
    res = run_cli("predict", "--plugin", "ofdm_chest", "--checkpoint", run_dir, "--input", src, "--output", out)
    assert res.returncode == 0, res.stderr
    with np.load(out) as z:
        assert z["h_hat"].shape == (5, 120, 14) and np.iscomplexobj(z["h_hat"])
        err = np.sum(np.abs(z["h_hat"] - d["h"]) ** 2) / np.sum(np.abs(d["h"]) ** 2)
    assert 10 * np.log10(err) < -3.0
    bad = tmp_path / "bad.npz"
    np.savez(bad, ls=d["ls"][:, :6])
    res = run_cli("predict", "--plugin", "ofdm_chest", "--checkpoint", run_dir, "--input", bad,
                  "--output", tmp_path / "x.npz")
    assert res.returncode == 2
    assert "bad.npz: key 'ls' has shape [5, 6, 2]; expected [N, 12, 2]" in res.stderr
    assert "Traceback" not in res.stderr


def _ls_file(path, n, seed, truth=False):
    from sigplex.datasets.ofdm import generate

    d = generate(n, seed)
    extra = {"h": d["h"]} if truth else {}
    np.savez(path, ls=d["ls"], snr_db=d["cond"][:, 1], delay_spread_ns=d["cond"][:, 2], doppler_hz=d["cond"][:, 3],
             **extra)
    return d


def test_predict_without_checkpoint_uses_the_shipped_weights(tmp_path):
    from sigplex.plugins.ofdm_chest.baselines import ls_linear
    from sigplex.plugins.ofdm_chest.metrics import nmse_db

    d = _ls_file(tmp_path / "ls.npz", 6, 91)
    out = tmp_path / "est.npz"
    res = run_cli("predict", "--plugin", "ofdm_chest", "--input", tmp_path / "ls.npz", "--output", out)
    assert res.returncode == 0, res.stderr
    assert "v1 task contract" not in res.stderr
    with np.load(out) as z:
        h_hat = z["h_hat"]
    assert h_hat.shape == (6, 120, 14)
    cond = np.concatenate([np.zeros((6, 1), np.float32), d["cond"][:, 1:]], 1)
    assert nmse_db(h_hat, d["h"]) < nmse_db(ls_linear(d["ls"], cond), d["h"]) - 1.0  # better than LS
    import sigplex.core as sp
    from sigplex.core.errors import UserError

    with pytest.raises(UserError, match=r"x\.csv: expected a file name ending in \.npz"):
        sp.predict(None, str(tmp_path / "ls.npz"), output=tmp_path / "x.csv", plugin="ofdm_chest")


def test_run_state_round_trip_and_evaluate_data(run_dir, tmp_path):
    import sigplex.core as sp

    predictor = sp.load_run(run_dir)
    assert predictor.prepared.state == {}               # nothing fitted: the config is all predict needs
    assert predictor.config.model.name == "adafortitran" and predictor.config.trainer.precision == "bf16"
    d = _ls_file(tmp_path / "one.npz", 1, 92, truth=True)
    pred = predictor.predict(tmp_path / "one.npz")
    assert pred["h_hat"].shape == (1, 120, 14)
    res = run_cli("evaluate", "--checkpoint", run_dir, "--data", tmp_path / "one.npz")
    assert res.returncode == 0, res.stderr
    metrics = sp.evaluate(run_dir, data=tmp_path / "one.npz")
    from sigplex.plugins.ofdm_chest.metrics import nmse_db

    assert metrics["nmse_db"] == pytest.approx(nmse_db(pred["h_hat"], d["h"]), abs=1e-4)
    assert {"nmse_db_ls", "nmse_db_lmmse", "nmse_db_genie"} <= set(metrics)


def test_evaluate_without_checkpoint_scores_the_shipped_weights(tmp_path):
    import sigplex.core as sp

    _ls_file(tmp_path / "grids.npz", 8, 93, truth=True)
    res = run_cli("evaluate", "--plugin", "ofdm_chest", "--data", tmp_path / "grids.npz", "--json")
    assert res.returncode == 0, res.stderr
    metrics = json.loads(res.stdout)
    shipped = sp.load_pretrained("ofdm_chest").evaluate(tmp_path / "grids.npz")
    assert metrics == pytest.approx(shipped, rel=1e-6)
    assert metrics["nmse_db"] < metrics["nmse_db_ls"] - 1.0      # the shipped model, not an untrained one
    # without --data: the task's own (generated) test set, here made small
    own = json.loads(run_cli("evaluate", "--plugin", "ofdm_chest", "--set", "data.test_size=12", "--json").stdout)
    assert own["nmse_db"] < own["nmse_db_ls"]


def test_hostile_inputs_are_answered_or_refused_in_one_line(tmp_path):
    """The shipped weights through the core's harness: NPZ and .mat variants, bombs, NaN, serve and evaluate."""
    from helpers import check_hostile

    from sigplex.core.loading import load_predictor

    report = check_hostile(load_predictor(None, plugin="ofdm_chest"), tmp_path, ["--plugin", "ofdm_chest"],
                           "grids.npz")
    assert report["ok"] >= 2 and report["http_413"] >= 2
