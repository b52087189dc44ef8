"""apply_adapter: zero-init outputs, freezing, trainable share, targets, layouts and errors."""
from __future__ import annotations

import copy

import pytest
import torch
from adapter_testmodels import Block, ConvNet, TinyTransformer, Wrapper, randomize_adapters
from torch import nn

from sigplex.core.adapters import apply_adapter, has_adapters, remove_adapters, summary, trainable_parameters
from sigplex.core.errors import UserError

torch.manual_seed(0)
X_TOK = torch.randn(2, 5, 16)
X_CONV = torch.randn(2, 3, 64)


def _adapter_names(model):
    return {n for n, _ in model.named_parameters() if ".adapter_" in n}


@pytest.mark.parametrize("spec", [
    "lora:r=4", "bottleneck:dim=8", "conv:dim=8,kernel=3", "lora:r=2,dropout=0.2;bottleneck:dim=4;conv:dim=4",
    "lora:r=4,targets=*.fc1|*.fc2|*.head", "conv:dim=4,spatial=1,targets=*.attn",
])
def test_token_model_output_unchanged_at_start(spec):
    m = TinyTransformer().eval()
    y0 = m(X_TOK)
    report = apply_adapter(m, spec)
    assert has_adapters(m) and report.trainable > 0
    assert torch.equal(m(X_TOK), y0)
    randomize_adapters(m)
    assert not torch.allclose(m(X_TOK), y0)  # the adapters are really in the forward path


@pytest.mark.parametrize("spec", ["lora:r=3", "conv:dim=4,kernel=5"])
def test_conv1d_2d_3d_output_unchanged_and_backward(spec):
    m = ConvNet()
    y0 = m(X_CONV)
    apply_adapter(m, spec)
    assert {type(mod).__name__ for mod in (m.c1, m.c2, m.c3)} == {"Conv1d", "Conv2d", "Conv3d"}
    assert torch.equal(m(X_CONV), y0)
    randomize_adapters(m)
    y = m(X_CONV)
    assert y.shape == y0.shape and not torch.allclose(y, y0)
    y.square().mean().backward()
    for name, p in m.named_parameters():
        assert (p.grad is not None) == (".adapter_" in name), name


def test_lora_conv_matches_a_conv_with_the_merged_weight():
    # the LoRA path of a strided / circular-padded conv equals conv(x, W + scale*B.A) exactly
    m = ConvNet()
    apply_adapter(m, "lora:r=2,alpha=6")
    randomize_adapters(m)
    x = torch.randn(2, 8, 4, 2, 2)
    lora = m.c3.adapter_lora
    ref = m.c3._conv_forward(x, m.c3.weight + lora.delta_weight(), m.c3.bias)
    torch.testing.assert_close(m.c3(x), ref, atol=1e-5, rtol=1e-5)
    assert lora.scale == 3.0


def test_optimizer_steps_change_only_adapters():
    m = TinyTransformer()
    base = {k: v.clone() for k, v in m.state_dict().items()}
    apply_adapter(m, "lora:r=4;bottleneck:dim=4;conv:dim=4")
    adapters0 = {n: p.detach().clone() for n, p in m.named_parameters() if ".adapter_" in n}
    # even an optimizer given *all* parameters (with weight decay) must leave the base alone
    opt = torch.optim.AdamW(m.parameters(), lr=1e-2, weight_decay=0.1)
    for _ in range(3):
        opt.zero_grad()
        m(X_TOK).square().mean().backward()
        opt.step()
    sd = m.state_dict()
    for k, v in base.items():
        assert torch.equal(sd[k], v), k
    changed = [n for n, p in m.named_parameters() if ".adapter_" in n and not torch.equal(p, adapters0[n])]
    assert set(changed) == set(adapters0)
    assert {id(p) for p in trainable_parameters(m)} == {id(p) for n, p in m.named_parameters() if n in adapters0}


def test_trainable_share_is_exact():
    m = Block()
    total0 = sum(p.numel() for p in m.parameters())
    report = apply_adapter(m, "lora:r=4,targets=attn.qkv|attn.proj")
    expected = 4 * (16 + 48) + 4 * (16 + 16)
    assert report.trainable == expected
    assert report.total == total0 + expected
    assert report.share == pytest.approx(expected / (total0 + expected))
    line = str(summary(m))
    assert f"trainable {expected:,} / {total0 + expected:,} parameters" in line and "lora×2" in line
    assert "\n" not in str(report) and "on 2 modules" in str(report)
    report2 = apply_adapter(m, "bottleneck:dim=8")  # AdaptFormer: 16->8->16 with biases
    assert report2.trainable == expected + (16 * 8 + 8) + (8 * 16 + 16)


def test_base_keys_unchanged_and_base_state_dict_loads():
    ref = TinyTransformer()
    m = TinyTransformer()
    keys0 = list(m.state_dict())
    apply_adapter(m, "lora:r=4;bottleneck:dim=4")
    keys = list(m.state_dict())
    assert [k for k in keys if ".adapter_" not in k] == keys0
    assert any(k.endswith("attn.qkv.adapter_lora.A") for k in keys)
    result = m.load_state_dict(ref.state_dict(), strict=False)
    assert not result.unexpected_keys and all(".adapter_" in k for k in result.missing_keys)
    assert torch.equal(m(X_TOK), ref(X_TOK))


def test_default_targets_from_declarations():
    m = TinyTransformer()
    report = apply_adapter(m, "lora:r=2")
    assert report.specs == ["lora:r=2,alpha=2.0,dropout=0.0,targets=*.attn.qkv|*.attn.proj"]
    assert report.targets[report.specs[0]] == ["blocks.0.attn.qkv", "blocks.0.attn.proj",
                                               "blocks.1.attn.qkv", "blocks.1.attn.proj"]
    # declarations on a submodule are prefixed with its name; the outermost declaration wins
    w = Wrapper()
    report = apply_adapter(w, "bottleneck:dim=4")
    assert report.targets[report.specs[0]] == ["encoder.blocks.0.mlp", "encoder.blocks.1.mlp"]
    assert "targets=encoder.*.mlp" in report.specs[0]
    # '*.qkv' declared on Block also matches its direct child 'attn.qkv'... and the root 'qkv'
    b = Block()
    assert apply_adapter(b, "lora").targets  # Block declares '*.qkv' -> 'attn.qkv'


def test_no_targets_anywhere_is_an_error():
    m = nn.Sequential(nn.Linear(4, 4))
    with pytest.raises(UserError, match="no targets given and Sequential declares no default 'lora' targets"):
        apply_adapter(m, "lora:r=2")
    with pytest.raises(UserError, match="declares no default 'bottleneck' targets"):
        apply_adapter(ConvNet(), "bottleneck")


@pytest.mark.parametrize("spec, message", [
    ("lora:targets=*.nothing", "target '*.nothing' matches no module in TinyTransformer; module names look like"),
    ("lora:targets=*.mlp", "matches 'blocks.0.mlp', a Mlp; lora wraps nn.Linear and nn.Conv1d/2d/3d"),
    ("lora:targets=*.norm1", "a LayerNorm"),
    ("lora:targets=blocks", "a ModuleList (a container without forward"),
    ("bottleneck:targets=*.act", "a GELU with no nn.Linear inside"),
    ("conv:targets=*.norm2", "a LayerNorm with no nn.Linear or nn.Conv1d/2d/3d inside"),
    ("lora:targets=*.qkv;lora:targets=*.attn.qkv", "'blocks.0.attn.qkv' already has a lora adapter"),
])
def test_bad_targets_are_clear_errors_and_leave_the_model_untouched(spec, message):
    m = TinyTransformer()
    with pytest.raises(UserError, match=None) as info:
        apply_adapter(m, spec)
    assert message in str(info.value)
    assert not has_adapters(m)
    assert all(p.requires_grad for p in m.parameters())


def test_bottleneck_on_conv_and_grouped_conv_lora_are_refused():
    with pytest.raises(UserError, match="'c2', a Conv2d with no nn.Linear inside"):
        apply_adapter(ConvNet(), "bottleneck:targets=c2")
    m = nn.Sequential(nn.Conv1d(4, 4, 3, groups=2))
    with pytest.raises(UserError, match="grouped conv"):
        apply_adapter(m, "lora:targets=0")


def test_multihead_attention_out_proj_is_refused():
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.mha = nn.MultiheadAttention(8, 2)

    with pytest.raises(UserError, match="inside nn.MultiheadAttention"):
        apply_adapter(M(), "lora:targets=mha.out_proj")


def test_sequential_target_keeps_len_indexing_and_forward():
    m = nn.Sequential(nn.Linear(16, 32), nn.GELU(), nn.Linear(32, 16))
    outer = nn.Sequential(m)  # root declares nothing: explicit targets
    y0 = outer(X_TOK)
    apply_adapter(outer, "bottleneck:dim=4,targets=0;conv:dim=4,targets=0")
    assert len(m) == 3 and isinstance(m[-1], nn.Linear) and len(list(m)) == 3
    assert torch.equal(outer(X_TOK), y0)
    randomize_adapters(outer)
    assert not torch.allclose(outer(X_TOK), y0)
    assert remove_adapters(outer) == 2
    assert type(m) is nn.Sequential and torch.equal(outer(X_TOK), y0)


def test_conv_adapter_layouts():
    # channels-last tokens [B, T, C]; [B, H, W, C] flattened (spatial=1) or a 2D grid (spatial=2)
    for spatial, x in [(1, torch.randn(2, 7, 16)), (1, torch.randn(2, 3, 4, 16)), (2, torch.randn(2, 3, 4, 16))]:
        mlp = nn.Sequential(nn.Linear(16, 32), nn.GELU(), nn.Linear(32, 16))
        holder = nn.Sequential(mlp)
        apply_adapter(holder, f"conv:dim=4,spatial={spatial},targets=0")
        assert mlp.adapter_conv.dw.weight.dim() == 2 + spatial
        randomize_adapters(holder)
        y = holder(x)
        assert y.shape == x.shape
        # the depthwise conv mixes neighbouring positions: changing one token moves its neighbour
        x2 = x.clone()
        x2[:, 1] += 1.0
        assert not torch.allclose(holder(x2)[:, 0], y[:, 0])
    # channels-first conv maps: a strided conv target gets a strided depthwise conv
    m = ConvNet()
    apply_adapter(m, "conv:dim=4,targets=c2")
    assert m.c2.adapter_conv.dw.stride == (2, 2) and not m.c2.adapter_conv.channels_last


def test_conv_adapter_shape_mismatch_is_a_clear_error():
    m = nn.Sequential(nn.Conv1d(3, 3, 3))  # no padding: the output is 2 shorter than the input
    apply_adapter(m, "conv:dim=2,targets=0")
    with pytest.raises(UserError, match="conv adapter on '0': adapter output .* differs from the module output"):
        m(torch.randn(1, 3, 10))
    m2 = nn.Sequential(nn.Linear(16, 16))
    apply_adapter(m2, "bottleneck:dim=2,targets=0")
    with pytest.raises(UserError, match="conv adapter|bottleneck adapter on '0'"):
        m2[0].adapter_bottleneck(m2[0], torch.randn(2, 3), torch.randn(2, 16))


def test_deepcopy_uses_its_own_adapters():
    m = TinyTransformer()
    apply_adapter(m, "lora:r=2;bottleneck:dim=4")
    randomize_adapters(m)
    c = copy.deepcopy(m)
    assert torch.equal(c(X_TOK), m(X_TOK))
    with torch.no_grad():
        for n, p in c.named_parameters():
            if ".adapter_" in n:
                p.zero_()
    assert not torch.allclose(c(X_TOK), m(X_TOK))
