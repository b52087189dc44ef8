"""Swin UNETR training step: sigplex vs MONAI 1.6.1, time and peak memory.

One step = forward + sigmoid-Dice-like loss + backward + AdamW step, fp32, 2 threads, same
initial weights, input (1, 4, S, S, S): ``--quick`` S = 64 at feature_size 12; full: S = 64 and 96
at feature_size 24.
Peak memory is what torch allocated during one step (profiler allocator events; on CUDA the allocator's
peak). ``device``: where both run (``benchmarks device_check`` passes it).
With ``$SIGPLEX_BENCH_COMPILED=1`` (or ``compiled=True``) the first size also runs MONAI's network and ours
through ``torch.compile`` (Inductor, cold cache of this process): rows for ours eager vs MONAI compiled and
ours compiled vs MONAI compiled, timed after compilation (compile time in ``compile_s``).
"""
from __future__ import annotations

import os
import time

import torch

from benchmarks._timing import median_times_interleaved, peak_memory_mb, row, synced


def _loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    prob = torch.sigmoid(logits)
    inter = (prob * target).sum(dim=(2, 3, 4))
    denom = prob.sum(dim=(2, 3, 4)) + target.sum(dim=(2, 3, 4))
    return 1 - ((2 * inter + 1e-5) / (denom + 1e-5)).mean()


def _step_fn(model, x, target):
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=1e-5)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = _loss(model(x), target)
        loss.backward()
        opt.step()
        return loss

    return step


def _compiled_rows(ours, monai, x, target, size, feature_size, device) -> list[dict]:
    """Both networks compiled: ours eager and ours compiled against MONAI compiled."""
    compiled, compile_s = {}, {}
    for name, net in (("monai", monai), ("ours", ours)):
        step = synced(_step_fn(torch.compile(net), x, target), device)
        t0 = time.perf_counter()
        step()
        compile_s[name] = round(time.perf_counter() - t0, 1)
        compiled[name] = step
    eager = synced(_step_fn(ours, x, target), device)
    t = median_times_interleaved({"eager": eager, **compiled}, repeat=3)
    mem = {k: peak_memory_mb(f, device) for k, f in (("eager", eager), *compiled.items())}
    common = dict(input=f"1x4x{size}^3", feature_size=feature_size, peak_mb_peer=round(mem["monai"], 1),
                  compile_s_peer=compile_s["monai"])
    return [row("swin_unetr_train", t["eager"], "monai SwinUNETR compiled", t["monai"], engine="eager",
                peak_mb_ours=round(mem["eager"], 1), **common),
            row("swin_unetr_train", t["ours"], "monai SwinUNETR compiled", t["monai"], engine="compiled",
                peak_mb_ours=round(mem["ours"], 1), compile_s=compile_s["ours"], **common)]


def run(quick: bool = False, device: str = "cpu", compiled: bool | None = None) -> list[dict]:
    from monai.networks.nets import SwinUNETR as MonaiSwinUNETR

    from sigplex.core.kernels import choose_kernels
    from sigplex.plugins.brain_seg.swin_unetr import SwinUNETR

    torch.set_num_threads(2)
    kernels = choose_kernels(device=device)  # the hand-written kernels this machine trains with, as platform train
    torch.manual_seed(0)
    feature_size = 12 if quick else 24
    rows = []
    for size in (64,) if quick else (64, 96):
        torch.manual_seed(0)
        monai = MonaiSwinUNETR(in_channels=4, out_channels=3, feature_size=feature_size).train().to(device)
        ours = SwinUNETR(in_channels=4, out_channels=3, feature_size=feature_size).train().to(device)
        ours.load_state_dict(monai.state_dict(), strict=True)
        x = torch.randn(1, 4, size, size, size, device=device)
        target = (torch.rand(1, 3, size, size, size, device=device) > 0.5).float()
        step_ours, step_monai = synced(_step_fn(ours, x, target), device), synced(_step_fn(monai, x, target), device)
        t = median_times_interleaved({"ours": step_ours, "monai": step_monai}, repeat=3 if quick else 5)
        mem_ours, mem_monai = peak_memory_mb(step_ours, device), peak_memory_mb(step_monai, device)
        extra = {} if torch.device(device).type == "cpu" else {"device": str(device)}
        rows.append(row("swin_unetr_train", t["ours"], "monai SwinUNETR", t["monai"], input=f"1x4x{size}^3",
                        feature_size=feature_size, peak_mb_ours=round(mem_ours, 1), peak_mb_peer=round(mem_monai, 1),
                        memory_ratio=round(mem_monai / mem_ours, 3) if mem_ours else None,
                        kernels_off=",".join(k for k, on in kernels.items() if not on) or "none", **extra))
        if (compiled if compiled is not None else os.environ.get("SIGPLEX_BENCH_COMPILED") == "1") and size == 64:
            rows += _compiled_rows(ours, monai, x, target, size, feature_size, device)
    return rows
