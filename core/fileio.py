"""Atomic file writes and safe loading: nothing half-written, nothing unpickled.

Every file the core writes goes to a temporary name in the same folder, is fsynced, then
renamed over the target (``os.replace`` is atomic on POSIX), so a crash leaves either the old
file or the new one, never a torn one.

>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> atomic_write_text(d / "a.txt", "hello")
>>> (d / "a.txt").read_text()
'hello'
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import tempfile
from pathlib import Path
from typing import Callable, Iterator

from .errors import UserError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def fsync_dir(path: str | Path) -> None:
    """Flush a directory entry (after a rename) where the platform allows it."""
    try:
        fd = os.open(str(path), os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(target: str | Path, *, overwrite: bool = True, durable: bool | None = None) -> Iterator[Path]:
    """Yield a temporary path next to ``target``; on success fsync it and rename it over ``target``.

    With ``overwrite=False`` an existing target is an error (checked before and at rename).
    ``durable=False`` skips the fsyncs (the rename stays atomic): batch prediction writes that
    way and syncs once per group of inputs (see :func:`deferred_sync`).
    """
    if durable is None:
        durable = not _DEFERRED["on"]
    target = Path(target)
    if not overwrite and target.exists():
        raise UserError(f"{target}: already exists; choose another path or pass --overwrite")
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=str(target.parent))
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
        if durable:
            with open(tmp_path, "rb+") as fh:
                os.fsync(fh.fileno())
        if not overwrite:
            # link() fails if the target appeared meanwhile: no silent overwrite.
            try:
                os.link(tmp_path, target)
            except FileExistsError:
                raise UserError(f"{target}: already exists; choose another path or pass --overwrite") from None
            tmp_path.unlink()
        else:
            os.replace(tmp_path, target)
        if durable:
            fsync_dir(target.parent)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


_DEFERRED = {"on": False}


@contextlib.contextmanager
def deferred_sync() -> Iterator[None]:
    """Within this block atomic writes skip their fsyncs (renames stay atomic: no torn files are seen).

    The caller makes the writes durable with ``os.sync()``, e.g. once per group of batch inputs.
    """
    previous = _DEFERRED["on"]
    _DEFERRED["on"] = True
    try:
        yield
    finally:
        _DEFERRED["on"] = previous


def atomic_write_bytes(target: str | Path, data: bytes, *, overwrite: bool = True) -> None:
    with atomic_path(target, overwrite=overwrite) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(target: str | Path, text: str, *, overwrite: bool = True) -> None:
    atomic_write_bytes(target, text.encode("utf-8"), overwrite=overwrite)


def atomic_write_with(target: str | Path, writer: Callable[[Path], None], *, overwrite: bool = True) -> None:
    """Call ``writer(tmp_path)`` and move the result to ``target`` atomically."""
    with atomic_path(target, overwrite=overwrite) as tmp:
        writer(tmp)


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def weights_sha256(path: str | Path) -> str:
    """``sha256_file`` of a weights file, read once per process while its size and mtime stay the same
    (provenance, the engine probe's cache key and its ONNX path all ask for the same checkpoint)."""
    stat = Path(path).stat()
    return _cached_sha256(str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=64)
def _cached_sha256(path: str, size: int, mtime_ns: int) -> str:
    return sha256_file(path)


def load_weights_file(path: str | Path) -> dict:
    """Load a state_dict from ``.safetensors`` or a torch file with ``weights_only=True``.

    A torch checkpoint holding ``state_dict``/``model``/``model_state_dict`` is unwrapped.
    Never unpickles arbitrary objects.
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: weights file not found")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except Exception as exc:
            raise UserError(f"{path}: not a readable safetensors file ({exc})") from None
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise UserError(
            f"{path}: cannot be loaded with weights_only=True ({type(exc).__name__}); "
            "sigplex never unpickles files: save plain tensors or safetensors"
        ) from None
    if isinstance(obj, dict):
        for key in ("state_dict", "model", "model_state_dict"):
            if key in obj and isinstance(obj[key], dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise UserError(f"{path}: expected a mapping of parameter names to tensors")
    return obj
