"""Export a model to ONNX or TorchScript, atomically, and check the result against PyTorch.

>>> import torch, tempfile, pathlib
>>> m = torch.nn.Linear(3, 2).eval()
>>> out = pathlib.Path(tempfile.mkdtemp()) / "m.pt"
>>> export_model(m, torch.randn(1, 3), format="torchscript", output=out)["max_abs_diff"] < 1e-6
True
"""
from __future__ import annotations

from pathlib import Path

from .errors import UserError, require
from .fileio import atomic_path

FORMATS = ("onnx", "torchscript")


def _as_tuple(example):
    return example if isinstance(example, tuple) else (example,)


def _short(exc: Exception, limit: int = 240) -> str:
    text = (str(exc).strip().splitlines() or [""])[0]
    return text if len(text) <= limit else text[:limit] + "..."


def _first_tensor(out):
    import torch

    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, (list, tuple)):
        return _first_tensor(out[0])
    if isinstance(out, dict):
        return _first_tensor(next(iter(out.values())))
    raise TypeError(f"cannot compare model output of type {type(out).__name__}")


def export_model(model, example, *, format: str, output: Path, overwrite: bool = False, check: bool = True,
                 opset: int = 17) -> dict:
    """Write ``model`` as ``format`` to ``output``; with ``check`` compare its output to PyTorch's."""
    import torch

    if format not in FORMATS:
        raise UserError(f"--format {format!r}: expected one of {', '.join(FORMATS)}")
    output = Path(output)
    model = model.eval()
    args = _as_tuple(example)
    with torch.no_grad():
        reference = _first_tensor(model(*args)).float()
    result = {"path": str(output), "format": format}
    if format == "torchscript":
        with atomic_path(output, overwrite=overwrite) as tmp, torch.no_grad():
            try:
                scripted = torch.jit.trace(model, args, check_trace=False)
            except Exception as exc:
                raise UserError(f"torchscript export failed: {type(exc).__name__}: {_short(exc)}") from None
            scripted.save(str(tmp))
        if check:
            loaded = torch.jit.load(str(output))
            with torch.no_grad():
                got = _first_tensor(loaded(*args)).float()
            result["max_abs_diff"] = float((got - reference).abs().max())
        return result
    require("onnx", "export", "ONNX export")
    names = [f"input_{i}" for i in range(len(args))] if len(args) > 1 else ["input"]
    with atomic_path(output, overwrite=overwrite) as tmp:
        try:
            torch.onnx.export(model, args, str(tmp), input_names=names, output_names=["output"],
                              opset_version=opset, dynamo=False)
        except Exception as exc:
            raise UserError(f"onnx export failed: {type(exc).__name__}: {_short(exc)}") from None
    if check:
        ort = require("onnxruntime", "export", "checking the ONNX export")
        session = ort.InferenceSession(str(output), providers=["CPUExecutionProvider"])
        feeds = {n: a.detach().cpu().numpy() for n, a in zip(names, args)}
        got = torch.from_numpy(session.run(None, feeds)[0]).float()
        result["max_abs_diff"] = float((got - reference).abs().max())
    return result
