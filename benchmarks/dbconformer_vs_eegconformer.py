"""DBConformer (sigplex) vs braindecode ``EEGConformer``: parameters, inference and training throughput.

Both at 22 channels, 4 classes, 1000 samples (4 s at 250 Hz), batch 32, fp32 on CPU. Inference is
eval mode without grad; a training step is forward + cross-entropy + backward + Adam step.
Goal: ≤ 1/8 of the peer's parameters and ≥ 2× its throughput (ratio = peer_s / ours_s).
"""
from __future__ import annotations

import torch

from benchmarks._timing import median_times_interleaved, row


def _n_params(m) -> int:
    return sum(p.numel() for p in m.parameters())


def run(quick: bool = False) -> list[dict]:
    from braindecode.models import EEGConformer

    from sigplex.plugins.eeg_conformer.dbconformer import DBConformer

    torch.manual_seed(0)
    n_chans, n_outputs, n_times, batch = 22, 4, 1000, 32
    ours = DBConformer(n_chans, n_outputs, n_times, 250.0)
    peer = EEGConformer(n_chans=n_chans, n_outputs=n_outputs, n_times=n_times, sfreq=250.0)
    x = torch.randn(batch, n_chans, n_times)
    y = torch.randint(0, n_outputs, (batch,))
    p_ours, p_peer = _n_params(ours), _n_params(peer)
    repeat = 3 if quick else 10
    common = {"params_ours": p_ours, "params_peer": p_peer, "param_ratio": round(p_peer / p_ours, 2), "batch": batch}

    ours.eval(), peer.eval()

    def infer(model):
        def fn():
            with torch.no_grad():
                return model(x)
        return fn

    t = median_times_interleaved({"ours": infer(ours), "peer": infer(peer)}, repeat=repeat)
    rows = [row("dbconformer_infer_22ch_1000_B32", t["ours"], "braindecode.EEGConformer", t["peer"], **common,
                windows_per_s_ours=round(batch / t["ours"], 1), windows_per_s_peer=round(batch / t["peer"], 1))]

    ours.train(), peer.train()
    opts = {id(m): torch.optim.Adam(m.parameters(), lr=1e-3) for m in (ours, peer)}

    def step(model):
        opt = opts[id(model)]

        def fn():
            opt.zero_grad(set_to_none=True)
            torch.nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
        return fn

    t = median_times_interleaved({"ours": step(ours), "peer": step(peer)}, repeat=repeat)
    rows.append(row("dbconformer_train_step_22ch_1000_B32", t["ours"], "braindecode.EEGConformer", t["peer"], **common,
                    windows_per_s_ours=round(batch / t["ours"], 1), windows_per_s_peer=round(batch / t["peer"], 1)))
    return rows
