"""serve: requests/s and p50/p95 latency through ``platform serve``, and soaks with malformed requests.

For the ts_forecast and eeg_conformer default models (short training runs), a real server
process takes N requests from 8 concurrent clients, 10% of them malformed. Reported: requests/s,
p50/p95 latency of good requests, how many answers were 5xx (goal 0) and the server's resident
memory at the last request against request 100 (goal ≤ 1.1). ``ours_s`` is the p50 latency;
``peer``/``peer_s`` is the p95 (ratio = p95 / p50).

``serve_abuse``: ofdm_chest's shipped model behind a real server with a token and ``--queue 64``;
16 clients send 5,000 requests (1,000 with ``--quick``), a quarter of them malformed: the hostile-input
harness's variants (bombs included), bodies over ``--max-body-mb`` sent in full, bad JSON, missing
and wrong tokens. Goals: no answer >= 500, every good request answered with the reference
prediction, no 429, no broken pipe on an oversized body, resident memory at the last request
within 10 % of request 1,000. ``ours_s``/``peer_s`` are the p50/p99 latency of good requests.
"""
from __future__ import annotations

import concurrent.futures
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _train(plugin: str, out: Path, overrides: list[str]) -> None:
    cmd = [sys.executable, "-m", "sigplex.core.cli", "train", "--plugin", plugin, "--out", str(out), *overrides]
    subprocess.run(cmd, check=True, capture_output=True)


def _requests(plugin: str, run: Path, n: int):
    """(good request kwargs, bad request kwargs) for httpx.post."""
    import numpy as np

    if plugin == "ts_forecast":
        csv = next(p for p in (run.parent / "data").glob("*.csv"))
        good = {"files": {"file": ("h.csv", csv.read_bytes())}}
    else:
        import yaml

        data = yaml.safe_load((run / "config.yaml").read_text())["data"]
        shape = (2, len(data["channels"]), int(round(data["window_s"] * data["sfreq"])))
        good = {"json": {"inputs": np.random.default_rng(0).normal(size=shape).round(3).tolist()}}
    bad = [{"content": b"{broken", "headers": {"content-type": "application/json"}},
           {"json": {"inputs": [["x"]]}}, {"files": {"file": ("h.csv", b"not,a\ncsv")}},
           {"json": {"nope": 1}}, {"content": b"x", "headers": {"content-type": "text/plain"}}]
    return good, bad


def _soak(plugin: str, run: Path, n: int, clients: int = 8) -> dict:
    import httpx

    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "sigplex.core.cli", "serve", "--checkpoint", str(run),
                             "--port", str(port), "--queue", "64", "--timeout-s", "120"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url)
        good, bad = _requests(plugin, run, n)
        latencies, codes, rss = [], [], {}
        counter = {"i": 0}

        def one(i: int):
            kw = bad[i % len(bad)] if i % 10 == 9 else good
            t0 = time.perf_counter()
            r = httpx.post(f"{url}/predict", timeout=300, **kw)
            dt = time.perf_counter() - t0
            counter["i"] += 1
            if counter["i"] in (100, n):
                rss[counter["i"]] = _rss_mb(proc.pid)
            return r.status_code, dt, i % 10 == 9

        t0 = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(clients) as pool:
            for code, dt, malformed in pool.map(one, range(n)):
                codes.append(code)
                if not malformed:
                    latencies.append(dt)
        wall = time.perf_counter() - t0
        alive = proc.poll() is None
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    latencies.sort()
    return {"rps": n / wall, "p50": latencies[len(latencies) // 2], "p95": latencies[int(len(latencies) * 0.95)],
            "server_errors": sum(c >= 500 for c in codes), "bad_4xx": sum(400 <= c < 500 for c in codes),
            "ok": sum(c == 200 for c in codes), "rss_growth": rss.get(n, float("nan")) / rss.get(100, float("nan")),
            "alive": alive}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(url: str, seconds: float = 60.0) -> None:
    import httpx

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.25)
    raise RuntimeError(f"the server at {url} did not answer /health within {seconds:g} s")


def _abuse_requests(folder: Path, token: str) -> tuple[dict, list[tuple[str, dict]]]:
    """The good request (a valid .npz upload) and the malformed kinds, each (kind, httpx.post kwargs)."""
    from sigplex.core.loading import load_predictor
    from sigplex.core.testing import hostile_inputs

    auth = {"authorization": f"Bearer {token}"}
    predictor = load_predictor(None, plugin="ofdm_chest")
    variants = hostile_inputs(predictor.task, predictor.prepared, folder)
    valid = next(v.path for v in variants if v.valid and v.path.suffix == ".npz")
    good = {"files": {"file": (valid.name, valid.read_bytes())}, "headers": auth}
    bad = [(f"variant {v.name}", {"files": {"file": (v.path.name, v.path.read_bytes())}, "headers": auth})
           for v in variants if not v.valid and v.path.is_file() and not v.path.is_symlink()]
    oversized = os.urandom(12 << 20)
    bad += [("oversized body", {"content": oversized, "headers": {**auth, "content-type": "application/octet-stream"}}),
            ("bad json", {"content": b'{"inputs": [1, 2', "headers": {**auth, "content-type": "application/json"}}),
            ("no token", good | {"headers": {}}),
            ("wrong token", good | {"headers": {"authorization": "Bearer wrong"}})]
    return good, bad


def _abuse_soak(n: int, clients: int = 16) -> dict:
    import httpx

    token = "soak-token"
    port = _free_port()
    env = {**os.environ, "SIGPLEX_SOAK_TOKEN": token}
    proc = subprocess.Popen([sys.executable, "-m", "sigplex.core.cli", "serve", "--plugin", "ofdm_chest", "--port",
                             str(port), "--token-env", "SIGPLEX_SOAK_TOKEN", "--queue", "64", "--max-body-mb", "8",
                             "--timeout-s", "120"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    codes: dict[str, int] = {}
    latencies, wrong, broken, rss = [], 0, 0, {}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            good, bad = _abuse_requests(Path(tmp), token)
            _wait_healthy(url)
            reference = httpx.post(f"{url}/predict", timeout=120, **good).content
            done = {"n": 0}

            def one(i: int):
                kind, kw = bad[(i // 4) % len(bad)] if i % 4 == 3 else ("good", good)
                t0 = time.perf_counter()
                try:
                    r = httpx.post(f"{url}/predict", timeout=300, **kw)
                    status, body = str(r.status_code), r.content
                except httpx.TransportError as exc:  # a broken pipe or a reset while still sending
                    status, body = f"transport error ({type(exc).__name__})", b""
                dt = time.perf_counter() - t0
                done["n"] += 1
                if done["n"] in (1000, n):
                    rss[done["n"]] = _rss_mb(proc.pid)
                return kind, status, body, dt

            t0 = time.perf_counter()
            with concurrent.futures.ThreadPoolExecutor(clients) as pool:
                for kind, status, body, dt in pool.map(one, range(n)):
                    codes[status] = codes.get(status, 0) + 1
                    broken += status.startswith("transport")
                    if kind == "good":
                        latencies.append(dt)
                        wrong += status != "200" or body != reference
            wall = time.perf_counter() - t0
        alive = proc.poll() is None
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    latencies.sort()
    server_errors = sum(c for s, c in codes.items() if s.isdigit() and int(s) >= 500 and s != "503")
    return {"rps": n / wall, "p50": latencies[len(latencies) // 2], "p99": latencies[int(len(latencies) * 0.99)],
            "codes": codes, "server_errors": server_errors, "wrong_good": wrong, "broken": broken,
            "rss_1000": rss.get(1000), "rss_last": rss.get(n), "alive": alive}


def run(quick: bool = False) -> list[dict]:
    from benchmarks._timing import row

    n = 200 if quick else 1000
    rows = []
    a = _abuse_soak(1000 if quick else 5000)
    growth = a["rss_last"] / a["rss_1000"] if a["rss_1000"] else float("nan")
    rows.append(row("serve_abuse", a["p50"], "p99", a["p99"], requests=1000 if quick else 5000, clients=16,
                    requests_per_s=round(a["rps"], 1), status_counts=json.dumps(a["codes"], sort_keys=True),
                    answers_5xx_not_503=a["server_errors"], good_answered_wrong=a["wrong_good"],
                    broken_pipes=a["broken"], rss_1000_mb=round(a["rss_1000"] or 0), rss_last_mb=round(
                        a["rss_last"] or 0), rss_last_over_1000=round(growth, 3), still_running=a["alive"],
                    note="ofdm_chest shipped model; ours_s = p50, peer_s = p99 latency of good requests (s)"))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        setups = {
            "ts_forecast": ["--max-steps", "20", "--set", "trainer.val_every=20"],
            "eeg_conformer": ["--max-steps", "10", "--set", "trainer.val_every=10"],
        }
        for plugin, overrides in setups.items():
            run_dir = tmp / plugin / "run"
            _train(plugin, run_dir, overrides)
            if plugin == "ts_forecast":  # a history CSV for upload requests: the embedded series' tail
                (tmp / plugin / "data").mkdir()
                _history_csv(run_dir, tmp / plugin / "data" / "history.csv")
            r = _soak(plugin, run_dir, n)
            rows.append(row(f"serve_{plugin}", r["p50"], "p95", r["p95"], requests=n, clients=8,
                            requests_per_s=round(r["rps"], 1), ok=r["ok"], malformed_4xx=r["bad_4xx"],
                            server_5xx=r["server_errors"], rss_last_over_100=round(r["rss_growth"], 3),
                            still_running=r["alive"], note="ours_s = p50 latency, peer_s = p95 latency (s)"))
    return rows


def _history_csv(run_dir: Path, out: Path) -> None:
    from sigplex.core.api import load_run
    from sigplex.datasets.tabular import embedded_csv

    cfg = load_run(run_dir).config
    d = cfg.data
    src = Path(embedded_csv(d.synthetic_rows, d.synthetic_channels, d.synthetic_seed))
    lines = src.read_text().splitlines()
    out.write_text("\n".join([lines[0]] + lines[-(d.lookback + 10):]) + "\n")


if __name__ == "__main__":  # pragma: no cover
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    print(run(quick=True))
