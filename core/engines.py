"""Inference engines: what runs the model inside ``Task.predict`` -- torch eager, torch compiled, ONNX Runtime.

Tasks call their model only as ``model(*tensors)`` (usually through
:func:`sigplex.core.infer.run_batched`), so a stand-in with the same call signature runs the
task's own pre- and post-processing unchanged:

* ``torch`` -- the module itself (eager, with the CPU-tuned kernels of :mod:`sigplex.core.device`);
* ``compiled`` -- the module through ``torch.compile`` (:mod:`sigplex.core.compiling`), compiled on the
  first inputs of each shape, kernels cached under ``$SIGPLEX_CACHE/inductor``;
* ``onnxruntime`` -- an ONNX Runtime session on the run's ``export/model.onnx`` (exported on first use);
* ``auto`` -- the fastest of the three on this machine, by a probe: the steady-state latency of
  ``predict`` on the task's sample input (:meth:`~sigplex.core.task.Task.sample_inputs`), measured for
  at most :data:`PROBE_BUDGET_S` seconds of repetitions. The choice is cached per checkpoint and machine
  (:mod:`sigplex.core.cache`) and recorded in each output's provenance. Another engine replaces torch
  only when it is at least :data:`MARGIN` faster, and only when its outputs agree with torch's within the
  task's ``engine_tolerance``.
"""
from __future__ import annotations

import statistics
import time
from pathlib import Path

from .errors import require

ENGINES = ("torch", "compiled", "onnxruntime")
CHOICES = (*ENGINES, "auto")
PROBE_BUDGET_S = 20.0  # seconds of timed repetitions over all engines (one-time compile/export excluded)
MARGIN = 0.03  # an engine replaces torch when its latency is at most (1 - MARGIN) of torch's


def steady_latency(call, budget_s: float, min_repeats: int = 3, max_repeats: int = 20) -> dict:
    """Time ``call()`` after two warm-up calls (compilation, allocator): the median of the timed repeats.

    Repeats until ``budget_s`` is spent (at least ``min_repeats``). Returns ``latency_s``, ``repeats``
    and ``warmup_s`` (the first call's time: compile or first-touch costs).
    """
    start = time.perf_counter()
    call()
    warmup = time.perf_counter() - start
    call()
    times: list[float] = []
    deadline = time.perf_counter() + budget_s
    while len(times) < max_repeats and (len(times) < min_repeats or time.perf_counter() < deadline):
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    return {"latency_s": statistics.median(times), "repeats": len(times), "warmup_s": warmup}


def choose_engine(latencies: dict[str, float], margin: float = MARGIN) -> str:
    """The engine of ``latencies`` (seconds per input) to use: torch unless another is ``margin`` faster.

    >>> choose_engine({"torch": 1.0, "compiled": 0.5, "onnxruntime": 0.8})
    'compiled'
    >>> choose_engine({"torch": 1.0, "compiled": 0.99})
    'torch'
    """
    best = min(latencies, key=latencies.get)
    if "torch" in latencies and latencies[best] > (1 - margin) * latencies["torch"]:
        return "torch"
    return best


def outputs_agree(reference, other, tolerance: float) -> float | None:
    """The largest deviation of ``other`` from ``reference`` (tensors or nested tuples/dicts of them), relative
    to the reference's largest magnitude (at least 1); None when it exceeds ``tolerance``.

    >>> import torch
    >>> outputs_agree(torch.tensor([1.0, 2.0]), torch.tensor([1.0, 2.001]), 1e-3) is not None
    True
    """
    import torch

    if isinstance(reference, dict):
        pairs = [(reference[k], other[k]) for k in reference]
    elif isinstance(reference, (tuple, list)):
        pairs = list(zip(reference, other))
    else:
        pairs = [(reference, other)]
    worst = 0.0
    for ref, out in pairs:
        ref = torch.as_tensor(ref).detach().float()
        out = torch.as_tensor(out).detach().float()
        if ref.shape != out.shape:
            return None
        scale = max(1.0, float(ref.abs().max())) if ref.numel() else 1.0
        deviation = float((ref - out).abs().max()) / scale if ref.numel() else 0.0
        if not deviation <= tolerance:
            return None
        worst = max(worst, deviation)
    return worst


class OnnxModel:
    """``model(*tensors) -> tensor`` backed by an ``onnxruntime.InferenceSession`` on the CPU.

    >>> import torch, tempfile, pathlib                                   # doctest: +SKIP
    >>> OnnxModel(pathlib.Path("m.onnx"))(torch.randn(2, 3)).shape       # doctest: +SKIP
    """

    def __init__(self, path: str | Path, threads: int | None = None):
        import torch

        ort = require("onnxruntime", "export", "the onnxruntime engine")
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = int(threads)
        # ONNX Runtime's workers spin after each run by default, taking the cores from the torch and NumPy
        # work that follows (reading, post-processing, another model): a DBConformer forward right after a
        # session run took 92 ms instead of 44 on 2 cores. Without spinning the run itself is as fast.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.add_session_config_entry("session.inter_op.allow_spinning", "0")
        self.path = Path(path)
        self.session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.device = torch.device("cpu")
        self.training = False

    def __call__(self, *tensors):
        import numpy as np
        import torch

        if len(tensors) != len(self.input_names):
            raise TypeError(f"{self.path.name} takes {len(self.input_names)} inputs, got {len(tensors)}")
        feeds = {n: np.ascontiguousarray(t.detach().cpu().numpy()) for n, t in zip(self.input_names, tensors)}
        outs = [torch.from_numpy(o) for o in self.session.run(None, feeds)]
        return outs[0] if len(outs) == 1 else tuple(outs)

    def eval(self):
        return self

    def train(self, mode: bool = True):
        return self

    def to(self, *args, **kwargs):
        return self

    def metadata(self) -> dict:
        return dict(self.session.get_modelmeta().custom_metadata_map)
