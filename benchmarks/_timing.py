"""Timing helpers shared by every benchmark: median wall time and peak memory."""
from __future__ import annotations

import gc
import statistics
import time
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


def median_times_interleaved(fns: dict[str, Callable[[], object]], repeat: int = 5, warmup: int = 1) -> dict[str, float]:
    """Median seconds of each ``fn`` timed in alternation (round-robin), so that load from other
    processes on a shared machine hits every contender alike."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def synced(fn: Callable[[], object], device) -> Callable[[], object]:
    """``fn`` that also waits for ``device`` (CUDA runs asynchronously), so a timing covers its work."""
    import torch

    if torch.device(device).type != "cuda":
        return fn

    def call():
        out = fn()
        torch.cuda.synchronize()
        return out

    return call


def peak_memory_mb(fn: Callable[[], object], device="cpu") -> float:
    """Peak memory (MiB) allocated by torch during ``fn()`` above what was allocated before, on ``device``.

    On CUDA it is the allocator's own peak counter.
    Walks every allocator event the profiler recorded (``profile_memory=True``), including those
    nested inside ops: the flat ``prof.events()`` list only keeps allocations made outside any
    op as ``[memory]`` entries, which misses almost everything.
    """
    import torch

    gc.collect()
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        fn()
        torch.cuda.synchronize()
        return (torch.cuda.max_memory_allocated() - base) / 2**20
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    allocations = []
    stack = list(prof.profiler.kineto_results.experimental_event_tree())
    while stack:
        node = stack.pop()
        stack.extend(node.children)
        size = getattr(node.extra_fields, "alloc_size", None)
        if size is not None and str(getattr(node.extra_fields, "device", "cpu")).startswith("cpu"):
            allocations.append((node.start_time_ns, size))
    allocations.sort(key=lambda a: a[0])
    current = peak = 0
    for _, size in allocations:
        current += size
        peak = max(peak, current)
    return peak / 2**20


def row(bench: str, ours_s: float, peer: str, peer_s: float, **extra) -> dict:
    """One result line: ``ratio`` = peer_s / ours_s (> 1 means sigplex is faster)."""
    return {"bench": bench, "ours_s": round(ours_s, 5), "peer": peer, "peer_s": round(peer_s, 5),
            "ratio": round(peer_s / ours_s, 3) if ours_s > 0 else None, **extra}


__all__ = ["median_time", "median_times_interleaved", "peak_memory_mb", "row", "synced"]
