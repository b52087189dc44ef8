"""``torch.compile`` for training (``trainer.compile``) and for the ``compiled`` inference engine.

Inductor turns the model's standard PyTorch path into fused C++/OpenMP kernels on the CPU (Triton
on a GPU). Under compilation :func:`sigplex.core.device.cpu_fast_path` is False, so the eager
hand-written CPU kernels (their oneDNN calls and autograd Functions) are not traced: Inductor
generates its own from the standard path, and the whole model stays one graph. Compiled
kernels are cached under ``$SIGPLEX_CACHE/inductor``.

Without a C++ compiler (or when Inductor fails on a model) the module runs eager after one
``warning:`` line; nothing crashes.

>>> import torch
>>> compile_module(torch.nn.Linear(2, 2), False).__class__.__name__   # off: the module itself
'Linear'
"""
from __future__ import annotations

import logging
import os
import shutil

from .cache import use_inductor_cache
from .errors import UserError, first_line, notify

MODES = {True: None, "default": None, "reduce-overhead": "reduce-overhead", "max-autotune": "max-autotune"}


def compiler_problem() -> str | None:
    """Why Inductor cannot build CPU kernels here (no C++ compiler found), or None."""
    from torch._inductor import config

    wanted = os.environ.get("CXX") or config.cpp.cxx[1] or "g++"
    if shutil.which(wanted) is None and not os.path.isfile(wanted):
        return f"no C++ compiler ({wanted!r}) found on PATH; install g++ or set CXX"
    return None


class _CompiledOrEager:
    """Calls the compiled module; if compilation fails on the first call, warns once and runs eager."""

    def __init__(self, compiled, eager, what: str):
        object.__setattr__(self, "_compiled", compiled)
        object.__setattr__(self, "_eager", eager)
        object.__setattr__(self, "_what", what)
        object.__setattr__(self, "_calls", 0)

    def __call__(self, *args, **kwargs):
        if self._compiled is None:
            return self._eager(*args, **kwargs)
        try:
            out = self._compiled(*args, **kwargs)
        except Exception as err:  # noqa: BLE001 -- any Inductor/Dynamo failure falls back to eager
            if self._calls:
                raise
            notify(f"{self._what}: torch.compile failed ({type(err).__name__}: {first_line(err)}); running eager")
            object.__setattr__(self, "_compiled", None)
            return self._eager(*args, **kwargs)
        object.__setattr__(self, "_calls", self._calls + 1)
        return out

    def __getattr__(self, name):
        return getattr(self._eager, name)

    @property
    def compiled(self) -> bool:
        """Whether calls run the compiled module (False after a fallback to eager)."""
        return self._compiled is not None


def compile_module(module, mode, what: str = "trainer.compile"):
    """``module`` compiled with ``torch.compile(mode=...)``, or ``module`` itself when ``mode`` is off.

    ``mode``: False/None (off), True or ``"default"``, ``"reduce-overhead"``, ``"max-autotune"``.
    The result is called like the module and reads its attributes; ``what`` names the setting in
    the warning printed when the module runs eager instead.
    """
    if not mode:
        return module
    import torch

    if mode not in MODES:
        raise UserError(f"{what}: expected false, true or one of {', '.join(m for m in MODES if m is not True)}")
    problem = compiler_problem()
    if problem is not None:
        notify(f"{what}: {problem}; running eager")
        return module
    use_inductor_cache()
    # Inductor's C++ builder logs "No CUDA runtime is found" on every CPU-only machine: not news to the user.
    logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
    return _CompiledOrEager(torch.compile(module, mode=MODES[mode]), module, what)
