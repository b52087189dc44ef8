"""Long-sequence mixers (sigplex.core.ops) against softmax attention (SDPA), forward+backward, by length.

Section ``long_sequence_mixers``: batch 1, width ``W`` (64; one extra row at 256 and L 16k), lengths 1k-64k;
each mixer's forward+backward time and peak memory (allocator peak above the inputs, torch profiler), against
causal SDPA of the same width (``W / 64`` heads of 64) timed in the same interleaved loop, up to 16k (at 32k it
would take tens of seconds on 2 cores). ``ratio`` = SDPA time / mixer time; ``per_doubling`` = the mixer's
time growth per doubling of L (2.0 is linear), ``mem_per_doubling`` the same for memory. Mixers:
``fft_conv`` (a kernel as long as the input), ``s4d`` (64 complex modes per channel), ``selective_scan``
(state 16, Δ and A as ``MambaBlock`` initialises them), ``gla`` (gates ``logsigmoid(x + 3)``) and
``delta_rule`` (chunk 64), both with heads of width 64. The last rows give each mixer's
crossover length: the shortest L at which it is faster than SDPA.

All contenders run on ``THREADS`` (1) intra-op threads; the rows say how many, and the load average.

Section ``fft_conv_vs_conv1d``: ``fft_conv``'s FFT path against the direct ``F.conv1d`` (its fallback), by
kernel length K at L 4k and 16k, C 64, forward+backward; ``ratio`` > 1: the FFT is faster. This is the
measurement behind ``DIRECT_MAX_KERNEL``.
"""
from __future__ import annotations

import math
import os

import torch
import torch.nn.functional as F

from benchmarks._timing import median_times_interleaved, peak_memory_mb, row
from sigplex.core.ops import delta_rule, fft_conv, gated_linear_attention, s4d, selective_scan

HEAD = 64
SDPA_MAX_LEN = 16384
# intra-op threads for every contender. The machine these numbers come from is 2 cores shared by three
# agents (load average ~5): there two OpenMP threads made every contender 1.5-7x slower than one (SDPA 3x at
# L 4k: 0.42 vs 0.14 s; the selective scan's many cache-sized ops 7x), so one thread measures the kernels
# rather than the scheduler
THREADS = 1


def _inputs(width: int, length: int) -> dict[str, tuple]:
    g = torch.Generator().manual_seed(0)

    def rand(*shape, scale=1.0):
        return (torch.randn(*shape, generator=g) * scale).requires_grad_()

    heads = max(1, width // HEAD)
    q, k, v = (rand(1, heads, length, HEAD) for _ in range(3))
    return {
        "fft_conv": (rand(1, width, length), rand(width, length, scale=length ** -0.5)),
        "s4d": (rand(1, width, length), rand(width, scale=0.0).detach().add(-4.0).requires_grad_(),
                rand(width, 64, scale=0.0).detach().add(-0.7).requires_grad_(), rand(width, 64), rand(width, 64, 2)),
        "selective_scan": (rand(1, width, length), _mamba_delta(width, length, g), _mamba_a(width),
                           rand(1, 16, length), rand(1, 16, length)),
        "gla": (q, k, v, F.logsigmoid(rand(1, heads, length, HEAD) + 3).detach().requires_grad_()),
        "delta_rule": (q, F.normalize(k, dim=-1).detach().requires_grad_(), v,
                       torch.rand(1, heads, length, generator=g).requires_grad_()),
        "sdpa": (q, k, v),
    }


def _mamba_delta(width: int, length: int, g: torch.Generator) -> torch.Tensor:
    """Δ before softplus as MambaBlock starts: softplus(bias) log-uniform in [1e-3, 0.1] per channel, plus noise."""
    dt = torch.exp(torch.rand(width, 1, generator=g) * math.log(100) + math.log(1e-3))
    bias = dt + torch.log(-torch.expm1(-dt))
    return (bias + 0.5 * torch.randn(1, width, length, generator=g)).requires_grad_()


def _mamba_a(width: int) -> torch.Tensor:
    """A as MambaBlock starts: -(1, 2, ..., 16) for every channel."""
    return (-torch.arange(1, 17, dtype=torch.float32).repeat(width, 1)).requires_grad_()


OPS = {
    "fft_conv": lambda x, k: fft_conv(x, k),
    "s4d": lambda *a: s4d(*a),
    "selective_scan": lambda u, d, a, b, c: selective_scan(u, d, a, b, c, delta_softplus=True),
    "gla": lambda q, k, v, g: gated_linear_attention(q, k, v, g),
    "delta_rule": lambda q, k, v, b: delta_rule(q, k, v, b, chunk_size=64),
    "sdpa": lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True),
}


def _step(name: str, args: tuple):
    def step():
        OPS[name](*args).sum().backward()
        for t in args:
            t.grad = None
    return step


def _mixer_rows(width: int, lengths: list[int], repeat: int) -> list[dict]:
    rows, previous, sdpa_at = [], {}, {}
    for n in lengths:
        inputs = _inputs(width, n)
        names = [m for m in OPS if m != "sdpa" or n <= SDPA_MAX_LEN]
        times = median_times_interleaved({m: _step(m, inputs[m]) for m in names}, repeat=repeat)
        load = round(os.getloadavg()[0], 2)
        for m in names:
            if m == "sdpa":
                continue
            mem = peak_memory_mb(_step(m, inputs[m]))
            extra = {"mixer": m, "width": width, "seq_len": n, "mem_mb": round(mem, 1), "load": load}
            if m in previous and previous[m][0] < n:
                steps = math.log2(n / previous[m][0])
                extra["per_doubling"] = round((times[m] / previous[m][1]) ** (1 / steps), 3)
                extra["mem_per_doubling"] = round((mem / previous[m][2]) ** (1 / steps), 3)
            previous[m] = (n, times[m], mem)
            peer_s = times.get("sdpa")
            rows.append(row("long_sequence_mixers", times[m], "sdpa_causal", peer_s or 0.0, **extra))
            if peer_s is None:
                rows[-1].update(peer_s=None, ratio=None)
        if "sdpa" in times:
            sdpa_at[n] = (times["sdpa"], peak_memory_mb(_step("sdpa", inputs["sdpa"])))
            rows.append(row("long_sequence_mixers", sdpa_at[n][0], "sdpa_causal", sdpa_at[n][0], mixer="sdpa",
                            width=width, seq_len=n, mem_mb=round(sdpa_at[n][1], 1), load=load))
    return rows


def _crossovers(rows: list[dict]) -> list[dict]:
    out = []
    for m in dict.fromkeys(r["mixer"] for r in rows if r["mixer"] != "sdpa"):
        faster = [r["seq_len"] for r in rows if r["mixer"] == m and r["width"] == HEAD and (r["ratio"] or 0) > 1]
        crossover = min(faster) if faster else None
        r = row("long_sequence_mixers", 0.0, "sdpa_causal", 0.0, mixer=m, width=HEAD, crossover_len=crossover)
        r.update(ours_s=None, peer_s=None, ratio=None, note="crossover_len: the shortest measured L at which the "
                 "mixer's forward+backward beats causal SDPA of the same width")
        out.append(r)
    return out


def _fft_rows(lengths: list[int], kernels: list[int], repeat: int) -> list[dict]:
    rows = []
    g = torch.Generator().manual_seed(1)
    for n in lengths:
        x = torch.randn(1, 64, n, generator=g).requires_grad_()
        for taps in kernels:
            k = torch.randn(64, taps, generator=g).requires_grad_()

            def conv(direct):
                def step():
                    fft_conv(x, k, direct=direct).sum().backward()
                    x.grad = k.grad = None
                return step

            t = median_times_interleaved({"fft": conv(False), "conv1d": conv(True)}, repeat=repeat)
            rows.append(row("fft_conv_vs_conv1d", t["fft"], "F.conv1d", t["conv1d"], seq_len=n, kernel=taps,
                            channels=64, load=round(os.getloadavg()[0], 2)))
    return rows


def run(quick: bool = False, threads: int = THREADS) -> list[dict]:
    torch.manual_seed(0)
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        if quick:
            rows = _mixer_rows(HEAD, [1024, 2048], repeat=1)
            rows += _crossovers(rows) + _fft_rows([4096], [16, 256], repeat=1)
        else:
            rows = _mixer_rows(HEAD, [1024 * 2 ** i for i in range(7)], repeat=3)
            rows += _mixer_rows(4 * HEAD, [SDPA_MAX_LEN], repeat=3)
            rows += _crossovers(rows) + _fft_rows([4096, 16384], [8, 16, 32, 64, 256, 1024], repeat=5)
    finally:
        torch.set_num_threads(previous)
    note = (f"every contender on {threads} intra-op thread(s) (column threads; the stamp gives the harness's "
            "default); load: the 1-minute load average during the row")
    return [dict(r, threads=threads, note=r.get("note") or note) for r in rows]
