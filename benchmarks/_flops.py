"""FLOP counting and the machine's matmul peak, shared by every benchmark that reports a fraction of peak.

``count_flops(model, *inputs)`` runs one forward pass and counts its floating-point operations
(a multiply-add is 2) two ways at once:

* **by hand**: every ``F.conv1d/2d/3d``, ``F.conv_transpose1d/2d/3d`` and ``F.linear`` call (a
  ``TorchFunctionMode``, so module and functional calls alike) counts
  ``2 · output elements · (input channels / groups) · kernel volume`` (+ nothing for the bias),
  from the shapes each call actually saw;
* **by the dispatcher**: ``torch.utils.flop_counter.FlopCounterMode``, which also sees matmuls,
  ``bmm`` and SDPA but misses convolutions that oneDNN runs through its own op
  (``mkldnn_convolution``: a Swin UNETR forward reported 4.4 of ~50 GFLOP) and, unless taught
  here, the in-place ``addmm_`` / ``baddbmm_``.

The total takes the hooks' count for convolutions and Linear layers and the dispatcher's count
for every other op (attention products, ``bmm``, ``matmul`` outside Linear). ``flops_conv_dispatcher``
is kept in the result so an undercount is visible.

``matmul_peak_gflops()`` measures an N=2048 fp32 matmul with the current thread count: the
denominator of every "fraction of peak" in RESULTS.md.

>>> import torch
>>> counts = count_flops(torch.nn.Linear(8, 4), torch.randn(3, 8))
>>> counts["flops"], counts["flops_hooks"]
(192, 192)
"""
from __future__ import annotations

import math
import time

CONV_OPS = ("convolution", "_convolution", "conv1d", "conv2d", "conv3d", "mkldnn_convolution", "conv_transpose")
LINEAR_OPS = ("addmm", "mm", "linear")


def _conv_and_linear_counter(tally: dict):
    """A TorchFunctionMode that tallies every ``F.linear``, ``F.conv*d``, ``aten.mkldnn_convolution``
    and ``F.conv_transpose*d`` call from its shapes: module calls and functional ones alike (the
    depthwise convs' inference path calls ``F.conv2d`` on a module's weight, Swin UNETR's fused
    decoder convs call ``aten.mkldnn_convolution``)."""
    import torch.nn.functional as F
    from torch.overrides import TorchFunctionMode

    convs = {F.conv1d, F.conv2d, F.conv3d}
    transposed = {F.conv_transpose1d, F.conv_transpose2d, F.conv_transpose3d}

    class Counter(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            if func is F.linear:
                tally["linear"] += 2 * out.numel() * args[1].shape[1]
            elif func in convs or getattr(func, "__name__", "").startswith("mkldnn_convolution"):
                # weight [out, in / groups, *kernel]; aten.mkldnn_convolution is what core.backbones.swin calls
                w = args[1]
                tally["conv"] += 2 * out.numel() * w.shape[1] * math.prod(w.shape[2:])
            elif func in transposed:  # weight [in, out / groups, *kernel]: every input element meets every tap
                w = args[1]
                tally["conv"] += 2 * args[0].numel() * w.shape[1] * math.prod(w.shape[2:])
            return out

    return Counter()


def _count_in_place_products() -> None:
    """Teach FlopCounterMode the in-place ``addmm_`` / ``baddbmm_`` (it counts only the out-of-place ops;
    ``mixed_chunk_attention``'s blocked inference adds its global term with ``addmm_``)."""
    import torch
    from torch.utils import flop_counter

    def product(self_shape, a_shape, b_shape, *_, **__) -> int:  # [.., m, k] @ [.., k, n]: 2 m k n per batch
        return 2 * math.prod(a_shape) * b_shape[-1]

    for op in (torch.ops.aten.addmm_, torch.ops.aten.baddbmm_):
        if op not in flop_counter.flop_registry:
            flop_counter.register_flop_formula(op)(product)


def count_flops(model, *inputs) -> dict:
    """``flops`` of one no-grad forward (conv/Linear calls by hand, the dispatcher for the rest) and the parts."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    _count_in_place_products()
    tally = {"conv": 0, "linear": 0}
    with FlopCounterMode(display=False) as counter, _conv_and_linear_counter(tally), torch.no_grad():
        model(*inputs)
    by_op = {str(op).split(".")[-1]: int(n) for op, n in counter.get_flop_counts().get("Global", {}).items()}
    conv_seen = sum(n for op, n in by_op.items() if any(op.startswith(c) for c in CONV_OPS))
    linear_seen = sum(n for op, n in by_op.items() if op in LINEAR_OPS)
    other = counter.get_total_flops() - conv_seen - linear_seen
    return {"flops": tally["conv"] + tally["linear"] + other, "flops_hooks": tally["conv"] + tally["linear"],
            "flops_conv_hooks": tally["conv"], "flops_conv_dispatcher": conv_seen, "flops_other": other,
            "flops_dispatcher_total": counter.get_total_flops()}


def matmul_peak_gflops(n: int = 2048, repeat: int = 5) -> float:
    """GFLOP/s of an ``n x n`` fp32 matmul on this machine with torch's current thread count (best of ``repeat``)."""
    import torch

    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b  # warm-up
    best = math.inf
    for _ in range(repeat):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * n ** 3 / best / 1e9


def fraction_of_peak(flops: float, seconds: float, peak_gflops: float) -> float:
    """Achieved GFLOP/s over ``peak_gflops``, rounded to 3 places."""
    return round(flops / seconds / 1e9 / peak_gflops, 3)


__all__ = ["count_flops", "fraction_of_peak", "matmul_peak_gflops"]
