"""sigplex MultiHeadAttention vs ``torch.nn.MultiheadAttention`` (same weights), fwd and fwd+bwd.

Two shapes: an EEG-Conformer-sized one (batch 32, 63 tokens, width 40, 10 heads) and a
generic one (batch 8, 512 tokens, width 256, 8 heads; quick: 256 tokens). Forward runs in
eval mode without grad (the peer may take its native fast path there); forward+backward
in train mode with dropout 0.
"""
from __future__ import annotations

import torch

from benchmarks._timing import median_time, row
from sigplex.core.ops.attention import MultiHeadAttention


def run(quick: bool = False) -> list[dict]:
    torch.manual_seed(0)
    shapes = [(32, 63, 40, 10), (8, 256 if quick else 512, 256, 8)]
    repeat = 5 if quick else 10
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

        rows.append(row(f"mha_fwd_{tag}", median_time(ours_fwd, repeat), "torch.nn.MultiheadAttention",
                        median_time(peer_fwd, repeat)))

        ours.train(), peer.train()
        xg = x.clone().requires_grad_()

        def ours_step():
            ours(xg).sum().backward()

        def peer_step():
            peer(xg, xg, xg, need_weights=False)[0].sum().backward()

        rows.append(row(f"mha_fwd_bwd_{tag}", median_time(ours_step, repeat), "torch.nn.MultiheadAttention",
                        median_time(peer_step, repeat)))
    return rows
