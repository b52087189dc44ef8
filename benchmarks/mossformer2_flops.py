"""MossFormer2 at paper size: FLOPs per second of 8 kHz audio and the fraction of the machine's matmul peak.

The paper configuration (N=512, 24 layers, group 256; the ``paper`` preset), random weights,
eval + no_grad, 2 threads, one 4 s chunk of 8 kHz audio (the chunk the long-audio path runs).
FLOPs come from ``benchmarks/_flops.py`` (Linear/conv layers by hand from their shapes, attention
products by FlopCounterMode); ``gflop_flopcountermode`` is FlopCounterMode's own total, kept as
the check. The peak is an N=2048 fp32 matmul measured first in the same run.

``ours_s`` = seconds per second of audio; ``peer_s`` = the seconds the same FLOPs would take at
the matmul peak, so ``ratio`` = **fraction of peak** (goal >= 0.4).
"""
from __future__ import annotations

from benchmarks._flops import count_flops, matmul_peak_gflops
from benchmarks._timing import median_time, row


def run(quick: bool = False) -> list[dict]:
    import torch

    from sigplex.core.config import resolve_config
    from sigplex.plugins.speech_sep import mossformer2  # noqa: F401  (registers the model)
    from sigplex.plugins.speech_sep.config import SeparationConfig
    from sigplex.plugins.speech_sep.task import SeparationTask

    torch.set_num_threads(2)
    torch.manual_seed(0)
    peak = matmul_peak_gflops()
    task = SeparationTask()
    cfg = resolve_config(SeparationConfig, presets=dict(task.presets), config="paper")
    model = task.build_model(cfg).eval()
    seconds = 2.0 if quick else 4.0
    x = torch.randn(1, int(seconds * cfg.data.sample_rate))
    flops = count_flops(model, x)
    with torch.no_grad():
        t = median_time(lambda: model(x), repeat=2 if quick else 3)
    per_second = flops["flops"] / seconds
    return [row("mossformer2_paper_flops", t / seconds, "fp32 matmul peak, same FLOPs", per_second / (peak * 1e9),
                sample_rate=cfg.data.sample_rate, chunk_s=seconds, gflop_per_audio_s=round(per_second / 1e9, 1),
                gflop_linear_conv=round(flops["flops_hooks"] / seconds / 1e9, 1),
                gflop_flopcountermode=round(flops["flops_dispatcher_total"] / seconds / 1e9, 1),
                peak_gflops=round(peak, 1), params=sum(p.numel() for p in model.parameters()),
                note="ratio = fraction of the fp32 matmul peak (ours_s: s per s of audio)")]
