"""Training: the Trainer, its callbacks, checkpoints, samplers and distributed helpers.

``Trainer`` and ``Callback`` are imported on first use, so importing one of this package's
modules (``sigplex.core.train.checkpoint``) does not import the Trainer.
"""
from __future__ import annotations

_LAZY = {"Callback": "callbacks", "Trainer": "trainer"}
__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
