"""Batch prediction on a real two-node Ray cluster on this machine, started and torn down by the test.

Each node is a ``ray start --block`` process (head with ``--num-cpus 1`` and every port chosen free,
a second node joining it with ports of its own); usage statistics are off. Teardown stops exactly
the processes the test started, by their ids (never ``ray stop``, which would end other Ray
processes on the machine).
"""
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import needs_example, run_cli

ray = pytest.importorskip("ray")
psutil = pytest.importorskip("psutil")
pytestmark = [needs_example, pytest.mark.slow]
ENV = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _node_args(ports: list[int]) -> list[str]:
    """A node's own ports: node manager, object manager, dashboard agent (2), metrics, runtime env, workers."""
    names = ["--node-manager-port", "--object-manager-port", "--dashboard-agent-listen-port",
             "--dashboard-agent-grpc-port", "--metrics-export-port", "--runtime-env-agent-port"]
    workers = ",".join(map(str, ports[len(names):]))
    return [x for pair in zip(names, map(str, ports)) for x in pair] + ["--worker-port-list", workers]


def _start(args: list[str]) -> subprocess.Popen:
    env = {**os.environ, **ENV}
    return subprocess.Popen([str(Path(sys.executable).with_name("ray")), "start", "--block", "--num-cpus", "1",
                             "--node-ip-address", "127.0.0.1", "--disable-usage-stats", *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def _stop(procs: list[subprocess.Popen]) -> None:
    """SIGTERM then SIGKILL the processes the test started and every process they started, by id."""
    started = []
    for p in procs:
        try:
            started += [p.pid] + [c.pid for c in psutil.Process(p.pid).children(recursive=True)]
        except psutil.NoSuchProcess:
            pass
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in started:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        time.sleep(2 if sig == signal.SIGTERM else 0)
    for p in procs:
        p.wait(timeout=30)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    gcs, client, *head_ports = _free_ports(2 + 6 + 8)
    worker_ports = _free_ports(6 + 8)
    temp = tmp_path_factory.mktemp("ray")
    procs = [_start(["--head", "--port", str(gcs), "--include-dashboard", "false", "--ray-client-server-port",
                     str(client), "--temp-dir", str(temp), *_node_args(head_ports)])]
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", gcs)) == 0:
                    break
            time.sleep(0.5)
        else:
            pytest.fail("the Ray head did not open its port within 90 s")
        procs.append(_start(["--address", f"127.0.0.1:{gcs}", *_node_args(worker_ports)]))
        yield f"127.0.0.1:{gcs}"
    finally:
        _stop(procs)


@pytest.fixture(scope="module")
def run_and_inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("ray-batch")
    run = root / "run"
    done = run_cli("train", "--plugin", "example", "--max-steps", 2, "--out", run, "--set", "model.channels=4",
                   "--set", "trainer.val_every=2")
    assert done.returncode == 0, done.stderr
    rng = np.random.default_rng(3)
    for i in range(200):
        sub = root / "in" / f"s{i % 4}"
        sub.mkdir(parents=True, exist_ok=True)
        np.save(sub / f"x{i:03d}.npy", rng.normal(size=256).astype(np.float32))
    (root / "in" / "s0" / "corrupt.npy").write_bytes(b"\x93NUMPY broken")
    return run, root / "in"


def _records(out: Path) -> list[dict]:
    """The manifest's records in order, without timings, outputs relative to ``out``."""
    records = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    return [{**{k: v for k, v in r.items() if k != "seconds"},
             "outputs": [str(Path(f).relative_to(out)) for f in r["outputs"]]} for r in records]


def test_two_nodes_match_one_process_and_survive_a_killed_worker(cluster, run_and_inputs, tmp_path, monkeypatch):
    run, inputs = run_and_inputs
    env = {**ENV}
    one = run_cli("predict", "--checkpoint", run, "--input", inputs, "--output", tmp_path / "one", env=env)
    assert one.returncode == 3, one.stderr
    two = run_cli("predict", "--checkpoint", run, "--input", inputs, "--output", tmp_path / "two", "--ray", cluster,
                  "--workers", 2, env=env, timeout=900)
    assert two.returncode == 3 and "predicted 200, already done 0, failed 1 of 201" in two.stdout, two.stderr
    assert _records(tmp_path / "two") == _records(tmp_path / "one")  # the same manifest apart from timings
    for f in (tmp_path / "one").rglob("*.npy"):
        assert f.read_bytes() == (tmp_path / "two" / f.relative_to(tmp_path / "one")).read_bytes()

    # a worker killed mid-run: its inputs in flight go to another worker; nothing lost, nothing written twice
    from sigplex.core.cluster import IN_FLIGHT, WORKER_PREFIX
    from sigplex.core.loading import load_predictor

    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    ray.init(address=cluster, log_to_driver=False)
    try:
        predictor, seen, killed = load_predictor(str(run)), [], None
        for result in predictor.predict_many([inputs], tmp_path / "killed", ray=cluster, workers=2):
            seen.append(result)
            if len(seen) == 40:
                named = {a["name"]: a["namespace"] for a in ray.util.list_named_actors(all_namespaces=True)}
                names = [n for n in named if n.startswith(WORKER_PREFIX)]
                killed = sorted(names)[0]
                ray.kill(ray.get_actor(killed, namespace=named[killed]))
        assert killed is not None
        # an input the killed worker had written in full before it died is found done on the retry
        odd = [r for r in seen if r.status not in ("ok", "skipped") and not r.input.endswith("corrupt.npy")]
        assert len(seen) == 201 and len({r.input for r in seen}) == 201 and not odd, odd
        assert sum(r.status == "skipped" for r in seen) <= 2 * IN_FLIGHT
        for f in (tmp_path / "one").rglob("*.npy"):
            assert f.read_bytes() == (tmp_path / "killed" / f.relative_to(tmp_path / "one")).read_bytes()
        assert len(list((tmp_path / "killed").rglob("x*.npy"))) == 200
        again = list(predictor.predict_many([inputs], tmp_path / "killed", ray=cluster, workers=2))
        assert sum(r.status == "skipped" for r in again) == 200 and len(again) == 201
    finally:
        ray.shutdown()
