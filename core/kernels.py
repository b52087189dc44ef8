"""Per-machine choice of the hand-written CPU kernels: each is measured against PyTorch's default path.

The window-attention backwards, the channels-last instance norm and the depth-split oneDNN
convolution (:data:`sigplex.core.device.KERNELS`) were tuned on one microarchitecture; on another
CPU (another vendor, another BLAS behaviour for small GEMMs) PyTorch's own path can be faster.
:func:`choose_kernels` times each against the default path where it runs in Swin UNETR (the window
attention step; a decoder residual block for the norm and the conv), forward and backward, interleaved,
and turns off those the default path clearly beats here. The measurement is
cached in ``$SIGPLEX_CACHE/probes/kernel/`` keyed by the CPU model, the thread count and the
library versions (:mod:`sigplex.core.cache`), so it runs once per machine (seconds). The
trainer applies the choice before building the model and records it in ``run.json``; a
``--resume`` applies the recorded choice, so the resumed run computes with the same kernels.

>>> from sigplex.core.device import kernel_choices
>>> sorted(kernel_choices())
['depth_split_conv', 'instance_norm', 'window_backward']
"""
from __future__ import annotations

import time

from .cache import read_record, write_record
from .device import KERNELS, cpu_fast_path, set_kernel_choices

PROBE_VERSION = 2  # bump when a probe's shape or method changes: cached measurements are then ignored
REPEATS = 5
#: a hand-written kernel is turned off only when PyTorch's path is clearly faster: by more than this fraction
#: (they also keep activations channels-last and save memory, which a time probe does not see)
MARGIN = 0.10


def _window_attention_step():
    import torch

    from .ops.window import WindowAttention

    attn = WindowAttention(48, 3, (7, 7, 7))
    x = torch.randn(1, 14, 14, 14, 48, requires_grad=True)  # Swin UNETR f48's second stage at 112³
    return lambda: attn.forward_grid(x, (3, 3, 3)).sum().backward()


def _residual_block_step():
    """A Swin UNETR decoder block (conv, instance norm, LReLU, conv, norm, skip) on a channels-last 32³ grid:
    the norm and the conv measured where they run, with the layouts their neighbours hand them."""
    import torch

    from .blocks.unet import UnetResBlock

    block = UnetResBlock(3, 24, 24, 3)
    x = torch.randn(1, 24, 32, 32, 32).to(memory_format=torch.channels_last_3d).requires_grad_()
    return lambda: block(x).square().sum().backward()


PROBES = {"window_backward": _window_attention_step, "instance_norm": _residual_block_step,
          "depth_split_conv": _residual_block_step}


def measure_kernel(name: str, repeats: int = REPEATS) -> dict:
    """Fastest seconds of one fwd+bwd with the hand-written kernel (``own_s``) and PyTorch's path (``default_s``).

    Two warm-up calls each, then ``repeats`` interleaved pairs; the minimum, as ``timeit`` advises: other
    processes only ever add time, so the fastest call is the kernel's own cost.
    """
    step = PROBES[name]()
    times: dict[bool, list[float]] = {True: [], False: []}
    previous = set_kernel_choices({})
    try:
        for use in (True, False, True, False):
            set_kernel_choices({name: use})
            step()
        for _ in range(repeats):
            for use in (True, False):  # interleaved, so a load change hits both alike
                set_kernel_choices({name: use})
                t0 = time.perf_counter()
                step()
                times[use].append(time.perf_counter() - t0)
    finally:
        set_kernel_choices(previous)
    return {"own_s": min(times[True]), "default_s": min(times[False])}


def choose_kernels(recorded: dict | None = None, device="cpu", probe: bool = True) -> dict[str, bool]:
    """Decide and apply which hand-written kernels run in this process; returns ``{kernel: on}``.

    ``recorded`` (a run's choice, from ``run.json``) is applied as it is. Otherwise each kernel's cached
    measurement for this machine is used, measured first when there is none (unless ``probe`` is
    False: then the hand-written kernels stay on). A kernel is off only when the default path is more
    than :data:`MARGIN` faster. Off the CPU there is nothing to choose (the standard path runs anyway).
    """
    if recorded:
        choice = {k: bool(recorded.get(k, True)) for k in KERNELS}
    elif not cpu_fast_path(device) or not probe:
        choice = {k: True for k in KERNELS}
    else:
        choice = {}
        for name in KERNELS:
            key = {"kernel": name, "version": PROBE_VERSION}
            timing = read_record("kernel", key)
            if timing is None:
                timing = measure_kernel(name)
                write_record("kernel", key, timing)
            choice[name] = timing["own_s"] <= (1 + MARGIN) * timing["default_s"]
    set_kernel_choices(choice)
    return choice
