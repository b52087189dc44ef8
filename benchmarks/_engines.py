"""Our model under the two other engines of :mod:`sigplex.core.engines`, for the benchmarks that time them.

``compiled_model`` and ``onnx_model`` each return the engine's callable and its one-time setup in
seconds (compilation, or export + session), both including a first call on the example inputs.
"""
from __future__ import annotations

import time
from pathlib import Path

import torch


def compiled_model(model, inputs: tuple):
    """``torch.compile`` (Inductor) of ``model``, compiled by a first no-grad call on ``inputs``;
    (callable, seconds)."""
    from sigplex.core.compiling import compile_module

    start = time.perf_counter()
    compiled = compile_module(model, True, "bench")
    with torch.no_grad():
        compiled(*inputs)
    return compiled, time.perf_counter() - start


def onnx_model(model, inputs: tuple, path: Path):
    """``model`` exported to ``path`` and run by ONNX Runtime on torch's thread count; (callable, seconds)."""
    from sigplex.core.engines import OnnxModel
    from sigplex.core.exporter import export_model

    start = time.perf_counter()
    export_model(model, inputs if len(inputs) > 1 else inputs[0], format="onnx", output=path, overwrite=True,
                 check=False)
    session = OnnxModel(path, threads=torch.get_num_threads())
    session(*inputs)
    return session, time.perf_counter() - start
