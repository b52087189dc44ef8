"""MossFormer2 long-audio inference: peak memory and time vs recording length (chunked overlap-add).

Small CPU config (the task's default model) on 1, 5 and 10 minutes of 8 kHz audio
(``--quick``: 1 and 2 minutes), chunks of 4 s with 1 s overlap, random weights (time and
memory do not depend on training), eval + no_grad, 1 thread (the machine is shared). The peer
is a single forward pass over the whole recording, run up to 2 minutes only (its memory grows
with length). Also the paper-size model (N=512, 24 layers) on 1 minute, chunked.
Peak memory = torch CPU allocations during the call (``peak_memory_mb``).
"""
from __future__ import annotations

import time

import numpy as np
import torch

from benchmarks._timing import peak_memory_mb, row


def _timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def run(quick: bool = False) -> list[dict]:
    from sigplex.core.config import resolve_config
    from sigplex.plugins.speech_sep.config import SeparationConfig
    from sigplex.plugins.speech_sep.long_audio import separate_long
    from sigplex.plugins.speech_sep.mossformer2 import MossFormer2
    from sigplex.plugins.speech_sep.task import SeparationTask

    torch.set_num_threads(1)
    torch.manual_seed(0)
    task = SeparationTask()
    cfg = resolve_config(SeparationConfig)
    sr = cfg.data.sample_rate
    chunk, overlap = int(cfg.data.chunk_seconds * sr), int(cfg.data.overlap_seconds * sr)
    small = task.build_model(cfg).eval()
    rows = []
    rng = np.random.default_rng(0)
    for minutes in ((1, 2) if quick else (1, 5, 10)):
        mix = (0.1 * rng.standard_normal(minutes * 60 * sr)).astype(np.float32)
        with torch.no_grad():
            def ours():
                return separate_long(small, mix, 2, chunk, overlap)
            ours_s = _timed(ours)
            ours_mb = peak_memory_mb(ours)
            peer_s = peer_mb = None
            if minutes <= 2:
                x = torch.from_numpy(mix)[None]
                peer_s = _timed(lambda: small(x))
                peer_mb = peak_memory_mb(lambda: small(x))
        extra = dict(config="small", audio_min=minutes, sample_rate=sr, chunk_s=cfg.data.chunk_seconds,
                     overlap_s=cfg.data.overlap_seconds, ours_peak_mb=round(ours_mb, 1),
                     peer_peak_mb=round(peer_mb, 1) if peer_mb is not None else None,
                     realtime_factor=round(ours_s / (minutes * 60), 4))
        if peer_s is not None:
            rows.append(row("mossformer2_long_audio", ours_s, "one-pass forward (no chunks)", peer_s, **extra))
        else:
            rows.append({"bench": "mossformer2_long_audio", "ours_s": round(ours_s, 5),
                         "peer": "one-pass forward (not run: memory grows with length)", "peer_s": None,
                         "ratio": None, **extra})
    paper = MossFormer2(num_spks=2).eval()
    mix = (0.1 * rng.standard_normal(60 * sr)).astype(np.float32)
    with torch.no_grad():
        def big():
            return separate_long(paper, mix, 2, chunk, overlap)
        big_s = _timed(big) if not quick else None
        big_mb = peak_memory_mb(big)
    rows.append({"bench": "mossformer2_long_audio", "ours_s": round(big_s, 5) if big_s else None,
                 "peer": "-", "peer_s": None, "ratio": None, "config": "paper (N=512, 24 layers)",
                 "audio_min": 1, "sample_rate": sr, "chunk_s": cfg.data.chunk_seconds,
                 "overlap_s": cfg.data.overlap_seconds, "ours_peak_mb": round(big_mb, 1),
                 "params_m": round(sum(p.numel() for p in paper.parameters()) / 1e6, 2)})
    return rows
