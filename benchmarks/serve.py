"""serve: requests/s and p50/p95 latency through ``platform serve``, and a soak with malformed requests.

For the ts_forecast and eeg_conformer default models (short training runs), a real server
process takes N requests from 8 concurrent clients, 10% of them malformed. Reported: requests/s,
p50/p95 latency of good requests, how many answers were 5xx (goal 0) and the server's resident
memory at the last request against request 100 (goal ≤ 1.1). ``ours_s`` is the p50 latency;
``peer``/``peer_s`` is the p95 (ratio = p95 / p50).
"""
from __future__ import annotations

import concurrent.futures
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

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "sigplex.core.cli", "serve", "--checkpoint", str(run),
                             "--port", str(port), "--queue", "64", "--timeout-s", "120"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(240):
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.25)
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


def run(quick: bool = False) -> list[dict]:
    from benchmarks._timing import row

    n = 200 if quick else 1000
    rows = []
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
