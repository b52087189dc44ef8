"""Inference engines: an ONNX Runtime session that stands in for the torch module in ``Task.predict``.

Tasks call their model only as ``model(*tensors)`` (usually through
:func:`sigplex.core.infer.run_batched`), so a session with the same call signature runs the
task's own pre- and post-processing unchanged. ``platform predict --engine onnxruntime`` and
``load_run(..., engine="onnxruntime")`` use the run's ``export/model.onnx`` (exported on first use).
"""
from __future__ import annotations

from pathlib import Path

from .errors import require

ENGINES = ("torch", "onnxruntime")


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
