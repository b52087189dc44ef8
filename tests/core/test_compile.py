"""trainer.compile: compiled training follows eager's loss curve, resumes bitwise, and keeps working with
accumulation, bf16 autocast, LoRA adapters, distillation and DDP; without a C++ compiler it warns and runs eager."""
import csv

import numpy as np
import pytest
import torch
from helpers import needs_example, run_cli
from safetensors.torch import load_file

import sigplex.core as sp
from sigplex.core import compiling
from sigplex.core import run as runs

pytestmark = needs_example

COMMON = ["model.channels=8", "model.dropout=0", "trainer.batch_size=8", "trainer.val_every=100",
          "trainer.log_every=1", "trainer.progress=none", "trainer.accumulate=2"]
COMPILED = [*COMMON, "trainer.compile=true"]


@pytest.fixture(autouse=True)
def _fresh_dynamo():
    torch._dynamo.reset()  # each test compiles its own model; no recompilation limit carried over
    yield
    torch._dynamo.reset()


def losses(run_dir) -> np.ndarray:
    with open(run_dir / "metrics.csv") as fh:
        return np.array([float(row["loss"]) for row in csv.DictReader(fh)])


def final_weights(run_dir) -> dict:
    return load_file(str(runs.list_checkpoints(run_dir)[-1] / "model.safetensors"))


def test_compiled_loss_curve_equals_eager_and_resume_is_bitwise(tmp_path):
    eager = sp.fit("example", out=tmp_path / "eager", max_steps=20, overrides=COMMON)
    compiled = sp.fit("example", out=tmp_path / "compiled", max_steps=20, overrides=COMPILED)
    # Same data, same initial weights: the fused kernels only reorder float32 sums.
    np.testing.assert_allclose(losses(compiled.path), losses(eager.path), rtol=2e-3)
    assert abs(losses(compiled.path)[-1] - losses(eager.path)[-1]) < 0.02 * losses(eager.path)[0]
    half = sp.fit("example", out=tmp_path / "half", max_steps=10, overrides=COMPILED)
    sp.fit("example", resume=half.path, max_steps=20)
    full, resumed = final_weights(compiled.path), final_weights(half.path)
    assert full.keys() == resumed.keys()
    for name in full:
        assert torch.equal(full[name], resumed[name]), f"{name} differs after a compiled resume"


def test_compiled_lora_student_with_bf16_and_distillation(tmp_path):
    teacher = sp.fit("example", out=tmp_path / "teacher", max_steps=6, overrides=COMMON)
    student = sp.fit("example", out=tmp_path / "student", max_steps=8, adapter="lora", init_from=teacher.path,
                     distill_from=teacher.path, overrides=[*COMPILED, "trainer.precision=bf16"])
    summary = student.summary
    assert summary["steps"] == 8
    assert np.isfinite(losses(student.path)).all()
    # the reloaded adapter run is the model that was trained and scored
    predictor = sp.load_run(student.path)
    assert predictor.model.training is False
    x = torch.randn(2, 1, 64)
    with torch.no_grad():
        out = predictor.model(x)
    assert out.shape == x.shape and torch.isfinite(out).all()


def test_without_a_cxx_compiler_it_warns_once_and_trains_eager(tmp_path, monkeypatch):
    monkeypatch.setenv("CXX", str(tmp_path / "no-such-compiler"))
    assert "no C++ compiler" in compiling.compiler_problem()
    res = run_cli("train", "--plugin", "example", "--max-steps", 3, "--out", tmp_path / "r",
                  *[a for o in COMPILED for a in ("--set", o)], env={"CXX": str(tmp_path / "no-such-compiler")})
    assert res.returncode == 0, res.stderr
    warnings = [line for line in res.stderr.splitlines() if "trainer.compile" in line]
    assert len(warnings) == 1 and warnings[0].startswith("warning: trainer.compile: no C++ compiler"), res.stderr
    assert "Traceback" not in res.stderr


def test_a_failing_compile_falls_back_to_eager_with_one_warning():
    def broken(*args):
        raise RuntimeError("inductor could not build a kernel\nlong detail")

    model = torch.nn.Linear(3, 2)
    wrapped = compiling._CompiledOrEager(broken, model, "trainer.compile")
    x = torch.randn(4, 3)
    with pytest.warns(UserWarning, match=r"trainer.compile: torch.compile failed \(RuntimeError: inductor could"):
        out = wrapped(x)
    assert torch.equal(out, model(x)) and not wrapped.compiled
    assert torch.equal(wrapped(x), model(x))  # eager from then on, without another warning
    assert wrapped.weight is model.weight  # attributes are the module's


def test_an_unknown_compile_mode_is_a_one_line_error():
    from sigplex.core.errors import UserError

    with pytest.raises(UserError, match="trainer.compile: expected false, true or one of"):
        compiling.compile_module(torch.nn.Linear(2, 2), "fastest")


@pytest.mark.slow
def test_compiled_ddp_matches_one_compiled_process(tmp_path):
    args = ["--max-steps", 4, *[a for o in COMPILED for a in ("--set", o)], "--set", "trainer.batch_size=16"]
    one = run_cli("train", "--plugin", "example", "--out", tmp_path / "one", *args)
    assert one.returncode == 0, one.stderr
    two = run_cli("train", "--plugin", "example", "--out", tmp_path / "two", "--nproc", 2, *args, timeout=400)
    assert two.returncode == 0, two.stdout + two.stderr
    a, b = final_weights(tmp_path / "one"), final_weights(tmp_path / "two")
    for k in a:
        torch.testing.assert_close(a[k], b[k], atol=1e-5, rtol=1e-4)


def test_swin_unetr_traces_as_one_graph_without_breaks():
    """The CPU-tuned kernels step aside under compilation: Dynamo sees one graph of Swin UNETR (train mode)."""
    from sigplex.core import models as registry

    registry.import_registered_models()
    entry = registry.model_entry("swin_unetr")
    model = registry.create_model("swin_unetr", **entry.tiny).train()
    explained = torch._dynamo.explain(model)(entry.example_input())
    assert explained.graph_count == 1 and explained.graph_break_count == 0, explained.break_reasons
