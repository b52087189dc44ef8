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


def _grown(example: tuple, axes: dict[int, dict[int, str]]) -> tuple:
    """A second example whose dynamic axes differ from the first (batch 3, other lengths +50%), to prove they are."""
    import torch

    out = []
    for i, x in enumerate(example):
        shape = list(x.shape)
        for axis in (axes or {}).get(i, {}):
            shape[axis] = 3 if axis == 0 else max(shape[axis] + shape[axis] // 2, shape[axis] + 1)
        if shape == list(x.shape):
            out.append(x)
        elif x.is_floating_point():
            out.append(torch.randn(shape, dtype=x.dtype))
        else:
            out.append(torch.randint(0, int(x.max()) + 1 if x.numel() else 2, shape, dtype=x.dtype))
    return tuple(out)


def _onnx_export(model, args, path, names, axes, opset) -> None:
    import torch

    onnx_axes = {names[i]: {int(a): str(n) for a, n in ax.items()} for i, ax in axes.items() if ax}
    if any(0 in ax for ax in axes.values()):
        onnx_axes["output"] = {0: "batch"}
    torch.onnx.export(model, args, str(path), input_names=names, output_names=["output"],
                      opset_version=opset, dynamo=False, dynamic_axes=onnx_axes or None)


def export_model(model, example, *, format: str, output: Path, overwrite: bool = False, check: bool = True,
                 opset: int = 17, dynamic_axes: dict[int, dict[int, str]] | None = None,
                 metadata: dict[str, str] | None = None) -> dict:
    """Write ``model`` as ``format`` to ``output``; with ``check`` compare its output to PyTorch's.

    ``dynamic_axes`` (ONNX) maps an input index to ``{axis: name}``; the batch axis (0) is dynamic
    by default. The check runs the example and a second input that differs along every dynamic
    axis, and reports the larger difference. ``metadata`` goes into the ONNX ``metadata_props``.
    """
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
    auto = dynamic_axes is None
    axes = {i: {0: "batch"} for i in range(len(args))} if auto else dynamic_axes
    with atomic_path(output, overwrite=overwrite) as tmp:
        try:
            _onnx_export(model, args, tmp, names, axes, opset)
        except Exception as exc:
            if not auto:
                raise UserError(f"onnx export failed: {type(exc).__name__}: {_short(exc)}") from None
            # the default dynamic batch axis is not traceable for this model: keep every axis fixed, and say so
            result["note"] = f"batch axis fixed (the model does not export with a dynamic batch: {_short(exc, 120)})"
            axes = {}
            try:
                _onnx_export(model, args, tmp, names, axes, opset)
            except Exception as exc2:
                raise UserError(f"onnx export failed: {type(exc2).__name__}: {_short(exc2)}") from None
        if metadata:
            import onnx

            proto = onnx.load(str(tmp))
            for key, value in metadata.items():
                entry = proto.metadata_props.add()
                entry.key, entry.value = str(key), "" if value is None else str(value)
            onnx.save(proto, str(tmp))
    result["dynamic_axes"] = {names[i]: ax for i, ax in axes.items()}
    if check:
        ort = require("onnxruntime", "export", "checking the ONNX export")
        session = ort.InferenceSession(str(output), providers=["CPUExecutionProvider"])
        diffs = []
        for inputs in (args, _grown(args, axes)):
            with torch.no_grad():
                expected = _first_tensor(model(*inputs)).float()
            feeds = {n: a.detach().cpu().numpy() for n, a in zip(names, inputs)}
            got = torch.from_numpy(session.run(None, feeds)[0]).float()
            if got.shape != expected.shape:
                raise UserError(f"onnx export: output shape {tuple(got.shape)} differs from PyTorch's "
                                f"{tuple(expected.shape)} for inputs {[tuple(a.shape) for a in inputs]}")
            diffs.append(float((got - expected).abs().max()))
        result["max_abs_diff"] = max(diffs)
    del reference
    return result
