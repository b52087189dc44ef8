"""Shared model checks: every registered model joins by registration (forward, backward, adapters, export)."""
import pytest
import torch

from sigplex.core import models as registry

registry.import_registered_models()
NAMES = [n for n in registry.list_models() if registry.model_entry(n).domain != "doc"]


def first_tensor(out):
    if isinstance(out, torch.Tensor):
        return out
    return first_tensor(out[0] if isinstance(out, (list, tuple)) else next(iter(out.values())))


def test_some_models_are_registered():
    assert NAMES, "no models registered: is any plugin installed?"


@pytest.mark.parametrize("name", NAMES)
def test_forward_backward_deterministic_shape(name):
    entry = registry.model_entry(name)
    torch.manual_seed(0)
    model = entry.build_tiny()
    x = entry.example_input()
    args = x if isinstance(x, tuple) else (x,)
    model.eval()
    with torch.no_grad():
        a, b = first_tensor(model(*args)), first_tensor(model(*args))
    assert torch.equal(a, b), "eval forward is not deterministic"
    assert torch.isfinite(a).all()
    model.train()
    out = first_tensor(model(*args))
    assert out.shape == a.shape
    out.float().square().mean().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert grads and all(g is not None and torch.isfinite(g).all() for g in grads), "missing or bad gradients"


@pytest.mark.parametrize("name", NAMES)
def test_declares_adapter_points_and_lora_leaves_output_unchanged(name):
    adapters = pytest.importorskip("sigplex.core.adapters")
    entry = registry.model_entry(name)
    assert isinstance(getattr(entry.cls, "adapter_targets", None), dict), f"{name} declares no adapter_targets"
    torch.manual_seed(0)
    model = entry.build_tiny().eval()
    x = entry.example_input()
    args = x if isinstance(x, tuple) else (x,)
    with torch.no_grad():
        before = first_tensor(model(*args))
    adapters.apply_adapter(model, "lora:r=2")
    with torch.no_grad():
        after = first_tensor(model(*args))
    torch.testing.assert_close(after, before, atol=1e-5, rtol=1e-5)
    assert any(p.requires_grad for p in model.parameters())


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_tiny_export_matches_pytorch(name, tmp_path):
    pytest.importorskip("onnxruntime")
    from sigplex.core.exporter import export_model

    entry = registry.model_entry(name)
    if not entry.exportable:
        pytest.skip(f"{name} is declared not exportable")
    torch.manual_seed(0)
    model = entry.build_tiny().eval()
    result = export_model(model, entry.example_input(), format="onnx", output=tmp_path / "m.onnx")
    assert result["max_abs_diff"] <= 1e-4


def test_models_doc_is_up_to_date():
    from helpers import ROOT

    assert (ROOT / "docs" / "models.md").read_text() == registry.models_markdown(), \
        "regenerate: python -m sigplex.core.models > docs/models.md"
