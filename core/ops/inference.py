"""When an op may take its inference-only path, and when a graph is being captured.

Several kernels have a faster form that has no backward or would bake a length-dependent loop
or reshape into a traced graph: the blocked :func:`~sigplex.core.ops.mixed_chunk_attention`, the
``[B, T, C]`` depthwise conv of :mod:`sigplex.core.blocks.conv_module`. They run it only when
:func:`eager_inference` says so.

>>> import torch
>>> w = torch.randn(3, requires_grad=True)
>>> eager_inference(w)
False
>>> with torch.no_grad():
...     eager_inference(w)
True
"""
from __future__ import annotations

import torch


def eager_inference(*tensors: torch.Tensor) -> bool:
    """True when no gradient flows to ``tensors`` and no trace or ONNX export is being recorded
    (exports keep the plain ops, whose graphs do not depend on the input's length)."""
    if torch.jit.is_tracing() or torch.onnx.is_in_onnx_export():
        return False
    return not (torch.is_grad_enabled() and any(t.requires_grad for t in tensors))


def capturing() -> bool:
    """True while a trace, an ONNX export or ``torch.compile`` records the ops: the long-sequence mixers then
    take their plain forms (no autograd Functions, no data-dependent branch), which graphs can hold."""
    return torch.jit.is_tracing() or torch.onnx.is_in_onnx_export() or torch.compiler.is_compiling()


__all__ = ["capturing", "eager_inference"]
