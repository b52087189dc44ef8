"""Devices: which one a run uses (``--device``), and a description of the machine for run records.

Later device-dependent choices (which kernel a CPU gets) are made here too, so one module
answers "what runs where".

>>> str(resolve_device("cpu"))
'cpu'
"""
from __future__ import annotations

import os
import platform

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
