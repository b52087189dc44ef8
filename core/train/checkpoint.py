"""One checkpoint folder: atomic, verified, resumable. (The run's ``checkpoints/`` folder, the best
checkpoint and retention are :mod:`sigplex.core.run`'s.)

Layout of one checkpoint, ``RUN/checkpoints/step-00000100/``:

* ``model.safetensors`` — the weights (adapter-only for adapter runs);
* ``state.pt`` — optimizer, schedule, grad scaler, RNG states, step and data position,
  loaded with ``torch.load(weights_only=True)``;
* ``meta.json`` — step and the sha256 of each file, written last.

The folder is written under a temporary name, fsynced and renamed, so a crash never leaves
a torn checkpoint under a real name. Loading verifies the checksums; a corrupt latest
checkpoint is reported with a warning and the previous one is used.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from ..errors import UserError
from ..fileio import fsync_dir, sha256_file

WEIGHTS = "model.safetensors"
STATE = "state.pt"
META = "meta.json"


def checkpoint_name(step: int) -> str:
    return f"step-{step:08d}"


def is_checkpoint(path: Path) -> bool:
    """Whether ``path`` is a checkpoint folder (it holds the weights file)."""
    return Path(path).is_dir() and (Path(path) / WEIGHTS).is_file()


def write_checkpoint(root: Path, step: int, weights: dict, state: dict, *, metadata: dict | None = None) -> Path:
    """Write checkpoint ``step`` into the folder ``root`` atomically; returns its folder."""
    import torch
    from safetensors.torch import save_file

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    final = root / checkpoint_name(step)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=str(root)))
    try:
        weights = {k: v.detach().contiguous().cpu() for k, v in weights.items()}
        save_file(weights, str(tmp / WEIGHTS),
                  metadata={k: str(v) for k, v in (metadata or {}).items()})
        torch.save(state, str(tmp / STATE))
        files = {}
        for name in (WEIGHTS, STATE):
            with open(tmp / name, "rb+") as fh:
                os.fsync(fh.fileno())
            files[name] = sha256_file(tmp / name)
        meta = {"step": step, "files": files, **(metadata or {})}
        (tmp / META).write_text(json.dumps(meta, indent=1))
        with open(tmp / META, "rb+") as fh:
            os.fsync(fh.fileno())
        fsync_dir(tmp)
        if final.exists():  # same step written again (e.g. best + periodic): replace
            shutil.rmtree(final)
        os.rename(tmp, final)
        fsync_dir(root)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return final


def checkpoints_in(root: Path) -> list[Path]:
    """The checkpoint folders in ``root``, oldest first (temporary folders ignored)."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_dir() and p.name.startswith("step-") and p.name[5:].isdigit()]
    return sorted(found, key=lambda p: int(p.name[5:]))


def verify_checkpoint(path: Path) -> str | None:
    """None if the checkpoint is complete and its checksums match; else what is wrong."""
    meta_file = path / META
    if not meta_file.is_file():
        return f"{META} is missing"
    try:
        meta = json.loads(meta_file.read_text())
    except ValueError:
        return f"{META} is not valid JSON"
    for name, digest in meta.get("files", {}).items():
        f = path / name
        if not f.is_file():
            return f"{name} is missing"
        if sha256_file(f) != digest:
            return f"{name} is corrupt (checksum mismatch)"
    return None


def load_state(path: Path) -> dict:
    """The training state of a checkpoint folder, loaded with ``weights_only=True`` (never unpickled)."""
    import torch

    f = Path(path) / STATE
    try:
        return torch.load(str(f), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise UserError(f"{f}: cannot be loaded with weights_only=True ({type(exc).__name__}); sigplex never "
                        "unpickles files: this checkpoint was not written by sigplex's Trainer") from None


def load_checkpoint_weights(path: Path) -> tuple[dict, dict]:
    """(tensors, safetensors metadata) of a checkpoint folder's model.safetensors."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    f = Path(path) / WEIGHTS
    with safe_open(str(f), framework="pt") as fh:
        meta = fh.metadata() or {}
    return load_file(str(f)), meta
