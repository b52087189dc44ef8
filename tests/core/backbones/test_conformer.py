"""sigplex.core.backbones.conformer: blocks equal to torchaudio's ConformerLayer with the same weights."""
from fnmatch import fnmatch

import pytest
import torch
from torch import nn

from sigplex.core.backbones.conformer import ConformerBlock, ConformerEncoder
from sigplex.core.ops.attention import fused_attention

TOL = dict(atol=1e-5, rtol=1e-5)


def rand(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def randomize(model):
    """Non-trivial norms and BatchNorm statistics so that every parameter matters."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.LayerNorm, nn.BatchNorm1d)):
                m.weight.normal_(1.0, 0.2)
                m.bias.normal_(0.0, 0.2)
            if isinstance(m, nn.BatchNorm1d):
                m.running_mean.normal_(0.0, 0.3)
                m.running_var.uniform_(0.5, 1.5)


def copy_to_torchaudio(block: ConformerBlock, kernel: int):
    ta = pytest.importorskip("torchaudio.models.conformer")
    dim = block.norm.normalized_shape[0]
    ref = ta.ConformerLayer(dim, block.ff1.fc1.out_features, block.attn.num_heads, kernel, dropout=0.0)
    pairs = {
        "ffn1.sequential.0": block.ff1_norm, "ffn1.sequential.1": block.ff1.fc1, "ffn1.sequential.4": block.ff1.fc2,
        "ffn2.sequential.0": block.ff2_norm, "ffn2.sequential.1": block.ff2.fc1, "ffn2.sequential.4": block.ff2.fc2,
        "self_attn_layer_norm": block.attn_norm, "self_attn.out_proj": block.attn.proj,
        "conv_module.layer_norm": block.conv.norm, "conv_module.sequential.0": block.conv.pointwise1,
        "conv_module.sequential.2": block.conv.depthwise, "conv_module.sequential.3": block.conv.conv_norm,
        "conv_module.sequential.5": block.conv.pointwise2, "final_layer_norm": block.norm,
    }
    ref.load_state_dict({**{f"{k}.{n}": t for k, m in pairs.items() for n, t in m.state_dict().items()},
                         "self_attn.in_proj_weight": block.attn.qkv.weight,
                         "self_attn.in_proj_bias": block.attn.qkv.bias})
    return ref.eval()


@pytest.mark.parametrize("fused", [True, False])
def test_block_equals_torchaudio_conformer_layer(fused):
    torch.manual_seed(0)
    block = ConformerBlock(16, heads=4, ff_mult=2, conv_kernel_size=7, dropout=0.0)
    randomize(block)
    block.eval()
    ref = copy_to_torchaudio(block, 7)
    x = rand(2, 15, 16, seed=1)
    with fused_attention(fused), torch.no_grad():
        expected = ref(x.transpose(0, 1), None).transpose(0, 1)
        torch.testing.assert_close(block(x), expected, **TOL)


def test_block_backward_equals_torchaudio():
    torch.manual_seed(0)
    block = ConformerBlock(8, heads=2, ff_mult=2, conv_kernel_size=5, dropout=0.0).eval()
    ref = copy_to_torchaudio(block, 5)
    x = rand(2, 9, 8, seed=2)
    block(x).square().sum().backward()
    ref(x.transpose(0, 1), None).square().sum().backward()
    torch.testing.assert_close(block.attn.qkv.weight.grad, ref.self_attn.in_proj_weight.grad, **TOL)
    torch.testing.assert_close(block.conv.depthwise.weight.grad, ref.conv_module.sequential[2].weight.grad, **TOL)
    torch.testing.assert_close(block.ff1.fc1.weight.grad, ref.ffn1.sequential[1].weight.grad, **TOL)


def test_encoder_shapes_intermediates_and_targets():
    torch.manual_seed(0)
    enc = ConformerEncoder(dim=16, depth=3, heads=2, conv_kernel_size=5).eval()
    x = rand(2, 11, 16, seed=3)
    feats = enc.forward_intermediates(x)
    assert len(feats) == 3 and all(f.shape == (2, 11, 16) for f in feats)
    torch.testing.assert_close(feats[-1], enc(x), **TOL)
    names = dict(enc.named_modules())
    for kind, globs in enc.adapter_targets.items():
        for glob in globs:
            assert len([n for n in names if fnmatch(n, glob)]) == 3, (kind, glob)
    assert isinstance(names["blocks.2.attn.proj"], nn.Linear)


@pytest.mark.parametrize("conv_norm", ["batch", "layer"])
def test_padding_does_not_leak_into_valid_frames(conv_norm):
    torch.manual_seed(0)
    enc = ConformerEncoder(dim=16, depth=2, heads=2, conv_kernel_size=5, conv_norm=conv_norm).eval()
    x = rand(2, 12, 16, seed=4)
    kpm = torch.zeros(2, 12, dtype=torch.bool)
    kpm[0, 8:] = True
    x2 = x.clone()
    x2[0, 8:] = 30.0
    out, out2 = enc(x, key_padding_mask=kpm), enc(x2, key_padding_mask=kpm)
    torch.testing.assert_close(out2[~kpm], out[~kpm], **TOL)
    assert (enc(x2)[0, :8] - enc(x)[0, :8]).abs().max().item() > 1e-2  # without the mask they do leak


def test_causal_conformer_ignores_the_future():
    torch.manual_seed(0)
    enc = ConformerEncoder(dim=16, depth=2, heads=2, conv_kernel_size=5, causal=True).eval()
    causal_mask = torch.ones(14, 14, dtype=torch.bool).tril()
    x = rand(1, 14, 16, seed=5)
    x2 = x.clone()
    # Random per-feature noise: a constant added to every feature of a token would be removed by
    # the pre-LayerNorms, so even the bidirectional model would see no change but float noise.
    x2[:, 6:] += rand(1, 8, 16, seed=6)
    change = (enc(x2, mask=causal_mask)[:, :6] - enc(x, mask=causal_mask)[:, :6]).abs().max().item()
    assert change <= 1e-6, change  # frames before t = 6 never see t >= 6 (masked attention, causal convs)
    bidir = ConformerEncoder(dim=16, depth=2, heads=2, conv_kernel_size=5).eval()
    assert (bidir(x2)[:, :6] - bidir(x)[:, :6]).abs().max().item() > 1e-2  # the same change reaches them here


def test_training_backward_and_bad_norm():
    enc = ConformerEncoder(dim=8, depth=1, heads=2, conv_kernel_size=3, dropout=0.1).train()
    enc(rand(2, 6, 8, seed=6)).square().mean().backward()
    assert all(p.grad is not None for p in enc.parameters())
    with pytest.raises(ValueError, match="conv_norm"):
        ConformerEncoder(dim=8, depth=1, heads=2, conv_norm="group")
