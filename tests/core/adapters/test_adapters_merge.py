"""merge_adapters / unmerge_adapters: equal outputs, exact base keys, refusal of nonlinear kinds."""
from __future__ import annotations

import pytest
import torch
from adapter_testmodels import ConvNet, TinyTransformer, randomize_adapters

from sigplex.core.adapters import apply_adapter, has_adapters, merge_adapters, save_adapter, summary, unmerge_adapters
from sigplex.core.errors import UserError

X_TOK = torch.randn(2, 5, 16)
X_CONV = torch.randn(2, 3, 64)


@pytest.mark.parametrize("make, x, spec", [
    (TinyTransformer, X_TOK, "lora:r=4,alpha=8,targets=*.qkv|*.proj|*.fc1|*.fc2|head"),
    (ConvNet, X_CONV, "lora:r=2,alpha=4"),
])
def test_merge_then_unmerge(make, x, spec):
    m = make().eval()
    keys0 = list(m.state_dict())
    weights0 = {k: v.clone() for k, v in m.state_dict().items()}
    apply_adapter(m, spec)
    randomize_adapters(m)
    y = m(x)
    merged = merge_adapters(m)
    assert merged and not has_adapters(m)
    assert list(m.state_dict()) == keys0  # exactly the original keys
    torch.testing.assert_close(m(x), y, atol=1e-5, rtol=1e-5)
    fresh = make()
    fresh.load_state_dict(m.state_dict(), strict=True)  # loads into the un-adapted class
    torch.testing.assert_close(fresh.eval()(x), y, atol=1e-5, rtol=1e-5)
    changed = [k for k in keys0 if not torch.equal(m.state_dict()[k], weights0[k])]
    assert changed  # the weights really absorbed the updates

    assert unmerge_adapters(m) == merged
    assert has_adapters(m)
    torch.testing.assert_close(m(x), y, atol=1e-5, rtol=1e-5)
    for k, v in weights0.items():  # base weights back to pre-merge values (float rounding)
        torch.testing.assert_close(m.state_dict()[k], v, atol=1e-5, rtol=1e-5)
    assert summary(m).trainable == sum(p.numel() for n, p in m.named_parameters() if ".adapter_" in n)
    assert all(p.requires_grad == (".adapter_" in n) for n, p in m.named_parameters())


def test_nonlinear_adapters_cannot_be_merged():
    m = TinyTransformer().eval()
    apply_adapter(m, "lora:r=2;bottleneck:dim=4")
    randomize_adapters(m)
    y = m(X_TOK)
    with pytest.raises(UserError, match=r"bottleneck on 'blocks.0.mlp'.* only lora merges"):
        merge_adapters(m)
    assert summary(m).adapters == {"lora": 4, "bottleneck": 2}  # untouched
    assert merge_adapters(m, strict=False) == ["blocks.0.attn.qkv", "blocks.0.attn.proj",
                                               "blocks.1.attn.qkv", "blocks.1.attn.proj"]
    assert summary(m).adapters == {"bottleneck": 2}
    torch.testing.assert_close(m(X_TOK), y, atol=1e-5, rtol=1e-5)


def test_merge_keep_false_is_permanent_and_merged_models_refuse_new_work(tmp_path):
    m = TinyTransformer()
    apply_adapter(m, "lora:r=2")
    merge_adapters(m)  # keep=True
    with pytest.raises(UserError, match="has merged LoRA adapters; call unmerge_adapters"):
        apply_adapter(m, "lora:r=2")
    with pytest.raises(UserError, match="no adapters to save .*merged"):
        save_adapter(m, tmp_path / "a.safetensors")
    unmerge_adapters(m)
    merge_adapters(m, keep=False)
    with pytest.raises(UserError, match="no merged adapters to unmerge"):
        unmerge_adapters(m)
    apply_adapter(m, "lora:r=2")  # a fresh adapter on the merged weights is fine


def test_changes_to_merged_weights_survive_unmerge():
    m = TinyTransformer()
    apply_adapter(m, "lora:r=2,targets=blocks.0.attn.qkv")
    randomize_adapters(m)
    w0 = m.blocks[0].attn.qkv.weight.detach().clone()
    merge_adapters(m)
    with torch.no_grad():
        m.blocks[0].attn.qkv.weight.add_(1.0)
    unmerge_adapters(m)
    torch.testing.assert_close(m.blocks[0].attn.qkv.weight, w0 + 1.0, atol=1e-5, rtol=1e-5)
