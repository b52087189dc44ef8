"""Distributed data parallel on torch.distributed: set-up from torchrun's environment.

``torchrun --nproc-per-node N -m sigplex.core.cli train ...`` sets RANK, WORLD_SIZE,
LOCAL_RANK and MASTER_ADDR/PORT; :func:`init_distributed` joins the process group (gloo on
CPU, nccl on GPU). Rank 0 alone logs and writes checkpoints.

Collectives wait at most ``SIGPLEX_DIST_TIMEOUT_S`` seconds (default 1800) for a silent peer.
:func:`lost_peer_errors` turns the loss of a peer (a closed gloo/NCCL connection, or torchrun ending
this process with SIGTERM because another node or the rendezvous store went away) into one
:class:`~sigplex.core.errors.UserError` line naming the peer and the resume command.
"""
from __future__ import annotations

import os
import re
import signal
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Callable

from ..errors import UserError

TIMEOUT_ENV = "SIGPLEX_DIST_TIMEOUT_S"


@dataclass
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    initialized_here: bool = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def init_distributed(device_type: str) -> DistInfo:
    """Join the process group if launched by torchrun (WORLD_SIZE > 1); no-op otherwise."""
    import torch.distributed as dist

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    here = False
    if not dist.is_initialized():
        backend = "nccl" if device_type == "cuda" else "gloo"
        dist.init_process_group(backend=backend, timeout=timedelta(seconds=collective_timeout_s()))
        here = True
    return DistInfo(rank, world, local, here)


def collective_timeout_s() -> float:
    """Seconds a collective waits for a silent peer: ``SIGPLEX_DIST_TIMEOUT_S`` (default 1800)."""
    raw = os.environ.get(TIMEOUT_ENV, "1800")
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if value <= 0:
        raise UserError(f"{TIMEOUT_ENV}={raw!r}: expected a positive number of seconds")
    return value


class _Terminated(Exception):
    """SIGTERM arrived (torchrun stops its workers so when a node or the rendezvous store is lost)."""


def _raise_terminated(signum, frame):
    raise _Terminated()


def _peer_failure(exc: BaseException) -> str | None:
    """``"at ADDRESS:PORT (reason)"`` as gloo/NCCL report a lost peer's connection, if ``exc`` is one; else None."""
    import torch.distributed as dist

    text = str(exc)
    if not (isinstance(exc, dist.DistError) or re.search(r"\bgloo\b|\bNCCL\b", text)):
        return None
    found = re.search(r"\[([^\]]+)\]:(\d+)", text)
    reason = re.search(r"(Connection [a-z ]+|Timed out[^.]*|timed out[^.]*)", text)
    where = f"at {found.group(1)}:{found.group(2)}" if found else ""
    return (where + (f" ({reason.group(1).strip()})" if reason else "")).strip()


def _reported(message: str) -> UserError:
    """``UserError(message)``, also written to torchrun's error file so that its failure report shows it."""
    path = os.environ.get("TORCHELASTIC_ERROR_FILE")
    if path:
        import json
        import time

        try:
            line = f"error: {message}"  # the layout torch's ErrorHandler writes; the report shows py_callstack
            info = {"py_callstack": line, "timestamp": str(int(time.time()))}
            Path(path).write_text(json.dumps({"message": {"message": line, "extraInfo": info}}))
        except OSError:
            pass
    return UserError(message)


@contextmanager
def lost_peer_errors(info: DistInfo, run_dir: str | Path, step: Callable[[], int]):
    """Under DDP: a lost peer or torchrun's SIGTERM becomes one line naming the peer and the resume command."""
    if not info.enabled:
        yield
        return
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _raise_terminated) if main_thread else None
    resume = (f"restart the same torchrun command on every node with 'train --resume {run_dir}' "
              "(it continues from the last checkpoint)")
    try:
        yield
    except _Terminated:
        master = f"{os.environ.get('MASTER_ADDR', '?')}:{os.environ.get('MASTER_PORT', '?')}"
        raise _reported(f"rank {info.rank} stopped by torchrun at step {step()}: another node or the rendezvous "
                        f"store went away (master {master}); {resume}") from None
    except Exception as exc:
        where = _peer_failure(exc)
        if where is None:
            raise
        peer = " ".join(filter(None, [f"rank {1 - info.rank}" if info.world_size == 2 else "a peer", where]))
        raise _reported(f"rank {info.rank} lost {peer} of the distributed run at step {step()}; {resume}") from exc
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)


def shutdown(info: DistInfo) -> None:
    import torch.distributed as dist

    if info.initialized_here and dist.is_initialized():
        dist.destroy_process_group()


def barrier(info: DistInfo) -> None:
    import torch.distributed as dist

    if info.enabled:
        dist.barrier()


def broadcast_object(info: DistInfo, obj: Any) -> Any:
    """Rank 0's ``obj`` on every rank."""
    import torch.distributed as dist

    if not info.enabled:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather_objects(info: DistInfo, obj: Any) -> list:
    """Every rank's ``obj``, in rank order, on every rank."""
    import torch.distributed as dist

    if not info.enabled:
        return [obj]
    out = [None] * info.world_size
    dist.all_gather_object(out, obj)
    return out


def mean_across_ranks(info: DistInfo, values: dict[str, float]) -> dict[str, float]:
    """Average scalar logs over ranks (same keys on every rank)."""
    if not info.enabled or not values:
        return values
    import torch
    import torch.distributed as dist

    keys = sorted(values)
    t = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64)
    dist.all_reduce(t)
    t /= info.world_size
    return dict(zip(keys, t.tolist()))


class DDPView:
    """The bare module as a task sees it under DDP: attributes are the module's, calls go through DDP.

    Calling it runs DistributedDataParallel's forward, so gradients are synchronised, while
    ``view.some_attribute`` reads the wrapped module: a task never needs to unwrap.
    """

    def __init__(self, ddp):
        object.__setattr__(self, "_ddp", ddp)

    def __call__(self, *args, **kwargs):
        return self._ddp(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._ddp.module, name)
