"""Trainer: exact resume after kill -9, DDP vs one process, corrupt checkpoints, precision, schedules."""
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
from helpers import needs_example, run_cli
from safetensors.torch import load_file

from sigplex.core import run as runs
from sigplex.core.errors import UserError
from sigplex.core.train import checkpoint as ckpt

pytestmark = needs_example

COMMON = ["--set", "trainer.checkpoint_every=10", "--set", "trainer.val_every=20", "--set", "trainer.accumulate=2",
          "--set", "trainer.batch_size=16", "--set", "model.channels=16", "--set", "trainer.log_every=5"]


def final_weights(run: Path) -> dict:
    last = runs.list_checkpoints(run)[-1]
    return load_file(str(last / "model.safetensors"))


def assert_bitwise_equal(a: dict, b: dict):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), f"{k} differs"


@pytest.mark.slow
def test_kill9_then_resume_is_bitwise_identical(tmp_path):
    steps = 60
    ref = run_cli("train", "--plugin", "example", "--max-steps", steps, "--out", tmp_path / "ref", *COMMON)
    assert ref.returncode == 0, ref.stderr
    # The same run, slowed by a callback so that it can be killed mid-way.
    script = textwrap.dedent(f"""
        import time, sigplex.core as sp
        class Slow(sp.Callback):
            def on_step_end(self, trainer, step, logs):
                time.sleep(0.15)
        sp.fit("example", out={str(tmp_path / 'crash')!r}, max_steps={steps},
               overrides={[s for s in COMMON if s != '--set']!r}, callbacks=[Slow()])
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    target = tmp_path / "crash" / "checkpoints" / "step-00000030"
    deadline = time.time() + 120
    while not target.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert target.exists(), proc.stderr.read().decode() if proc.poll() is not None else "timeout"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    killed_at = runs.list_checkpoints(tmp_path / "crash")[-1]
    assert int(killed_at.name[5:]) < steps, "the run finished before it was killed"
    res = run_cli("train", "--plugin", "example", "--resume", tmp_path / "crash")
    assert res.returncode == 0, res.stderr
    assert "resumed from" in res.stdout
    assert_bitwise_equal(final_weights(tmp_path / "ref"), final_weights(tmp_path / "crash"))
    # metrics.csv holds each logged step once
    rows = (tmp_path / "crash" / "metrics.csv").read_text().splitlines()[1:]
    logged = [int(r.split(",")[0]) for r in rows]
    assert logged == sorted(set(logged)) and logged[-1] == steps


@pytest.mark.slow
def test_two_process_ddp_matches_one_process(tmp_path):
    args = ["--max-steps", 8, "--set", "model.dropout=0", "--set", "trainer.batch_size=16",
            "--set", "trainer.val_every=4", "--set", "trainer.checkpoint_every=4", "--set", "model.channels=8"]
    one = run_cli("train", "--plugin", "example", "--out", tmp_path / "one", *args)
    assert one.returncode == 0, one.stderr
    two = run_cli("train", "--plugin", "example", "--out", tmp_path / "two", "--nproc", 2, *args, timeout=300)
    assert two.returncode == 0, two.stdout + two.stderr
    a, b = final_weights(tmp_path / "one"), final_weights(tmp_path / "two")
    for k in a:
        torch.testing.assert_close(a[k], b[k], atol=1e-5, rtol=1e-4)
    # rank 0 alone wrote: one metrics file, one row per logged step
    rows = (tmp_path / "two" / "metrics.csv").read_text().splitlines()[1:]
    assert [r.split(",")[0] for r in rows] == ["4", "8"]


def test_corrupt_latest_checkpoint_falls_back_with_warning(tmp_path):
    import sigplex.core as sp

    run = sp.fit("example", out=tmp_path / "r", max_steps=20,
                 overrides=["trainer.checkpoint_every=10", "trainer.val_every=100", "model.channels=8"])
    last = runs.list_checkpoints(run.path)[-1]
    data = (last / "model.safetensors").read_bytes()
    (last / "model.safetensors").write_bytes(data[: len(data) // 2])  # truncated
    with pytest.warns(UserWarning, match="corrupt"):
        found = runs.latest_valid_checkpoint(run.path)
    assert found.name == "step-00000010"
    with pytest.warns(UserWarning, match="corrupt"):
        sp.fit("example", resume=run.path, max_steps=20)
    assert ckpt.verify_checkpoint(runs.list_checkpoints(run.path)[-1]) is None


def test_bf16_autocast_with_accumulation_trains(tmp_path):
    import sigplex.core as sp

    run = sp.fit("example", out=tmp_path / "r", max_steps=30,
                 overrides=["trainer.precision=bf16", "trainer.accumulate=3", "trainer.val_every=30",
                            "model.channels=8", "trainer.batch_size=8"])
    s = run.summary
    assert s["steps"] == 30
    assert s["val"]["snr_improvement_db"] > 1.0  # it learned something


def test_resume_with_a_breaking_config_change_is_refused(tmp_path):
    import sigplex.core as sp

    run = sp.fit("example", out=tmp_path / "r", max_steps=5, overrides=["trainer.val_every=5", "model.channels=8"])
    with pytest.raises(UserError, match="optim.lr.*break an exact resume"):
        sp.fit("example", resume=run.path, overrides=["optim.lr=0.5"])
    out = run_cli("train", "--plugin", "example", "--out", run.path)
    assert out.returncode == 2 and "not empty" in out.stderr


def test_retention_keeps_last_k_and_best(tmp_path):
    import sigplex.core as sp

    run = sp.fit("example", out=tmp_path / "r", max_steps=40,
                 overrides=["trainer.checkpoint_every=5", "trainer.keep_last=2", "trainer.val_every=10",
                            "model.channels=8"])
    names = [p.name for p in runs.list_checkpoints(run.path)]
    best = json.loads((run.path / "best.json").read_text())["checkpoint"]
    assert names[-2:] == ["step-00000035", "step-00000040"]
    assert best in names and len(names) <= 3


def test_early_stopping_stops(tmp_path):
    import sigplex.core as sp

    run = sp.fit("example", out=tmp_path / "r", max_steps=500,
                 overrides=["trainer.val_every=1", "trainer.early_stopping_patience=2", "optim.lr=1e-12",
                            "trainer.monitor=mse", "trainer.monitor_mode=min", "model.channels=8"])
    assert run.summary["steps"] < 500


def test_impossible_batch_is_a_clear_error(tmp_path):
    out = run_cli("train", "--plugin", "example", "--out", tmp_path / "r", "--set", "trainer.batch_size=100000")
    assert out.returncode == 2
    assert "trainer.batch_size=100000 is larger than the training set" in out.stderr


@pytest.mark.parametrize("schedule", ["cosine", "step", "plateau"])
def test_schedules(schedule):
    from sigplex.core.config import OptimConfig
    from sigplex.core.train.optim import Schedule, lr_factor

    cfg = OptimConfig(schedule=schedule, warmup_steps=10, step_size=20, gamma=0.5, lr=1.0)
    assert lr_factor(0, cfg, 100) == pytest.approx(0.1)
    assert lr_factor(9, cfg, 100) == pytest.approx(1.0)
    if schedule == "cosine":
        assert lr_factor(55, cfg, 100) == pytest.approx(0.5, abs=1e-6)
        assert lr_factor(100, cfg, 100) == pytest.approx(0.0, abs=1e-9)
    if schedule == "step":
        assert lr_factor(30, cfg, 100) == pytest.approx(0.5)
    if schedule == "plateau":
        p = torch.nn.Parameter(torch.zeros(1))
        opt = torch.optim.SGD([p], lr=1.0)
        sch = Schedule(opt, cfg.model_copy(update={"plateau_patience": 0}), 100, "min")
        for _ in range(12):
            sch.step()
        assert opt.param_groups[0]["lr"] == pytest.approx(1.0)
        sch.validation(1.0)
        sch.validation(2.0)
        assert opt.param_groups[0]["lr"] == pytest.approx(0.5)
