"""MossFormer2 long-audio inference: peak memory and time vs recording length (chunked overlap-add).

Small CPU config (the task's default model) on 1, 5 and 10 minutes of 8 kHz audio
(``--quick``: 1 and 2 minutes), chunks of 4 s with 1 s overlap, random weights (time and
memory do not depend on training), eval + no_grad, 1 thread (the machine is shared). The peer
is a single forward pass over the whole recording, run up to 2 minutes only (its memory grows
with length). Also the paper-size model (N=512, 24 layers) on 1 minute, chunked.
Peak memory = torch CPU allocations during the call (``peak_memory_mb``).

``stereo_16k`` rows: the whole ``predict`` path (:func:`~sigplex.plugins.speech_sep.recording.separate_recording`:
read in blocks and downmix, resample 16 -> 8 kHz, chunked separation, both outputs back to 16 kHz)
on a 16 kHz stereo WAV of 1 and 10 minutes (``--quick``: 1 and 2), each in a fresh process whose peak
resident memory (``VmHWM``: ``ru_maxrss`` would keep the forking parent's high-water mark) is reported
beside the audio buffers the call must hold (the mono input at both rates and two outputs at both
rates): flat memory means the rest does not grow with length.
"""
from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks._timing import peak_memory_mb, row


def _timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


_PIPELINE = """
import resource, sys, time
import torch
from sigplex.core.config import resolve_config
from sigplex.core.task import Prepared
from sigplex.plugins.speech_sep import mossformer2  # registers the model
from sigplex.plugins.speech_sep.config import SeparationConfig
from sigplex.plugins.speech_sep.task import SeparationTask
torch.set_num_threads(1)
torch.manual_seed(0)
task = SeparationTask()
cfg = resolve_config(SeparationConfig)
prepared = Prepared(config=cfg, state={"sample_rate": 8000})
model = task.build_model(cfg).eval()


def peak_kb():
    # VmHWM starts afresh at exec; ru_maxrss keeps the forking parent's high-water mark (Linux)
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


base = peak_kb()
start = time.perf_counter()
with torch.no_grad():
    out = task.predict(model, sys.argv[1], prepared)
seconds = time.perf_counter() - start
print(out.sources.shape[1], seconds, base, peak_kb())
"""


def stereo_16k_rows(minutes_list) -> list[dict]:
    """Peak RSS of the predict path on 16 kHz stereo WAVs of each length (fresh process each)."""
    import soundfile as sf

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for minutes in minutes_list:
            path = Path(tmp) / f"meeting_{minutes}min.wav"
            rng = np.random.default_rng(minutes)
            with sf.SoundFile(path, "w", 16000, 2, subtype="PCM_16") as f:
                for _ in range(minutes):  # written a minute at a time
                    f.write((0.1 * rng.standard_normal((60 * 16000, 2))).astype(np.float32))
            out = subprocess.run([sys.executable, "-c", _PIPELINE, str(path)], capture_output=True, text=True,
                                 check=True).stdout.split()
            length, seconds, base_kb, peak_kb = int(out[0]), float(out[1]), int(out[2]), int(out[3])
            buffers_mb = minutes * 60 * 4 * (16000 + 8000 + 2 * 8000 + 2 * 16000) / 2 ** 20
            rows.append({"bench": "mossformer2_long_audio", "ours_s": round(seconds, 3), "peer": "-", "peer_s": None,
                         "ratio": None, "config": "small, predict path, stereo_16k", "audio_min": minutes,
                         "sample_rate": 16000, "output_samples": length,
                         "process_peak_mb": round(peak_kb / 1024, 1),
                         "peak_over_start_mb": round((peak_kb - base_kb) / 1024, 1),
                         "audio_buffers_mb": round(buffers_mb, 1),
                         "realtime_factor": round(seconds / (minutes * 60), 4)})
    return rows


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
    return rows + stereo_16k_rows((1, 2) if quick else (1, 10))
