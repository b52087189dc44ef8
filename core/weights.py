"""Putting a state dict into a model strictly, with one-line errors naming the file and the keys.

Where the weights come from (a run, a checkpoint folder, a weights file) is :mod:`sigplex.core.run`'s;
a task maps a foreign layout in its ``Task.load_weights``, whose default calls this.
"""
from __future__ import annotations

from .errors import UserError


def load_state_strict(model, weights: dict, source, what: str = "the model") -> None:
    """``model.load_state_dict(weights, strict=True)`` with one-line errors naming ``source`` and the keys."""
    expected = model.state_dict()
    missing, unexpected = sorted(set(expected) - set(weights)), sorted(set(weights) - set(expected))
    if missing or unexpected:
        raise UserError(f"{source}: weights do not fit {what} (missing {_few(missing)}; unexpected {_few(unexpected)})")
    try:
        model.load_state_dict(weights, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        raise UserError(f"{source}: weights do not fit {what}: {first[-1].strip() if first else exc}") from None


def _few(keys: list, n: int = 3) -> str:
    if not keys:
        return "none"
    more = f" and {len(keys) - n} more" if len(keys) > n else ""
    return ", ".join(keys[:n]) + more
