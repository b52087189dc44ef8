"""Checks a plugin's own tests can call: every registered model through forward, backward, adapters and export.

The core runs them on every installed model (tests/core/test_all_models.py); a plugin author who
installed the wheel calls them from the plugin's tests::

    from sigplex.core.testing import check_model
    import my_plugin.model  # registers "my_net"

    def test_my_net(tmp_path):
        check_model("my_net", export_to=tmp_path)

Each check raises ``AssertionError`` saying what failed.
"""
from __future__ import annotations

from pathlib import Path


def _entry(name: str):
    from . import models

    return models.model_entry(name)


def _first_tensor(out):
    import torch

    if isinstance(out, torch.Tensor):
        return out
    return _first_tensor(out[0] if isinstance(out, (list, tuple)) else next(iter(out.values())))


def _tiny(name: str):
    import torch

    entry = _entry(name)
    torch.manual_seed(0)
    model = entry.build_tiny()
    x = entry.example_input()
    return model, (x if isinstance(x, tuple) else (x,))


def check_forward_backward(name: str) -> None:
    """The tiny model's eval forward is deterministic and finite, train mode gives the same shape, and
    every trainable parameter gets a finite gradient."""
    import torch

    model, args = _tiny(name)
    model.eval()
    with torch.no_grad():
        a, b = _first_tensor(model(*args)), _first_tensor(model(*args))
    assert torch.equal(a, b), f"{name}: the eval forward is not deterministic"
    assert torch.isfinite(a).all(), f"{name}: the eval forward gives NaN or infinite values"
    model.train()
    out = _first_tensor(model(*args))
    assert out.shape == a.shape, f"{name}: train-mode output {tuple(out.shape)} differs from eval {tuple(a.shape)}"
    out.float().square().mean().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert grads and all(g is not None and torch.isfinite(g).all() for g in grads), \
        f"{name}: missing or non-finite gradients"


def check_adapters(name: str) -> None:
    """The model declares ``adapter_targets``, and LoRA on its default targets starts as a no-op."""
    import torch

    from .adapters import apply_adapter

    assert isinstance(getattr(_entry(name).cls, "adapter_targets", None), dict), \
        f"{name} declares no adapter_targets (a dict of adapter kind -> module-name globs)"
    model, args = _tiny(name)
    model.eval()
    with torch.no_grad():
        before = _first_tensor(model(*args))
    apply_adapter(model, "lora:r=2")
    with torch.no_grad():
        after = _first_tensor(model(*args))
    torch.testing.assert_close(after, before, atol=1e-5, rtol=1e-5, msg=f"{name}: LoRA at start changes the output")
    assert any(p.requires_grad for p in model.parameters()), f"{name}: nothing to train after apply_adapter"


def check_export(name: str, folder: str | Path, atol: float = 1e-4) -> None:
    """The tiny model exports to ONNX and ONNX Runtime agrees with PyTorch within ``atol`` (skipped for a
    model registered with ``exportable=False``)."""
    from .exporter import export_model

    entry = _entry(name)
    if not entry.exportable:
        return
    model, args = _tiny(name)
    result = export_model(model.eval(), args if len(args) > 1 else args[0], format="onnx",
                          output=Path(folder) / f"{name}.onnx")
    assert result["max_abs_diff"] <= atol, f"{name}: ONNX differs from PyTorch by {result['max_abs_diff']:.3g}"


def check_model(name: str, export_to: str | Path | None = None) -> None:
    """All the checks above; the export only when ``export_to`` names a folder for the ONNX file."""
    check_forward_backward(name)
    check_adapters(name)
    if export_to is not None:
        check_export(name, export_to)
