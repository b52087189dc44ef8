"""Core knowledge distillation: a frozen teacher on the same batch, KL/MSE matching, exact resume, bare weights."""
import csv

import pytest
import torch
from helpers import needs_example, run_cli

from sigplex.core.train.distill import distill_loss

pytestmark = needs_example
SMALL = ["--set", "model.channels=4", "--set", "model.depth=1", "--set", "trainer.val_every=5",
         "--set", "trainer.log_every=1", "--set", "distill.alpha=1.0"]


def test_distill_loss_kinds():
    s, t = torch.randn(4, 5), torch.randn(4, 5)
    assert distill_loss(t, t, "kl", 2.0).abs() < 1e-6 and distill_loss(s, t, "kl", 2.0) > 0
    ref = torch.nn.functional.kl_div(torch.log_softmax(s / 2, -1), torch.softmax(t / 2, -1), reduction="batchmean") * 4
    assert torch.allclose(distill_loss(s, t, "kl", 2.0), ref, atol=1e-6)
    assert torch.allclose(distill_loss(s, t, "mse", 1.0), ((s - t) ** 2).mean())


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    run = tmp_path_factory.mktemp("teacher") / "run"
    out = run_cli("train", "--plugin", "example", "--max-steps", 30, "--out", run, "--set", "trainer.val_every=15")
    assert out.returncode == 0, out.stderr
    return run


def _column(run, name):
    return [float(r[name]) for r in csv.DictReader(open(run / "metrics.csv")) if r.get(name)]


def test_student_matches_its_teacher_and_resumes_exactly(teacher, tmp_path):
    a = tmp_path / "a"
    out = run_cli("train", "--plugin", "example", "--distill-from", teacher, "--max-steps", 12, "--out", a, *SMALL)
    assert out.returncode == 0, out.stderr
    match = _column(a, "distill_loss")
    assert len(match) == 12 and match[-1] < match[0]  # the student moves towards the teacher
    assert _column(a, "task_loss")
    b = tmp_path / "b"
    assert run_cli("train", "--plugin", "example", "--distill-from", teacher, "--max-steps", 6, "--out", b,
                   *SMALL, "--set", "trainer.checkpoint_every=6").returncode == 0
    assert run_cli("train", "--resume", b, "--max-steps", 12).returncode == 0
    from safetensors.torch import load_file

    wa = load_file(str(sorted((a / "checkpoints").glob("step-*"))[-1] / "model.safetensors"))
    wb = load_file(str(sorted((b / "checkpoints").glob("step-*"))[-1] / "model.safetensors"))
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_bare_teacher_weights_need_teacher_model(teacher, tmp_path):
    weights = next(teacher.glob("checkpoints/*/model.safetensors"))
    bad = run_cli("train", "--plugin", "example", "--distill-from", weights, "--max-steps", 2, "--out", tmp_path / "x",
                  *SMALL)
    assert bad.returncode == 2 and "distill.teacher_model" in bad.stderr
    good = run_cli("train", "--plugin", "example", "--distill-from", weights, "--max-steps", 2, "--out", tmp_path / "y",
                   *SMALL, "--set", "distill.teacher_model=sine_denoiser")
    assert good.returncode == 0, good.stderr
