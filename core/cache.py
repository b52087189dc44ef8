"""The machine cache, ``$SIGPLEX_CACHE`` (default ``~/.cache/sigplex``): its one owner.

Generated datasets, measured probes (kernel and engine choices) and Inductor's compiled kernels
live here, never in a run folder or in shipped weights: they belong to a machine, not to a model.
A probe's record is keyed by what it measured (a checkpoint's sha256 or a shape), the CPU model
and the library versions (:func:`machine_key`), so another CPU or another torch measures afresh.

>>> import os, tempfile
>>> os.environ["SIGPLEX_CACHE"] = tempfile.mkdtemp()
>>> write_record("doc", {"shape": [2, 3]}, {"choice": "torch"})
>>> read_record("doc", {"shape": [2, 3]})["choice"]
'torch'
>>> read_record("doc", {"shape": [4]}) is None
True
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from .device import cpu_info, kernel_libraries
from .fileio import atomic_write_text

ENV = "SIGPLEX_CACHE"


def cache_root() -> Path:
    """``$SIGPLEX_CACHE``, or ``~/.cache/sigplex`` when it is unset or empty."""
    env = os.environ.get(ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "sigplex"


def machine_key() -> dict:
    """What a measurement depends on besides its inputs: CPU model and ISA, torch and oneDNN versions."""
    import torch

    return {"cpu": cpu_info()["model"], "threads": torch.get_num_threads(), **kernel_libraries()}


def _record_path(kind: str, key: dict) -> Path:
    full = json.dumps({"key": key, "machine": machine_key()}, sort_keys=True, default=str)
    return cache_root() / "probes" / kind / (hashlib.sha256(full.encode()).hexdigest()[:24] + ".json")


def read_record(kind: str, key: dict) -> dict | None:
    """The value :func:`write_record` stored for ``key`` on this machine, or None (also when unreadable)."""
    try:
        record = json.loads(_record_path(kind, key).read_text())
    except (OSError, ValueError):
        return None
    return record.get("value") if isinstance(record, dict) else None


def write_record(kind: str, key: dict, value: dict) -> None:
    """Store ``value`` (JSON) for ``key`` on this machine, atomically; a read-only cache is skipped."""
    record = {"key": key, "machine": machine_key(), "value": value}
    try:
        atomic_write_text(_record_path(kind, key), json.dumps(record, indent=1, sort_keys=True, default=str))
    except OSError:
        pass


def use_inductor_cache() -> Path:
    """Point Inductor's compiled-kernel cache at ``$SIGPLEX_CACHE/inductor`` unless the user set one."""
    path = cache_root() / "inductor"
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(path))
    return Path(os.environ["TORCHINDUCTOR_CACHE_DIR"])
