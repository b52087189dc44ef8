"""The out-of-tree example plugin end to end: train → resume → evaluate → predict → export, CLI and API."""
import json

import numpy as np
import pytest
import torch
from helpers import needs_example, run_cli

pytestmark = needs_example
FAST = ["--set", "model.channels=8", "--set", "trainer.val_every=10", "--set", "trainer.checkpoint_every=10"]


def test_listed_with_its_distribution():
    out = run_cli("plugins", "list", "--json")
    rec = {r["name"]: r for r in json.loads(out.stdout)}["example"]
    assert rec["status"] == "ok" and rec["distribution"] == "sigplex-example-plugin"
    assert [t["name"] for t in rec["tasks"]] == ["denoise"]


def test_cli_train_resume_evaluate_predict_export(tmp_path):
    run = tmp_path / "run"
    out = run_cli("train", "--plugin", "example", "--max-steps", 20, "--out", run, *FAST)
    assert out.returncode == 0, out.stderr
    assert "val: mse" in out.stdout
    for f in ("config.yaml", "run.json", "metrics.csv", "summary.json", "best.json", "plots/denoise_example.png"):
        assert (run / f).is_file(), f
    out = run_cli("train", "--plugin", "example", "--resume", run, "--max-steps", 30)
    assert out.returncode == 0, out.stderr
    assert json.loads((run / "summary.json").read_text())["steps"] == 30

    out = run_cli("evaluate", "--plugin", "example", "--checkpoint", run, "--json")
    metrics = json.loads(out.stdout)
    assert set(metrics) == {"mse", "snr_improvement_db"} and metrics["snr_improvement_db"] > 0

    noisy = np.sin(np.arange(128) / 4).astype(np.float32) + np.random.default_rng(1).normal(0, .5, 128).astype(np.float32)
    np.save(tmp_path / "x.npy", noisy)
    out = run_cli("predict", "--plugin", "example", "--checkpoint", run, "--input", tmp_path / "x.npy",
                  "--output", tmp_path / "y.npy")
    assert out.returncode == 0, out.stderr
    before = (tmp_path / "y.npy").read_bytes()
    assert np.load(tmp_path / "y.npy").shape == (128,)
    assert json.loads((tmp_path / "y.npy.json").read_text())["input_sha256"]  # provenance sidecar
    again = run_cli("predict", "--plugin", "example", "--checkpoint", run, "--input", tmp_path / "x.npy",
                    "--output", tmp_path / "y.npy")
    assert again.returncode == 0 and "already done" in again.stdout  # same model, same input: skipped
    np.save(tmp_path / "x2.npy", noisy[::-1].copy())
    other = run_cli("predict", "--plugin", "example", "--checkpoint", run, "--input", tmp_path / "x2.npy",
                    "--output", tmp_path / "y.npy")
    assert other.returncode == 2 and "already exists" in other.stderr
    assert (tmp_path / "y.npy").read_bytes() == before  # untouched
    assert run_cli("predict", "--plugin", "example", "--checkpoint", run, "--input", tmp_path / "x2.npy",
                   "--output", tmp_path / "y.npy", "--overwrite").returncode == 0

    out = run_cli("export", "--plugin", "example", "--checkpoint", run, "--format", "torchscript",
                  "--output", tmp_path / "m.pt")
    assert out.returncode == 0, out.stderr
    assert "max abs diff" in out.stdout


@pytest.mark.slow
def test_cli_onnx_export_matches(tmp_path):
    pytest.importorskip("onnxruntime")
    run = tmp_path / "run"
    assert run_cli("train", "--plugin", "example", "--max-steps", 5, "--out", run, *FAST).returncode == 0
    out = run_cli("export", "--plugin", "example", "--checkpoint", run, "--format", "onnx", "--output", tmp_path / "m.onnx")
    assert out.returncode == 0, out.stderr
    diff = float(out.stdout.split("max abs diff vs PyTorch ")[1].rstrip(")\n"))
    assert diff <= 1e-4


@pytest.mark.parametrize("args, needle", [
    (["train", "--plugin", "nope"], "no such plugin"),
    (["train", "--plugin", "example", "--task", "nope"], "--task 'nope'"),
    (["train", "--plugin", "example", "--set", "model.chanels=3"], "model.chanels: unknown key"),
    (["train", "--plugin", "example", "--config", "missing.yaml"], "missing.yaml: config file not found"),
    (["train", "--plugin", "example", "--data", "/no/such.npz"], "/no/such.npz: no such file"),
    (["evaluate", "--plugin", "example", "--checkpoint", "/no/run"], "/no/run: no such run directory"),
])
def test_user_errors_are_one_line_exit_2(args, needle, tmp_path):
    out = run_cli(*args, "--verbose" if False else "--out" if args[0] == "train" else "--json",
                  *( [tmp_path / "r"] if args[0] == "train" else []))
    assert out.returncode == 2, out.stderr
    assert needle in out.stderr
    assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1


def test_bad_data_file_names_file_and_field(tmp_path):
    np.savez(tmp_path / "d.npz", signals=np.zeros((10, 64)))
    out = run_cli("train", "--plugin", "example", "--data", tmp_path / "d.npz", "--out", tmp_path / "r")
    assert out.returncode == 2 and "d.npz: field 'clean' is missing" in out.stderr
    verbose = run_cli("train", "--plugin", "example", "--data", tmp_path / "d.npz", "--out", tmp_path / "r2", "--verbose")
    assert "Traceback" in verbose.stderr


def test_python_api_fit_load_predict_in_memory(tmp_path):
    import sigplex.core as sp

    run = sp.fit("example", out=tmp_path / "run", max_steps=10, overrides={"model.channels": 8, "trainer.val_every": 5})
    predictor = sp.load_run(run)
    x = np.random.default_rng(0).normal(size=(3, 128)).astype(np.float32)
    y = predictor.predict(x)
    assert y.shape == (3, 128)
    with torch.no_grad():
        direct = predictor.model(torch.from_numpy(x)[:, None])[:, 0].numpy()
    np.testing.assert_allclose(y, direct)
    assert set(predictor.evaluate()) == {"mse", "snr_improvement_db"}
    written = sp.predict(run, x[0], output=tmp_path / "o.npy")
    assert written == [tmp_path / "o.npy"]


def test_init_from_a_run_starts_from_its_weights(tmp_path):
    import sigplex.core as sp
    from sigplex.core import run as runs
    from sigplex.core.train import checkpoint as ckpt

    base = sp.fit("example", out=tmp_path / "base", max_steps=10, overrides={"model.channels": 8})
    tuned = sp.fit("example", out=tmp_path / "tuned", max_steps=1, init_from=base.path,
                   overrides={"model.channels": 8, "optim.lr": 1e-12})
    a, _ = ckpt.load_checkpoint_weights(runs.pick_checkpoint(base.path))
    b, _ = ckpt.load_checkpoint_weights(runs.list_checkpoints(tuned.path)[-1])
    for k in a:
        torch.testing.assert_close(a[k], b[k], atol=1e-6, rtol=0)
    bad = run_cli("train", "--plugin", "example", "--init-from", base.path, "--out", tmp_path / "x",
                  "--set", "model.channels=16")
    assert bad.returncode == 2 and "do not fit the model" in bad.stderr


def test_a_bare_weights_file_predicts_and_evaluates_with_the_task_config(tmp_path):
    """--checkpoint model.safetensors (no run directory): task defaults + --config/--set model.* build the model."""
    from safetensors.torch import save_file

    import sigplex.core as sp
    from sigplex.core import run as runs
    from sigplex.core.train import checkpoint as ckpt

    run = sp.fit("example", out=tmp_path / "run", max_steps=5, overrides={"model.channels": 8})
    weights, _ = ckpt.load_checkpoint_weights(runs.pick_checkpoint(run.path))
    save_file(weights, str(tmp_path / "denoiser.safetensors"))
    x = np.random.default_rng(0).normal(size=(128,)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)

    out = run_cli("predict", "--plugin", "example", "--checkpoint", tmp_path / "denoiser.safetensors",
                  "--set", "model.channels=8", "--input", tmp_path / "x.npy", "--output", tmp_path / "y.npy")
    assert out.returncode == 0, out.stderr
    assert "using the weights file" in out.stderr
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), sp.load_run(run).predict(x), atol=1e-6)
    (tmp_path / "c.yaml").write_text("model:\n  channels: 8\n")
    metrics = json.loads(run_cli("evaluate", "--plugin", "example", "--checkpoint", tmp_path / "denoiser.safetensors",
                                 "--set", "model.channels=8", "--json").stdout)
    assert metrics == pytest.approx(sp.load_run(run).evaluate(), rel=1e-5)
    assert sp.load_predictor(tmp_path / "denoiser.safetensors", plugin="example",
                             config=tmp_path / "c.yaml").config.model.channels == 8
    with_config = run_cli("evaluate", "--plugin", "example", "--checkpoint", tmp_path / "denoiser.safetensors",
                          "--config", tmp_path / "c.yaml", "--json")
    assert json.loads(with_config.stdout) == pytest.approx(metrics, rel=1e-6), with_config.stderr
    none = run_cli("evaluate", "--plugin", "example", "--json")          # the example task ships no weights
    assert none.returncode == 2 and "ships no pretrained weights" in none.stderr, none.stderr

    for args, needle in [([], "weights do not fit the model"),  # default channels: a one-line mismatch
                         (["--set", "model.channels=8", "--config", "x.yaml", "--checkpoint", run.path],
                          "only a bare weights file takes a config")]:
        bad = run_cli("predict", "--plugin", "example", "--checkpoint", tmp_path / "denoiser.safetensors", *args,
                      "--input", tmp_path / "x.npy", "--output", tmp_path / "z.npy")
        assert bad.returncode == 2 and needle in bad.stderr and len(bad.stderr.strip().splitlines()) <= 2, bad.stderr
    no_plugin = run_cli("predict", "--checkpoint", tmp_path / "denoiser.safetensors", "--input", tmp_path / "x.npy",
                        "--output", tmp_path / "z.npy")
    assert no_plugin.returncode == 2 and "add --plugin NAME" in no_plugin.stderr
