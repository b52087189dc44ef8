"""Multi-node training on loopback: two ``torchrun --nnodes 2`` agents with a c10d rendezvous, as on two machines.

The two-node run equals a one-process run of the same global batch; killing one node makes the other
exit promptly with sigplex's one-line error (also in torchrun's failure report), and ``--resume`` then
completes. Every process a test starts is ended by its process id.
"""
import os
import re
import socket
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

pytestmark = [needs_example, pytest.mark.slow]

TINY = ["--set", "model.dropout=0", "--set", "model.channels=8", "--set", "trainer.batch_size=16"]
# one compute thread per node: two nodes share this machine's cores
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_nodes(tmp: Path, name: str, program: list[str]) -> list[subprocess.Popen]:
    """Two torchrun agents (one process each) meeting at a fresh loopback rendezvous; output in tmp/name-N.log."""
    port = free_port()
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc-per-node", "1",
           "--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{port}", "--rdzv-id", f"{name}-{port}",
           *map(str, program)]
    nodes = []
    for i in range(2):
        log = open(tmp / f"{name}-{i}.log", "w")
        nodes.append(subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=ENV, start_new_session=True))
        log.close()
    return nodes


def children(pid: int) -> list[int]:
    """Child process ids of ``pid`` (torchrun's workers run in sessions of their own)."""
    out = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            out += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            pass
    return out


def end(nodes: list[subprocess.Popen], pids: list[int] = ()) -> None:
    """SIGKILL what the test started and is still alive: the agents, their workers and ``pids``."""
    for proc in nodes:
        for pid in [*children(proc.pid), proc.pid, *pids]:
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass
        proc.wait()


def wait_all(nodes: list[subprocess.Popen], timeout: float) -> list[int]:
    try:
        return [proc.wait(timeout=timeout) for proc in nodes]
    finally:
        end(nodes)


def final_weights(run: Path) -> dict:
    return load_file(str(runs.list_checkpoints(run)[-1] / "model.safetensors"))


def test_two_nodes_on_loopback_equal_one_process(tmp_path):
    args = ["--max-steps", 6, "--set", "trainer.val_every=3", "--set", "trainer.checkpoint_every=3", *TINY]
    one = run_cli("train", "--plugin", "example", "--out", tmp_path / "one", *args, env={"OMP_NUM_THREADS": "1"})
    assert one.returncode == 0, one.stderr
    nodes = start_nodes(tmp_path, "two", ["-m", "sigplex.core.cli", "train", "--plugin", "example",
                                          "--out", tmp_path / "two", *args])
    codes = wait_all(nodes, timeout=300)
    logs = [(tmp_path / f"two-{i}.log").read_text() for i in range(2)]
    assert codes == [0, 0], "\n".join(logs)
    a, b = final_weights(tmp_path / "one"), final_weights(tmp_path / "two")
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(b[k], a[k], atol=1e-5, rtol=0, msg=k)
    # rank 0 alone logged and reported, on whichever node it landed
    rows = (tmp_path / "two" / "metrics.csv").read_text().splitlines()[1:]
    assert [r.split(",")[0] for r in rows] == ["3", "6"]
    assert sum("run directory:" in log for log in logs) == 1


# The CLI with every training step slowed, so that a node can be killed mid-run.
SLOW_CLI = textwrap.dedent("""
    import sys, time
    from sigplex_example_plugin.task import DenoiseTask
    step = DenoiseTask.training_step
    def slow_step(self, model, batch, prepared):
        time.sleep(0.2)
        return step(self, model, batch, prepared)
    DenoiseTask.training_step = slow_step
    from sigplex.core.cli import main
    sys.exit(main())
""")


def worker_rank(agent: subprocess.Popen) -> int | None:
    for pid in children(agent.pid):
        try:
            env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        for item in env:
            if item.startswith(b"RANK="):
                return int(item[5:])
    return None


def test_killed_node_stops_the_other_with_one_line_then_resume_completes(tmp_path):
    steps, run = 40, tmp_path / "run"
    script = tmp_path / "slow_cli.py"
    script.write_text(SLOW_CLI)
    args = ["--max-steps", steps, "--set", "trainer.val_every=100", "--set", "trainer.checkpoint_every=10", *TINY]
    nodes = start_nodes(tmp_path, "crash", [script, "train", "--plugin", "example", "--out", run, *args])
    try:
        target = run / "checkpoints" / "step-00000010"
        deadline = time.monotonic() + 240
        while not target.exists() and time.monotonic() < deadline and all(p.poll() is None for p in nodes):
            time.sleep(0.05)
        assert target.exists(), "\n".join((tmp_path / f"crash-{i}.log").read_text() for i in range(2))
        # the node holding rank 1 goes down whole: its agent and its worker
        ranks = [worker_rank(p) for p in nodes]
        assert sorted(ranks) == [0, 1], ranks
        lost, survivor = (1, 0) if ranks[1] == 1 else (0, 1)
        end([nodes[lost]])
        try:
            code = nodes[survivor].wait(timeout=60)  # no hang: gloo sees the closed connection, torchrun stops
        except subprocess.TimeoutExpired:
            pytest.fail("the surviving node still runs 60 s after the other was killed")
    finally:
        end(nodes)
    assert code != 0
    log = (tmp_path / f"crash-{survivor}.log").read_text()
    ours = [ln for ln in log.splitlines() if ln.startswith("error: ")]
    assert ours, log
    assert re.match(r"error: rank 0 (lost rank 1|stopped by torchrun) .*at step \d+.*'train --resume "
                    + re.escape(str(run)) + "'", ours[0]), ours[0]
    assert "internal error" not in log
    if "ChildFailedError" in log:  # torchrun's failure report carries the same line as its root cause
        assert f"traceback : {ours[0]}" in log, log
    # any traceback is torchrun's own report, never one from sigplex's code
    frames = [ln for ln in log.splitlines() if ln.strip().startswith('File "')]
    assert all("torch" in ln or "<frozen" in ln for ln in frames), frames
    assert int(runs.list_checkpoints(run)[-1].name[5:]) < steps, "the run finished before a node was killed"

    nodes = start_nodes(tmp_path, "resume", ["-m", "sigplex.core.cli", "train", "--resume", run])
    codes = wait_all(nodes, timeout=300)
    logs = "\n".join((tmp_path / f"resume-{i}.log").read_text() for i in range(2))
    assert codes == [0, 0], logs
    assert "resumed from" in logs
    assert runs.list_checkpoints(run)[-1].name == f"step-{steps:08d}"
    logged = [int(r.split(",")[0]) for r in (run / "metrics.csv").read_text().splitlines()[1:]]
    assert logged == sorted(set(logged)) and logged[-1] == steps
