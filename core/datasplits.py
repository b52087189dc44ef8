"""Contract v1's return type of ``build_data``, kept for one release (v1 plugins import it from
:mod:`sigplex.core.task`); a leaf module, so the v1 wrapper in :mod:`sigplex.core.compat` needs nothing else."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .errors import UserError


@dataclass
class DataSplits:
    """Deprecated (contract v1): what ``build_data`` returned before :class:`Prepared`."""

    train: Any
    val: Any = None
    test: Any = None
    info: dict = field(default_factory=dict)

    def get(self, split: str):
        if split not in ("train", "val", "test"):
            raise UserError(f"split {split!r}: expected train, val or test")
        return getattr(self, split)
