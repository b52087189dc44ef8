"""Process-wide CPU setting: reuse freed memory instead of handing it back to the kernel.

glibc's ``malloc`` serves every large allocation (above a threshold of at most 32 MiB) with a
fresh ``mmap`` and unmaps it again on ``free``. A forward pass frees and reallocates the same
large tensors over and over (one 24-channel 96³ activation of Swin UNETR is 85 MB), so each
comes back as zeroed pages that the kernel faults in 4 KiB at a time: at 96³ a good part of a Swin
UNETR inference is spent in the kernel on those page faults. With freed memory kept for reuse the
pages are faulted in once.

:func:`reuse_freed_memory` switches glibc to serve all allocations from its heap and to keep
freed memory (up to 2 GiB at the top of the heap) for the next allocation: what jemalloc or
tcmalloc do when preloaded, without preloading anything. The process then keeps its peak
memory until it exits, like PyTorch's CUDA caching allocator. The ``platform`` command calls it
at start; call it yourself in a long-running pipeline process::

    from sigplex.core.runtime import reuse_freed_memory
    reuse_freed_memory()     # True on Linux with glibc; False (and no change) elsewhere

``SIGPLEX_REUSE_FREED_MEMORY=0`` in the environment turns it off (the CLI then leaves malloc
as it is). It is a CPU tuning: for a process that computes on another device (``--device cuda``) it
changes nothing (:func:`sigplex.core.device.cpu_fast_path` decides).
"""
from __future__ import annotations

import ctypes
import os

from .device import cpu_fast_path

ENV = "SIGPLEX_REUSE_FREED_MEMORY"
# glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_KEEP_AT_TOP = 2**31 - 1  # mallopt takes an int: the most it can keep

_applied = False


def reuse_freed_memory(device=None) -> bool:
    """Make glibc malloc keep freed memory for reuse; True if this process now does.

    No-op (False) on other C libraries and operating systems, when ``SIGPLEX_REUSE_FREED_MEMORY=0``, or
    when ``device`` (the one the process computes on: a name such as ``cuda``, ``auto``, or a
    ``torch.device``; None is the CPU) is not the CPU. Applies to allocations made after the call;
    calling it again changes nothing.
    """
    global _applied
    if _applied:
        return True
    if os.environ.get(ENV, "1").strip().lower() in ("0", "false", "no", "off") or not cpu_fast_path(device):
        return False
    if not _running_on_glibc():
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    # mallopt returns 1 on success. No mmap per allocation: large blocks come from the heap too...
    if libc.mallopt(_M_MMAP_MAX, 0) != 1:
        return False
    # ...and freed blocks at the top of the heap are not returned to the kernel below 2 GiB.
    libc.mallopt(_M_TRIM_THRESHOLD, _KEEP_AT_TOP)
    _applied = True
    return True


def reusing_freed_memory() -> bool:
    """Whether :func:`reuse_freed_memory` has taken effect in this process."""
    return _applied


def _running_on_glibc() -> bool:
    try:
        return (os.confstr("CS_GNU_LIBC_VERSION") or "").startswith("glibc")
    except (AttributeError, ValueError, OSError):  # no confstr (Windows) or no such name (musl, macOS)
        return False


__all__ = ["ENV", "reuse_freed_memory", "reusing_freed_memory"]
