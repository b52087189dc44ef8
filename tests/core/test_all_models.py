"""Shared model checks: every registered model joins by registration (forward, backward, adapters, export).

The checks are sigplex.core.testing's, which plugin authors call from their own tests.
"""
import pytest
import torch
from torch import nn

from sigplex.core import models as registry
from sigplex.core import testing

registry.import_registered_models()
NAMES = [n for n in registry.list_models() if registry.model_entry(n).domain != "doc"]


def test_some_models_are_registered():
    assert NAMES, "no models registered: is any plugin installed?"


@pytest.mark.parametrize("name", NAMES)
def test_forward_backward_deterministic_shape(name):
    testing.check_forward_backward(name)


@pytest.mark.parametrize("name", NAMES)
def test_declares_adapter_points_and_lora_leaves_output_unchanged(name):
    testing.check_adapters(name)


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_tiny_export_matches_pytorch(name, tmp_path):
    pytest.importorskip("onnxruntime")
    if not registry.model_entry(name).exportable:
        pytest.skip(f"{name} is declared not exportable")
    testing.check_export(name, tmp_path)


def test_the_checks_catch_a_broken_model(tmp_path):
    @registry.register_model("doc_broken_dropout", domain="doc", example_input=lambda: torch.randn(2, 4), overwrite=True)
    class Noisy(nn.Module):  # eval-mode dropout: a nondeterministic forward, and no adapter points
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 4)

        def forward(self, x):
            return nn.functional.dropout(self.fc(x), 0.5, training=True)

    with pytest.raises(AssertionError, match="doc_broken_dropout: the eval forward is not deterministic"):
        testing.check_forward_backward("doc_broken_dropout")
    with pytest.raises(AssertionError, match="doc_broken_dropout declares no adapter_targets"):
        testing.check_adapters("doc_broken_dropout")


def test_models_doc_is_up_to_date():
    from helpers import ROOT

    assert (ROOT / "docs" / "models.md").read_text() == registry.models_markdown(), \
        "regenerate: python -m sigplex.core.models > docs/models.md"
