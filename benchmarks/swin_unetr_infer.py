"""Swin UNETR inference: sigplex vs MONAI 1.6.1 (default path and ``use_flash_attention=True``).

Same weights, fp32, eval + no_grad, 2 threads, input (1, 4, S, S, S) with S = 64 and 96
(``--quick``: 64 only), feature_size 24. Ratio = MONAI time / sigplex time. ``gflop`` is one
forward of ours counted by ``benchmarks/_flops.py`` (convolutions by hand: FlopCounterMode misses
oneDNN's conv3d), ``fraction_of_peak`` its GFLOP/s over an N=2048 fp32 matmul measured in the same run.
``device``: where all three run (``benchmarks device_check`` passes it); the FLOP columns are CPU-only.
On the CPU, at 64³ (the goal size), our model also runs under the two other engines of
``sigplex.core.engines`` -- ``compiled`` (``torch.compile``, Inductor) and ``onnxruntime`` (exported
graph) -- each a row against MONAI's default path with its own fraction of peak (the same FLOP
count: the same model) and its one-time setup (``setup_s``: compilation, or export + session).
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import torch

from benchmarks._engines import compiled_model, onnx_model
from benchmarks._flops import count_flops, fraction_of_peak, matmul_peak_gflops
from benchmarks._timing import median_times_interleaved, row, synced


def _engines(model, x) -> tuple[dict, dict]:
    """Our model under ``compiled`` and ``onnxruntime``: callables and their one-time setup seconds."""
    calls, setup = {}, {}
    calls["compiled"], setup["compiled"] = compiled_model(model, (x,))
    with tempfile.TemporaryDirectory() as tmp:  # the session holds the graph; the file can go
        calls["onnxruntime"], setup["onnxruntime"] = onnx_model(model, (x,), Path(tmp) / "swin_unetr.onnx")
    return calls, setup


def run(quick: bool = False, device: str = "cpu") -> list[dict]:
    from monai.networks.nets import SwinUNETR as MonaiSwinUNETR

    from sigplex.plugins.brain_seg.swin_unetr import SwinUNETR

    torch.set_num_threads(2)
    torch.manual_seed(0)
    monai_default = MonaiSwinUNETR(in_channels=4, out_channels=3, feature_size=24).eval()
    monai_flash = MonaiSwinUNETR(in_channels=4, out_channels=3, feature_size=24, use_flash_attention=True).eval()
    monai_flash.load_state_dict(monai_default.state_dict())
    ours = SwinUNETR(in_channels=4, out_channels=3, feature_size=24).eval()
    ours.load_state_dict(monai_default.state_dict(), strict=True)
    on_cpu = torch.device(device).type == "cpu"
    for model in (monai_default, monai_flash, ours):
        model.to(device)
    rows = []
    peak = matmul_peak_gflops() if on_cpu else None
    for size in (64,) if quick else (64, 96):
        x = torch.randn(1, 4, size, size, size, device=device)
        engines, setup = _engines(ours, x) if on_cpu and size == 64 else ({}, {})
        with torch.no_grad():
            expected = ours(x)
            diff = (expected - monai_default(x)).abs().max().item()
            fns = {"ours": lambda: ours(x), "default": lambda: monai_default(x), "flash": lambda: monai_flash(x)}
            fns.update({k: (lambda c=c: c(x)) for k, c in engines.items()})
            deviation = {k: (c(x) - expected).abs().max().item() for k, c in engines.items()}
            t = median_times_interleaved({k: synced(f, device) for k, f in fns.items()}, repeat=3 if quick else 5)
        shape = f"1x4x{size}^3"
        extra = {"device": str(device)} if not on_cpu else {}
        if on_cpu:
            flops = count_flops(ours, x)
            extra = dict(gflop=round(flops["flops"] / 1e9, 2), gflop_conv=round(flops["flops_conv_hooks"] / 1e9, 2),
                         gflop_flopcountermode=round(flops["flops_dispatcher_total"] / 1e9, 2),
                         peak_gflops=round(peak, 1), fraction_of_peak=fraction_of_peak(flops["flops"], t["ours"], peak))
        rows.append(row("swin_unetr_infer", t["ours"], "monai SwinUNETR", t["default"], input=shape,
                        feature_size=24, max_abs_diff=float(f"{diff:.2e}"), **extra))
        rows.append(row("swin_unetr_infer", t["ours"], "monai SwinUNETR use_flash_attention", t["flash"],
                        input=shape, feature_size=24))
        for engine in engines:
            rows.append(row("swin_unetr_infer", t[engine], "monai SwinUNETR", t["default"], input=shape,
                            feature_size=24, engine=engine, setup_s=round(setup[engine], 1),
                            max_abs_diff_vs_eager=float(f"{deviation[engine]:.2e}"),
                            fraction_of_peak=fraction_of_peak(flops["flops"], t[engine], peak)))
    return rows
