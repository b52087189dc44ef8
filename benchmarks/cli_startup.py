"""cli_startup: how long sigplex adds on top of torch at import, and `platform plugins list` wall time.

Goals: import beyond torch < 1 s; `platform plugins list` < 3 s (it imports no torch).
Rows: ``ours_s`` is sigplex's cost, ``peer_s`` the goal it is measured against (ratio > 1: within goal).
"""
from __future__ import annotations

import statistics
import subprocess
import sys
import time

from benchmarks._timing import row


def _wall(args: list[str], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run(args, check=True, capture_output=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def run(quick: bool = False) -> list[dict]:
    repeat = 2 if quick else 5
    py = sys.executable
    torch_only = _wall([py, "-c", "import torch"], repeat)
    with_core = _wall([py, "-c", "import torch, sigplex.core.api, sigplex.core.train, sigplex.core.ops, "
                                 "sigplex.core.adapters, sigplex.core.cli"], repeat)
    listing = _wall([py, "-m", "sigplex.core.cli", "plugins", "list"], repeat)
    beyond = max(with_core - torch_only, 1e-3)
    return [
        row("cli_startup_import_beyond_torch", beyond, "goal", 1.0, torch_import_s=round(torch_only, 3)),
        row("cli_startup_plugins_list", listing, "goal", 3.0),
    ]
