"""Devices: which one a run uses (``--device``), which kernels it gets, and the machine for run records.

:func:`cpu_fast_path` is the one dispatch between the CPU-tuned code paths (the channels-last
instance norm, the hand-written window-attention backwards and relative-position gather, the
depth-split oneDNN convolution, the native multi-head attention kernel, glibc malloc tuning)
and the standard PyTorch path that every other device (CUDA, MPS, ...) takes.

>>> str(resolve_device("cpu"))
'cpu'
>>> cpu_fast_path("cpu"), cpu_fast_path("cuda:0"), cpu_fast_path("mps")
(True, False, False)
"""
from __future__ import annotations

import os
import platform
import sys

from .errors import UserError


def resolve_device(name: str, local_rank: int = 0):
    """``cpu``, ``cuda``, ``cuda:N`` or ``auto`` (CUDA when available) as a ``torch.device``; one-line errors."""
    import torch

    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UserError("--device cuda: no CUDA device is available here; use --device cpu")
        if name == "cuda":
            name = f"cuda:{local_rank}"
    elif name != "cpu":
        raise UserError(f"--device {name!r}: expected cpu, cuda, cuda:N or auto")
    return torch.device(name)


def device_type(device) -> str:
    """The type (``cpu``, ``cuda``, ``mps``...) of a ``torch.device``, a tensor or a name such as ``cuda:1``.

    ``auto`` is the type :func:`resolve_device` would pick (this imports torch); None is ``cpu``.
    """
    if device is None:
        return "cpu"
    if hasattr(device, "device") and not isinstance(device, str):  # a tensor or a module-like holder
        device = device.device
    if not isinstance(device, str):
        return str(device.type)
    if device == "auto":
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    return device.split(":", 1)[0]


#: The hand-written CPU kernels chosen per machine (see :mod:`sigplex.core.kernels`): name -> on/off.
KERNELS = ("window_backward", "instance_norm", "depth_split_conv")
_KERNEL_CHOICE: dict[str, bool] = {}


def cpu_fast_path(device, kernel: str | None = None, custom_op: bool = False) -> bool:
    """Whether the CPU-tuned kernels run on ``device`` (see the module docstring): only on ``cpu``, in eager.

    Any other device type takes the standard PyTorch path, so code tuned for this machine's CPU never
    decides what a GPU computes. Under ``torch.compile`` the standard path is traced too: Inductor fuses
    it into kernels of its own, and the hand-written ones (oneDNN calls, autograd Functions) would only
    break the graph -- except a kernel registered as a custom op (``custom_op=True``), which Inductor
    calls as it is. ``kernel`` (one of :data:`KERNELS`) also asks whether that kernel was chosen for
    this machine (:func:`set_kernel_choices`; on when nothing was chosen). ``device``: as for
    :func:`device_type`.
    """
    if device_type(device) != "cpu":
        return False
    torch = sys.modules.get("torch")  # nothing compiles before torch is imported: don't import it here
    if not custom_op and torch is not None and torch.compiler.is_compiling():
        return False
    return kernel is None or _KERNEL_CHOICE.get(kernel, True)


def set_kernel_choices(choices: dict[str, bool]) -> dict[str, bool]:
    """Use (True) or leave (False) each hand-written kernel of :data:`KERNELS` from now on; returns the previous.

    >>> previous = set_kernel_choices({"instance_norm": False})
    >>> cpu_fast_path("cpu", "instance_norm"), cpu_fast_path("cpu", "window_backward")
    (False, True)
    >>> _ = set_kernel_choices(previous)
    """
    unknown = set(choices) - set(KERNELS)
    if unknown:
        raise ValueError(f"unknown kernel(s) {sorted(unknown)}; expected {', '.join(KERNELS)}")
    previous = dict(_KERNEL_CHOICE)
    _KERNEL_CHOICE.clear()
    _KERNEL_CHOICE.update({k: bool(v) for k, v in choices.items()})
    return previous


def kernel_choices() -> dict[str, bool]:
    """The choice of every kernel of :data:`KERNELS` now in force."""
    return {k: _KERNEL_CHOICE.get(k, True) for k in KERNELS}


def cpu_info() -> dict:
    """The CPU's model name and the vector/matrix ISA extensions kernels can use (``AVX-512``, ``AMX``...).

    Read from ``/proc/cpuinfo`` on Linux; elsewhere the model is :func:`platform.processor` and the
    ISA list is empty.
    """
    model, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                name, _, value = line.partition(":")
                if name.strip() == "model name" and value.strip():
                    model = value.strip()
                elif name.strip() in ("flags", "Features"):
                    flags = set(value.split())
                if flags and model:
                    break
    except OSError:
        pass
    isa = [label for label, flag in (("AVX2", "avx2"), ("AVX-512", "avx512f"), ("AVX512-BF16", "avx512_bf16"),
                                     ("AMX", "amx_tile"), ("NEON", "asimd"), ("SVE", "sve")) if flag in flags]
    return {"model": model, "isa": isa}


def kernel_libraries() -> dict:
    """What computes torch's CPU kernels here: ISA level torch dispatches to, BLAS, oneDNN, versions."""
    import re

    import torch

    build = torch.__config__.show()
    blas = re.search(r"BLAS_INFO=([^,\s]+)", build)
    onednn = re.search(r"(?:MKL-DNN|oneDNN) (v[\d.]+)", build)
    return {"torch": torch.__version__, "capability": torch.backends.cpu.get_cpu_capability(),
            "isa": cpu_info()["isa"], "blas": blas.group(1) if blas else "unknown",
            "onednn": onednn.group(1) if onednn else "none"}


def machine() -> dict:
    """The machine a run trained on: CPU, core count, accelerator, torch version."""
    info = {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count()}
    try:
        import torch

        info["torch"] = torch.__version__
        info["threads"] = torch.get_num_threads()
        info["cuda"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except ImportError:
        pass
    return info
