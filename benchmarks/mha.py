"""sigplex MultiHeadAttention vs ``torch.nn.MultiheadAttention`` (same weights), fwd and fwd+bwd.

Two shapes: an EEG-Conformer-sized one (batch 32, 63 tokens, width 40, 10 heads) and a
generic one (batch 8, 512 tokens, width 256, 8 heads; quick: 256 tokens). Forward runs in
eval mode without grad (the peer may take its native fast path there); forward+backward
in train mode with dropout 0. Both sides are timed in alternation, each sample a block of calls
lasting about 10-20 ms (one 1.7 ms call timed alone moved the ratio by +-5 % between runs).
"""
from __future__ import annotations

import torch

from benchmarks._timing import median_times_interleaved, row
from sigplex.core.ops.attention import MultiHeadAttention


def run(quick: bool = False) -> list[dict]:
    torch.manual_seed(0)
    shapes = [(32, 63, 40, 10), (8, 256 if quick else 512, 256, 8)]
    repeat = 5 if quick else 15
    rows = []
    for b, n, e, h in shapes:
        peer = torch.nn.MultiheadAttention(e, h, batch_first=True)
        ours = MultiHeadAttention.from_torch(peer)
        x = torch.randn(b, n, e)
        tag = f"B{b}_T{n}_E{e}_H{h}"

        ours.eval(), peer.eval()

        def ours_fwd():
            with torch.no_grad():
                return ours(x)

        def peer_fwd():
            with torch.no_grad():
                return peer(x, x, x, need_weights=False)[0]

        calls = max(1, 2048 // n)  # a block of calls per sample: 32 at T=63, 4 at T=512
        t = median_times_interleaved({"ours": _block(ours_fwd, calls), "peer": _block(peer_fwd, calls)}, repeat)
        rows.append(row(f"mha_fwd_{tag}", t["ours"] / calls, "torch.nn.MultiheadAttention", t["peer"] / calls))

        ours.train(), peer.train()
        xg = x.clone().requires_grad_()

        def ours_step():
            ours(xg).sum().backward()

        def peer_step():
            peer(xg, xg, xg, need_weights=False)[0].sum().backward()

        t = median_times_interleaved({"ours": _block(ours_step, calls), "peer": _block(peer_step, calls)}, repeat)
        rows.append(row(f"mha_fwd_bwd_{tag}", t["ours"] / calls, "torch.nn.MultiheadAttention", t["peer"] / calls))
    return rows


def _block(fn, calls: int):
    def run_block():
        for _ in range(calls):
            fn()
    return run_block
