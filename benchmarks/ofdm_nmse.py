"""Benchmark ofdm_nmse: AdaFortiTran (default size, trained on CPU) vs LS and LMMSE on a fixed held-out TDL-A set.

``ours_s``/``peer_s`` carry **NMSE in dB** (lower is better), not seconds: ``ours_s`` is
AdaFortiTran, ``peer_s`` the named baseline, and ``ratio`` is meaningless here (see
``nmse_db_*`` and ``gain_db`` = peer − ours). One row per (SNR, baseline).
``python -m benchmarks.ofdm_nmse --train MINUTES`` trains the default model from scratch
on 2 CPU threads for a wall-clock budget and writes ``plugins/ofdm_chest/weights/``; ``run``
only evaluates the shipped weights (``quick`` uses fewer test grids).
"""
from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np

from ._timing import row

WEIGHTS = Path(__file__).resolve().parent.parent / "plugins" / "ofdm_chest" / "weights" / "adafortitran.safetensors"


def train(minutes: float = 30.0, out: Path = WEIGHTS, batch: int = 16, lr: float = 1e-3, dropout: float = 0.0,
          seed: int = 0, threads: int = 2, log=print) -> Path:
    """Train the default AdaFortiTran on fresh TDL-A grids (paper's training ranges) for ``minutes`` of wall time."""
    import torch
    from safetensors.torch import save_file

    from sigplex.core.fileio import atomic_path
    from sigplex.datasets.ofdm import Conditions, generate, to_item
    from sigplex.plugins.ofdm_chest.adafortitran import AdaFortiTran

    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    model = AdaFortiTran(dropout=dropout)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    cond = Conditions()
    start, step, last_save, ema = time.time(), 0, time.time(), None
    budget = minutes * 60

    def save():
        sd = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
        with atomic_path(out, overwrite=True) as tmp:
            save_file(sd, str(tmp), metadata={"steps": str(step), "minutes": f"{(time.time() - start) / 60:.1f}"})

    while time.time() - start < budget:
        frac = (time.time() - start) / budget
        for g in opt.param_groups:  # cosine over the wall-clock budget, floor 2%
            g["lr"] = lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * frac)))
        d = generate(batch, seed * 1_000_003 + step, cond=cond)
        items = [to_item(d["h"][i], d["ls"][i], d["cond"][i]) for i in range(batch)]
        ls = torch.stack([it["ls"] for it in items])
        h = torch.stack([it["h"] for it in items])
        pr = torch.stack([it["priors"] for it in items])
        loss = torch.nn.functional.mse_loss(model(ls, pr), h)
        opt.zero_grad()
        loss.backward()
        opt.step()
        step += 1
        loss = loss.detach()
        ema = float(loss) if ema is None else 0.98 * ema + 0.02 * float(loss)
        if step % 20 == 0:
            log(f"step {step} t={time.time() - start:.0f}s loss_ema={ema:.4f} ({10 * math.log10(ema):.2f} dB)")
        if time.time() - last_save > 300:
            save()
            last_save = time.time()
    save()
    log(f"done: {step} steps in {(time.time() - start) / 60:.1f} min -> {out}")
    return out


def run(quick: bool = False) -> list[dict]:
    """NMSE (dB) per SNR of AdaFortiTran vs LS, LMMSE and genie LMMSE on a fixed held-out TDL-A set.

    Uses the shipped/trained weights when present, else trains for a short budget first
    (2 minutes with ``quick``, 60 otherwise) and says so in ``note``.
    """
    import torch

    from sigplex.core.fileio import load_weights_file
    from sigplex.datasets.ofdm import Conditions, generate
    from sigplex.plugins.ofdm_chest.adafortitran import AdaFortiTran
    from sigplex.plugins.ofdm_chest.baselines import BASELINES
    from sigplex.plugins.ofdm_chest.task import nmse_db

    note = "ours_s/peer_s are NMSE in dB (lower is better), not seconds; gain_db = peer - ours"
    if not WEIGHTS.is_file():
        train(2.0 if quick else 60.0)
        note += "; weights trained in this run"
    model = AdaFortiTran(dropout=0.0)
    model.load_state_dict(load_weights_file(WEIGHTS))
    model.eval()
    per_snr = 40 if quick else 200
    rows = []
    for snr in (0, 5, 10, 15, 20, 25):
        d = generate(per_snr, 90_000 + snr, cond=Conditions(snr_points=(float(snr),), delay_spread_ns=(50.0, 300.0),
                                                           doppler_hz=(200.0, 1000.0)))
        h = torch.as_tensor(d["h"])
        ls = torch.as_tensor(np.stack([d["ls"].real, d["ls"].imag], 1), dtype=torch.float32)
        with torch.no_grad():
            est = model(ls, torch.as_tensor(d["cond"][:, 1:]))
        ours = nmse_db(torch.complex(est[:, 0], est[:, 1]), h)
        peers = {name: nmse_db(fn(d["ls"], d["cond"]), h) for name, fn in BASELINES.items()}
        for name, val in peers.items():
            rows.append(row("ofdm_nmse", ours, name, val, snr_db=snr, n_grids=per_snr, nmse_db_adafortitran=round(ours, 3),
                            **{f"nmse_db_{k}": round(v, 3) for k, v in peers.items()}, gain_db=round(val - ours, 3),
                            note=note))
    return rows


if __name__ == "__main__":
    import argparse
    import json

    p = argparse.ArgumentParser()
    p.add_argument("--train", type=float, default=None, help="train for this many minutes first")
    p.add_argument("--quick", action="store_true")
    a = p.parse_args()
    if a.train:
        train(a.train, log=lambda s: print(s, flush=True))
    else:
        for r in run(quick=a.quick):  # noqa: F821  (defined below)
            print(json.dumps(r))
