"""Separation quality and speed: our small MossFormer2 vs torchaudio ConvTasNet, same wall-clock budget, same data.

Both train on the same dynamic mixtures of the embedded corpus (same item seeds, batch 4,
1 s segments, Adam 1e-3, a cosine schedule over the **time** budget, clip 5) for the same
wall-clock budget each (20 minutes, 2 threads, ``SIGPLEX_SEP_THREADS`` to change; ``--quick``: 2 minutes;
``SIGPLEX_SEP_MINUTES`` overrides, ``SIGPLEX_SEP_PRESET`` picks the task preset whose data both train on, e.g.
``widened``, and ``SIGPLEX_SEP_SET`` adds ``key=value`` settings separated by spaces, e.g.
``data.extra_voices=real_voices``: the shipped model's recipe), then are scored on the same held-out
test mixtures (test voices, 3 s) and, if ``SIGPLEX_SEP_REAL`` names a ``mix/ + s1/, s2/`` folder of real
mixtures (``speech_sep/data/make_real_mixtures.py``), on those whole files too (``*_real_si_sdri``).
ConvTasNet is sized to a similar parameter count (``enc_num_feats=128, msk_num_feats=64,
msk_num_hidden_feats=128, 6 layers x 2 stacks``; torchaudio's default is 5M parameters).
``ours_s``/``peer_s`` are inference times on a 10 s mixture (ratio > 1: ours is faster);
the steps each reached and SI-SDRi of both are extra columns.
"""
from __future__ import annotations

import dataclasses
import math
import os
import time

import numpy as np
import torch

from benchmarks._timing import median_times_interleaved, row


def _train(model, task, prepared, seconds: float, seed: int = 0) -> int:
    """Train for ``seconds`` of wall clock (cosine over elapsed time); the number of steps taken."""
    cfg, train = prepared.config, prepared.train
    opt = torch.optim.Adam(model.parameters(), lr=cfg.optim.lr)
    model.train()
    start = time.perf_counter()
    step = 0
    while (elapsed := time.perf_counter() - start) < seconds:
        for group in opt.param_groups:
            group["lr"] = cfg.optim.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * elapsed / seconds)))
        items = []
        for j in range(cfg.trainer.batch_size):
            np.random.seed(seed * 1_000_003 + step * 97 + j)
            items.append(train[j])
        batch = task.collate(items)
        loss, _ = task.training_step(model, batch, prepared)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.trainer.clip_grad_norm)
        opt.step()
        step += 1
    model.eval()
    return step


def run(quick: bool = False) -> list[dict]:
    from torchaudio.models import ConvTasNet

    from sigplex.core.config import resolve_config
    from sigplex.plugins.speech_sep import mossformer2  # noqa: F401  (registers the model)
    from sigplex.plugins.speech_sep.config import SeparationConfig
    from sigplex.plugins.speech_sep.task import SeparationTask

    torch.set_num_threads(int(os.environ.get("SIGPLEX_SEP_THREADS", 2)))
    minutes = float(os.environ.get("SIGPLEX_SEP_MINUTES", 2 if quick else 20))
    preset = os.environ.get("SIGPLEX_SEP_PRESET") or None
    task = SeparationTask()
    overrides = os.environ.get("SIGPLEX_SEP_SET", "").split()
    cfg = resolve_config(SeparationConfig, presets=dict(task.presets), config=preset, overrides=overrides)
    data = task.build_data(cfg, None)
    torch.manual_seed(0)
    ours = task.build_model(cfg)
    torch.manual_seed(0)
    peer = ConvTasNet(num_sources=2, enc_kernel_size=16, enc_num_feats=128, msk_kernel_size=3, msk_num_feats=64,
                      msk_num_hidden_feats=128, msk_num_layers=6, msk_num_stacks=2)

    class PeerWrap(torch.nn.Module):  # [B, T] -> [B, S, T] like ours
        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, x):
            return self.net(x.unsqueeze(1))

    peer = PeerWrap(peer)
    steps_ours = _train(ours, task, data, minutes * 60)
    steps_peer = _train(peer, task, data, minutes * 60)
    with torch.no_grad():
        m_ours = task.evaluate(ours, data.test, data)
        m_peer = task.evaluate(peer, data.test, data)
        real = {}
        if os.environ.get("SIGPLEX_SEP_REAL"):
            whole = dataclasses.replace(data, config=cfg.model_copy(  # whole files, not 3 s crops
                update={"data": cfg.data.model_copy(update={"eval_seconds": None})}))
            real_set = task.evaluation_data(os.environ["SIGPLEX_SEP_REAL"], whole)
            real = {"real_mixtures": len(real_set),
                    "ours_real_si_sdri": round(task.evaluate(ours, real_set, whole)["si_sdri"], 2),
                    "peer_real_si_sdri": round(task.evaluate(peer, real_set, whole)["si_sdri"], 2)}
        x = torch.randn(1, 10 * cfg.data.sample_rate) * 0.1
        t = median_times_interleaved({"ours": lambda: ours(x), "peer": lambda: peer(x)}, repeat=3 if quick else 5)
    n_ours = sum(p.numel() for p in ours.parameters())
    n_peer = sum(p.numel() for p in peer.parameters())
    return [row("separation_vs_convtasnet", t["ours"], "torchaudio ConvTasNet (small)", t["peer"],
                minutes_each=minutes, threads=torch.get_num_threads(),
                data_preset=preset or "default", ours_steps=steps_ours, peer_steps=steps_peer,
                test_mixtures=int(m_ours["n_items"]), ours_si_sdri=round(m_ours["si_sdri"], 2),
                peer_si_sdri=round(m_peer["si_sdri"], 2), ours_sdri=round(m_ours["sdri"], 2),
                peer_sdri=round(m_peer["sdri"], 2), **real, overrides=" ".join(overrides) or None,
                ours_params=n_ours, peer_params=n_peer, input="10 s @ 8 kHz")]
