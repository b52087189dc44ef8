"""Checkpoints: atomic, verified, resumable, with keep-last-K retention.

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
import warnings
from pathlib import Path

from ..errors import UserError
from ..fileio import atomic_write_text, fsync_dir, sha256_file

CHECKPOINTS = "checkpoints"
BEST_FILE = "best.json"


def checkpoint_name(step: int) -> str:
    return f"step-{step:08d}"


def save_checkpoint(run_dir: Path, step: int, weights: dict, state: dict, *, metadata: dict | None = None) -> Path:
    """Write one checkpoint atomically; returns its folder."""
    import torch
    from safetensors.torch import save_file

    root = Path(run_dir) / CHECKPOINTS
    root.mkdir(parents=True, exist_ok=True)
    final = root / checkpoint_name(step)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=str(root)))
    try:
        weights = {k: v.detach().contiguous().cpu() for k, v in weights.items()}
        save_file(weights, str(tmp / "model.safetensors"),
                  metadata={k: str(v) for k, v in (metadata or {}).items()})
        torch.save(state, str(tmp / "state.pt"))
        files = {}
        for name in ("model.safetensors", "state.pt"):
            with open(tmp / name, "rb+") as fh:
                os.fsync(fh.fileno())
            files[name] = sha256_file(tmp / name)
        meta = {"step": step, "files": files, **(metadata or {})}
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
        with open(tmp / "meta.json", "rb+") as fh:
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


def list_checkpoints(run_dir: Path) -> list[Path]:
    """Checkpoint folders, oldest first (temporary folders ignored)."""
    root = Path(run_dir) / CHECKPOINTS
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_dir() and p.name.startswith("step-") and p.name[5:].isdigit()]
    return sorted(found, key=lambda p: int(p.name[5:]))


def verify_checkpoint(path: Path) -> str | None:
    """None if the checkpoint is complete and its checksums match; else what is wrong."""
    meta_file = path / "meta.json"
    if not meta_file.is_file():
        return "meta.json is missing"
    try:
        meta = json.loads(meta_file.read_text())
    except ValueError:
        return "meta.json is not valid JSON"
    for name, digest in meta.get("files", {}).items():
        f = path / name
        if not f.is_file():
            return f"{name} is missing"
        if sha256_file(f) != digest:
            return f"{name} is corrupt (checksum mismatch)"
    return None


def latest_valid_checkpoint(run_dir: Path) -> Path | None:
    """The newest checkpoint that verifies; warns about each corrupt newer one it skips."""
    for path in reversed(list_checkpoints(run_dir)):
        problem = verify_checkpoint(path)
        if problem is None:
            return path
        warnings.warn(f"{path}: {problem}; falling back to the previous checkpoint", stacklevel=2)
    return None


def read_best(run_dir: Path) -> dict | None:
    f = Path(run_dir) / BEST_FILE
    if not f.is_file():
        return None
    try:
        return json.loads(f.read_text())
    except ValueError:
        return None


def write_best(run_dir: Path, step: int, metric: str, value: float) -> None:
    atomic_write_text(Path(run_dir) / BEST_FILE,
                      json.dumps({"step": step, "checkpoint": checkpoint_name(step), "metric": metric, "value": value}))


def apply_retention(run_dir: Path, keep_last: int) -> None:
    """Delete all but the newest ``keep_last`` checkpoints, always keeping the best one."""
    best = read_best(run_dir)
    best_name = best.get("checkpoint") if best else None
    ckpts = list_checkpoints(run_dir)
    for path in ckpts[:-keep_last] if keep_last > 0 else ckpts:
        if path.name != best_name:
            shutil.rmtree(path, ignore_errors=True)


def load_state(path: Path) -> dict:
    """The training state of a checkpoint folder, loaded with ``weights_only=True`` (never unpickled)."""
    import torch

    f = Path(path) / "state.pt"
    try:
        return torch.load(str(f), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise UserError(f"{f}: cannot be loaded with weights_only=True ({type(exc).__name__}); sigplex never "
                        "unpickles files: this checkpoint was not written by sigplex's Trainer") from None


def load_checkpoint_weights(path: Path) -> tuple[dict, dict]:
    """(tensors, safetensors metadata) of a checkpoint folder's model.safetensors."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    f = Path(path) / "model.safetensors"
    with safe_open(str(f), framework="pt") as fh:
        meta = fh.metadata() or {}
    return load_file(str(f)), meta


def pick_checkpoint(run_or_file: str | Path) -> Path:
    """``--checkpoint``: a run dir means its best checkpoint if it validated, else its last."""
    p = Path(run_or_file)
    if p.is_dir() and (p / "model.safetensors").is_file():
        return p
    if p.is_file() and p.name == "model.safetensors":
        return p.parent
    if not p.exists():
        raise UserError(f"{p}: no such run directory or checkpoint")
    if not p.is_dir():
        raise UserError(f"{p}: expected a run directory or a checkpoint folder")
    best = read_best(p)
    if best:
        candidate = p / CHECKPOINTS / best["checkpoint"]
        if candidate.is_dir() and verify_checkpoint(candidate) is None:
            return candidate
        warnings.warn(f"{candidate}: best checkpoint missing or corrupt; using the last one", stacklevel=2)
    last = latest_valid_checkpoint(p)
    if last is None:
        raise UserError(f"{p}: no valid checkpoint in {p / CHECKPOINTS}")
    return last
