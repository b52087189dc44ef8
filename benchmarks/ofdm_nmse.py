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

from ._timing import row

WEIGHTS = Path(__file__).resolve().parent.parent / "plugins" / "ofdm_chest" / "weights" / "adafortitran.safetensors"
# (the same file as sigplex.plugins.ofdm_chest.pretrained.WEIGHTS in a source checkout)


def train(minutes: float = 60.0, out: Path = WEIGHTS, loss: str = "nmse_db", precision: str = "bf16", seed: int = 0,
          threads: int = 2, log=print) -> Path:
    """Train the default AdaFortiTran on fresh TDL-A grids (the paper's training ranges) for ``minutes`` of wall time.

    The task's default config (``chest``: loss, batch 16, Adam 1e-3 with 200 warm-up steps,
    dropout off) with the cosine decay spread over the wall-clock budget instead of a step
    count, and bf16 autocast; the ``cpu60`` preset is the same recipe for ``platform train``.
    Saves (float16) every 5 minutes.
    """
    import torch

    from sigplex.core.task import Prepared
    from sigplex.core.train.optim import build_optimizer
    from sigplex.datasets.ofdm import generate, to_item
    from sigplex.plugins.ofdm_chest import adafortitran  # noqa: F401  (registers the models)
    from sigplex.plugins.ofdm_chest.config import ChestConfig, conditions_of, grid_of
    from sigplex.plugins.ofdm_chest.pretrained import save_half
    from sigplex.plugins.ofdm_chest.task import ChestTask

    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    task = ChestTask()
    config = ChestConfig(loss={"name": loss})
    prepared = Prepared(config)
    grid, cond = grid_of(config), conditions_of(config, "train")
    batch, lr, warmup = config.trainer.batch_size, config.optim.lr, config.optim.warmup_steps
    floor = config.optim.min_lr_ratio
    model = task.build_model(config).train()
    opt = build_optimizer(model.parameters(), config.optim)  # Adam, lr 1e-3
    start, step, last_save, ema = time.time(), 0, time.time(), None
    budget = minutes * 60

    def save():  # float16: the shipped file must stay under 5 MB (float32 is 5.4 MB)
        save_half(model.state_dict(), out, {"steps": step, "minutes": f"{(time.time() - start) / 60:.1f}",
                                            "batch": batch, "loss": loss, "precision": precision})

    while time.time() - start < budget:
        frac = (time.time() - start) / budget
        for g in opt.param_groups:  # warm-up, then cosine over the wall-clock budget down to ``floor``
            g["lr"] = lr * min(1.0, (step + 1) / warmup) * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * frac)))
        d = generate(batch, seed * 1_000_003 + step, grid, cond)
        b = to_item(d["h"], d["ls"], d["cond"])
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            value = task.training_step(model, b, prepared)
        opt.zero_grad()
        value.backward()
        opt.step()
        step += 1
        value = float(value.detach())
        ema = value if ema is None else 0.98 * ema + 0.02 * value
        if step % 50 == 0:
            log(f"step {step} t={time.time() - start:.0f}s loss_ema={ema:.4f}")
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

    from sigplex.datasets.ofdm import Conditions, generate, to_item
    from sigplex.plugins.ofdm_chest.baselines import BASELINES
    from sigplex.plugins.ofdm_chest.metrics import nmse_db, to_complex
    from sigplex.plugins.ofdm_chest.pretrained import load_pretrained

    note = "ours_s/peer_s are NMSE in dB (lower is better), not seconds; gain_db = peer - ours"
    if not WEIGHTS.is_file():
        train(2.0 if quick else 60.0)
        note += "; weights trained in this run"
    model = load_pretrained(WEIGHTS)
    per_snr = 40 if quick else 200
    rows = []
    for snr in (0, 5, 10, 15, 20, 25):
        d = generate(per_snr, 90_000 + snr, cond=Conditions(snr_points=(float(snr),), delay_spread_ns=(50.0, 300.0),
                                                           doppler_hz=(200.0, 1000.0)))
        h, b = torch.as_tensor(d["h"]), to_item(d["h"], d["ls"], d["cond"])
        with torch.no_grad():
            ours = nmse_db(to_complex(model(b["ls"], b["priors"])), h)
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
        for r in run(quick=a.quick):
            print(json.dumps(r))
