"""Whole-volume Swin UNETR inference: brain_seg's path vs MONAI ``sliding_window_inference`` over MONAI's SwinUNETR.

Same weights (feature_size 24, MONAI's state dict loaded strictly into ours), fp32, eval + no_grad,
2 threads. Input: one 4-channel volume of 240x240x155 (BraTS size; ``--quick``: 128x128x96),
96^3 windows, overlap 0.5, Gaussian blending, ``sw_batch_size`` 1 on both sides, sigmoid
probabilities out. Ours is ``sigplex.plugins.brain_seg.inference.infer_volume`` (the code
``platform predict`` runs). Ratio = MONAI time / ours; ``peak_mb_*`` is the torch allocator's
peak during one whole-volume call (``benchmarks._timing.peak_memory_mb``), ``memory_ratio`` =
MONAI's / ours (>= 1: ours uses no more).
"""
from __future__ import annotations

import math

import torch

from benchmarks._timing import median_times_interleaved, peak_memory_mb, row

ROI, OVERLAP = (96, 96, 96), 0.5


def windows(shape) -> int:
    """Number of windows MONAI's scan takes over ``shape`` (per axis: ceil((size - roi) / stride) + 1)."""
    stride = [int(r * (1 - OVERLAP)) for r in ROI]
    return math.prod(max(1, math.ceil((s - r) / st) + 1) if s > r else 1 for s, r, st in zip(shape, ROI, stride))


def setup(quick: bool):
    """``(monai_net, ours, volume, data, shape)``: both f24 networks with MONAI's weights, a random volume,
    and brain_seg's sliding-window settings."""
    from monai.networks.nets import SwinUNETR as MonaiSwinUNETR

    from sigplex.plugins.brain_seg.config import DataSection
    from sigplex.plugins.brain_seg.swin_unetr import SwinUNETR

    torch.manual_seed(0)
    monai_net = MonaiSwinUNETR(in_channels=4, out_channels=3, feature_size=24).eval()
    ours = SwinUNETR(in_channels=4, out_channels=3, feature_size=24).eval()
    ours.load_state_dict(monai_net.state_dict(), strict=True)
    shape = (128, 128, 96) if quick else (240, 240, 155)
    data = DataSection(roi=ROI, sw_overlap=OVERLAP, sw_batch_size=1, sw_mode="gaussian")
    return monai_net, ours, torch.randn(4, *shape), data, shape


def run(quick: bool = False) -> list[dict]:
    from monai.inferers import sliding_window_inference

    from sigplex.plugins.brain_seg.inference import infer_volume

    torch.set_num_threads(2)
    monai_net, ours, volume, data, shape = setup(quick)

    def run_ours():
        return infer_volume(ours, volume, data)

    def run_monai():
        logits = sliding_window_inference(volume[None], ROI, 1, monai_net, overlap=OVERLAP, mode="gaussian")
        return torch.sigmoid(logits.float())[0]

    with torch.no_grad():
        diff = (run_ours() - run_monai()).abs().max().item()  # also the warm-up
        t = median_times_interleaved({"ours": run_ours, "monai": run_monai}, repeat=2 if quick else 3, warmup=0)
        mem_ours, mem_monai = peak_memory_mb(run_ours), peak_memory_mb(run_monai)
    return [row("swin_unetr_volume", t["ours"], "monai sliding_window_inference + SwinUNETR", t["monai"],
                input="4x" + "x".join(map(str, shape)), windows=windows(shape), roi="96^3", overlap=OVERLAP,
                sw_batch_size=1, feature_size=24, peak_mb_ours=round(mem_ours, 1), peak_mb_peer=round(mem_monai, 1),
                memory_ratio=round(mem_monai / mem_ours, 3) if mem_ours else None,
                max_abs_diff=float(f"{diff:.2e}"))]


if __name__ == "__main__":
    import argparse
    import json

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a 128x128x96 volume instead of 240x240x155")
    for r in run(quick=parser.parse_args().quick):
        print(json.dumps(r))
