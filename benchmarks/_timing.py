"""Timing helpers shared by every benchmark: median wall time and peak memory."""
from __future__ import annotations

import gc
import statistics
import time
import tracemalloc
from typing import Callable


def median_time(fn: Callable[[], object], repeat: int = 5, warmup: int = 1) -> float:
    """Median wall-clock seconds of ``fn()`` over ``repeat`` runs after ``warmup`` runs."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def peak_memory_mb(fn: Callable[[], object]) -> float:
    """Peak CPU memory (MiB) allocated by torch during ``fn()``, via the profiler's allocator stats."""
    import torch

    gc.collect()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    # Walk allocation events to reconstruct the running peak.
    events = sorted(
        (e for e in prof.events() if e.name == "[memory]"),
        key=lambda e: e.time_range.start,
    )
    current = peak = 0
    for e in events:
        current += e.cpu_memory_usage
        peak = max(peak, current)
    return peak / 2**20


def row(bench: str, ours_s: float, peer: str, peer_s: float, **extra) -> dict:
    """One result line: ``ratio`` = peer_s / ours_s (> 1 means sigplex is faster)."""
    return {"bench": bench, "ours_s": round(ours_s, 5), "peer": peer, "peer_s": round(peer_s, 5),
            "ratio": round(peer_s / ours_s, 3) if ours_s > 0 else None, **extra}


__all__ = ["median_time", "peak_memory_mb", "row", "tracemalloc"]
