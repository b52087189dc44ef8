"""Joint local+global gated attention (MossFormer shapes) vs full softmax attention, by length.

Ours: ``sigplex.core.ops.mixed_chunk_attention`` with MossFormer's shapes -- one head, shared
qk width 128, values ``[v, u]`` 2 × 1024 wide, chunks of 256 frames, batch 1, forward
without grad. Peer: full quadratic softmax attention through SDPA on the same q/k/v shapes
(skipped where its quadratic cost makes it impractical on this CPU). ``per_doubling`` is
our time growth per doubling of the length (goal ≤ 2.2×; 2.0 is linear, 4.0 quadratic).
A last row times the whole ``sigplex.core.blocks.GatedAttentionUnit`` (dim 512) at the largest length.
Memory is linear by construction: the largest intermediate is the ``[T/256, 256, 256]``
local score tensor (``T · 256`` floats), against ``T²`` for a naive softmax attention.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from benchmarks._timing import median_time, row
from sigplex.core.blocks import GatedAttentionUnit
from sigplex.core.ops.gated_attention import mixed_chunk_attention

QK, E, GROUP = 128, 2048, 256
PEER_MAX_LEN = 8192


def _inputs(n: int):
    g = torch.Generator().manual_seed(0)
    qk = [torch.randn(1, n, QK, generator=g) * 0.1 for _ in range(4)]
    return qk, torch.randn(1, n, E, generator=g)


def run(quick: bool = False) -> list[dict]:
    torch.manual_seed(0)
    lengths = [2048, 4096, 8192] if quick else [2048, 8192, 32768]
    repeat = 5 if quick else 3
    rows, previous = [], None
    for n in lengths:
        (qq, kq, ql, kl), values = _inputs(n)

        def ours():
            with torch.no_grad():
                return mixed_chunk_attention(qq, kq, ql, kl, values, group_size=GROUP)

        ours_s = median_time(ours, repeat=repeat)
        extra = {"seq_len": n}
        if previous is not None:
            doublings = math.log2(n / previous[0])
            extra["per_doubling"] = round((ours_s / previous[1]) ** (1 / doublings), 3)
        previous = (n, ours_s)
        if n <= PEER_MAX_LEN:
            q, k, v = qq[:, None], kq[:, None], values[:, None]

            def peer():
                with torch.no_grad():
                    return F.scaled_dot_product_attention(q, k, v)

            r = row(f"gated_attention_fwd_T{n}", ours_s, "softmax_sdpa_full", median_time(peer, repeat=repeat), **extra)
        else:
            r = row(f"gated_attention_fwd_T{n}", ours_s, "softmax_sdpa_full", 0.0, **extra)
            r.update(peer_s=None, ratio=None, note=f"peer skipped above T={PEER_MAX_LEN} (quadratic cost)")
        rows.append(r)

    n = lengths[-1]
    gau = GatedAttentionUnit(512, group_size=GROUP, query_key_dim=QK).eval()
    x = torch.randn(1, n, 512)

    def unit():
        with torch.no_grad():
            return gau(x)

    r = row(f"gated_attention_unit512_fwd_T{n}", median_time(unit, repeat=repeat), "none", 0.0, seq_len=n)
    r.update(peer_s=None, ratio=None, note="whole MossFormer attention unit (projections + convs), no peer")
    rows.append(r)
    return rows
