"""Per-machine kernel choice: measured once per machine and cached, applied in the one dispatch, recorded
by a run and re-applied by its resume."""
import json

import pytest
from helpers import needs_example

from sigplex.core import kernels
from sigplex.core.cache import cache_root
from sigplex.core.device import KERNELS, cpu_fast_path, kernel_choices


@pytest.fixture
def fake_timings(monkeypatch, tmp_path):
    """Measurements without measuring: the instance norm's own kernel loses here, the others win."""
    monkeypatch.setenv("SIGPLEX_CACHE", str(tmp_path / "cache"))
    calls = []

    def measure(name, repeats=kernels.REPEATS):
        calls.append(name)
        return {"own_s": 2.0 if name == "instance_norm" else 1.0, "default_s": 1.5}

    monkeypatch.setattr(kernels, "measure_kernel", measure)
    return calls


def test_the_choice_is_measured_once_per_machine_and_applied_in_the_dispatch(fake_timings):
    choice = kernels.choose_kernels()
    assert choice == {"window_backward": True, "instance_norm": False, "depth_split_conv": True}
    assert sorted(fake_timings) == sorted(KERNELS)
    assert kernel_choices() == choice
    assert not cpu_fast_path("cpu", "instance_norm") and cpu_fast_path("cpu", "window_backward")
    assert cpu_fast_path("cpu")  # the device-level answer does not change
    records = list((cache_root() / "probes" / "kernel").glob("*.json"))
    assert len(records) == len(KERNELS)
    assert {json.loads(r.read_text())["machine"]["cpu"] for r in records}  # keyed by the CPU model
    assert kernels.choose_kernels() == choice and len(fake_timings) == len(KERNELS)  # cached: no new probe
    assert kernels.choose_kernels({"instance_norm": True}) == {k: True for k in KERNELS}  # a recorded choice wins
    assert not cpu_fast_path("cuda", "window_backward")


def test_the_off_path_is_the_standard_one_and_gives_the_same_numbers():
    import torch

    from sigplex.core.device import set_kernel_choices
    from sigplex.core.ops.norm import instance_norm

    x = torch.randn(1, 8, 5, 6, 7, dtype=torch.float64).to(memory_format=torch.channels_last_3d)
    on = instance_norm(x.requires_grad_())
    (g_on,) = torch.autograd.grad(on.square().sum(), x)
    set_kernel_choices({"instance_norm": False})
    off = instance_norm(x)
    assert off.grad_fn.name() != on.grad_fn.name()  # another kernel ran
    (g_off,) = torch.autograd.grad(off.square().sum(), x)
    torch.testing.assert_close(off, on, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(g_off, g_on, rtol=1e-10, atol=1e-10)


@needs_example
def test_a_run_records_its_kernels_and_its_resume_reapplies_them(fake_timings):
    import sigplex.core as sp
    from sigplex.core.cache import write_record

    run = sp.fit("example", out=cache_root().parent / "run", max_steps=2,
                 overrides=["model.channels=4", "trainer.progress=none", "trainer.val_every=100"])
    recorded = run.info["kernels"]
    assert recorded == {"window_backward": True, "instance_norm": False, "depth_split_conv": True}
    # the machine's measurement changes (another load, a new probe version...): the resume keeps the run's choice
    write_record("kernel", {"kernel": "instance_norm", "version": kernels.PROBE_VERSION},
                 {"own_s": 1.0, "default_s": 2.0})
    assert kernels.choose_kernels()["instance_norm"] is True
    sp.fit("example", resume=run.path, max_steps=4)
    assert kernel_choices() == recorded
