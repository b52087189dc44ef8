"""Batched inference helpers shared by every task: the model's device and no-grad batched calls.

``model`` may be a torch module or any callable on tensors with a ``device`` attribute (such
as the ONNX Runtime stand-in of :mod:`sigplex.core.engines`): tasks call the model only
through these helpers or as ``model(*tensors)``.

>>> import torch
>>> net = torch.nn.Linear(4, 2)
>>> run_batched(net, torch.randn(10, 4), batch_size=3).shape
torch.Size([10, 2])
"""
from __future__ import annotations

from typing import Any, Callable


def model_device(model) -> "torch.device":  # noqa: F821
    """The device a model's inputs must be on (its first parameter's, else its ``device``, else CPU)."""
    import torch

    device = getattr(model, "device", None)
    if isinstance(device, (str, torch.device)):
        return torch.device(device)
    params = getattr(model, "parameters", None)
    if callable(params):
        for p in params():
            return p.device
        for b in model.buffers():
            return b.device
    return torch.device("cpu")


def _cat(outputs: list):
    import torch

    first = outputs[0]
    if isinstance(first, torch.Tensor):
        return torch.cat(outputs)
    if isinstance(first, (tuple, list)):
        return type(first)(_cat([o[i] for o in outputs]) for i in range(len(first)))
    if isinstance(first, dict):
        return {k: _cat([o[k] for o in outputs]) for k in first}
    raise TypeError(f"cannot concatenate model outputs of type {type(first).__name__}")


def run_batched(model: Callable, *inputs, batch_size: int = 64, to_cpu: bool = True, fn: Callable | None = None) -> Any:
    """``model(*inputs)`` over the first axis in chunks of ``batch_size`` under ``no_grad``, concatenated.

    Each chunk moves to the model's device; outputs come back on the CPU unless ``to_cpu=False``.
    ``fn(model, *chunk)`` replaces the plain call when the task needs more than ``model(*chunk)``.
    """
    import torch

    from .task import move_to

    if not inputs:
        raise ValueError("run_batched needs at least one input tensor")
    n = len(inputs[0])
    if n == 0:
        raise ValueError("run_batched got an empty input")
    device = model_device(model)
    outs = []
    with torch.no_grad():
        for start in range(0, n, max(1, int(batch_size))):
            chunk = [move_to(x[start:start + batch_size], device) for x in inputs]
            out = fn(model, *chunk) if fn is not None else model(*chunk)
            outs.append(move_to(out, "cpu") if to_cpu else out)
    return _cat(outs)


def iterate_batches(dataset, batch_size: int, collate=None, device=None):
    """Yield batches of a map-style dataset in order (no shuffling, last batch kept), moved to ``device``."""
    from torch.utils.data import DataLoader

    from .task import move_to

    loader = DataLoader(dataset, batch_size=max(1, int(batch_size)), shuffle=False, drop_last=False,
                        collate_fn=collate)
    for batch in loader:
        yield move_to(batch, device) if device is not None else batch
