"""Every adapter kind on every core backbone with its declared default targets."""
from __future__ import annotations

import importlib

import pytest
import torch
from adapter_testmodels import randomize_adapters

from sigplex.core.adapters import apply_adapter, merge_adapters


def _transformer():
    mod = importlib.import_module("sigplex.core.backbones.transformer")
    return mod.TransformerEncoder(dim=16, depth=2, heads=2), torch.randn(2, 6, 16)


def _conformer():
    mod = importlib.import_module("sigplex.core.backbones.conformer")
    return mod.ConformerEncoder(dim=16, depth=2, heads=2, conv_kernel_size=5, dropout=0.0), torch.randn(2, 6, 16)


def _swin(use_v2=False):
    mod = importlib.import_module("sigplex.core.backbones.swin")
    if not use_v2:  # 3D
        m = mod.SwinTransformer(in_chans=1, embed_dim=12, window_size=(4, 4, 4), patch_size=(2, 2, 2),
                                depths=(1, 1, 1, 1), num_heads=(1, 1, 1, 1))
        return m, torch.randn(1, 1, 16, 16, 16)
    # 2D with the residual conv blocks (conv adapter points); 64 px keeps the last stage > 1 px
    m = mod.SwinTransformer(in_chans=1, embed_dim=8, window_size=(4, 4), patch_size=(2, 2),
                            depths=(1, 1, 1, 1), num_heads=(1, 1, 1, 1), spatial_dims=2, use_v2=True)
    return m, torch.randn(1, 1, 64, 64)


BACKBONES = {"transformer": _transformer, "conformer": _conformer, "swin": _swin,
             "swin_v2": lambda: _swin(True)}


def _build(name):
    try:
        return BACKBONES[name]()
    except ImportError as exc:  # backbone not written yet
        pytest.skip(f"{name} backbone not importable: {exc}")


def _out(y):
    return torch.cat([t.flatten() for t in y]) if isinstance(y, (list, tuple)) else y


@pytest.mark.parametrize("kind", ["lora", "bottleneck", "conv"])
@pytest.mark.parametrize("name", list(BACKBONES))
def test_default_targets_on_backbones(name, kind):
    torch.manual_seed(0)
    model, x = _build(name)
    model.eval()
    with torch.no_grad():
        y0 = _out(model(x))
    report = apply_adapter(model, f"{kind}:" + ("r=2" if kind == "lora" else "dim=4"))
    assert report.trainable > 0 and report.share < 0.5
    with torch.no_grad():
        # zero-initialised adapters add exact zeros; an adapted conv may run through another
        # (equally exact) kernel than the fused one, hence float-rounding tolerance
        torch.testing.assert_close(_out(model(x)), y0, atol=1e-5, rtol=1e-5)
    randomize_adapters(model)
    model.train()
    _out(model(x)).square().mean().backward()
    grads = {n: p.grad for n, p in model.named_parameters()}
    assert all((g is None) != (".adapter_" in n) for n, g in grads.items())
    if kind == "lora":
        model.eval()
        with torch.no_grad():
            y = _out(model(x))
            merge_adapters(model)
            torch.testing.assert_close(_out(model(x)), y, atol=1e-4, rtol=1e-4)
