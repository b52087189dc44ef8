"""sigplex.core.backbones.transformer: pre-LN encoder equal to torch's norm_first encoder."""
from fnmatch import fnmatch

import pytest
import torch
from torch import nn

from sigplex.core.backbones.transformer import TransformerEncoder, make_activation
from sigplex.core.ops.attention import fused_attention

TOL = dict(atol=1e-5, rtol=1e-5)


def rand(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def torch_peer(ours: TransformerEncoder, activation="gelu"):
    """torch.nn.TransformerEncoder (norm_first, batch_first) holding our weights."""
    dim, heads = ours.dim, ours.heads
    layer = nn.TransformerEncoderLayer(dim, heads, dim_feedforward=ours.blocks[0].mlp.fc1.out_features,
                                       dropout=0.0, activation=activation, batch_first=True, norm_first=True)
    peer = nn.TransformerEncoder(layer, ours.depth, norm=nn.LayerNorm(dim), enable_nested_tensor=False)
    with torch.no_grad():
        for blk, ref in zip(ours.blocks, peer.layers):
            ref.self_attn.in_proj_weight.copy_(blk.attn.qkv.weight)
            ref.self_attn.in_proj_bias.copy_(blk.attn.qkv.bias)
            ref.self_attn.out_proj.weight.copy_(blk.attn.proj.weight)
            ref.self_attn.out_proj.bias.copy_(blk.attn.proj.bias)
            for a, b in ((ref.linear1, blk.mlp.fc1), (ref.linear2, blk.mlp.fc2), (ref.norm1, blk.norm1),
                         (ref.norm2, blk.norm2)):
                a.weight.copy_(b.weight)
                a.bias.copy_(b.bias)
        peer.norm.weight.copy_(ours.norm.weight)
        peer.norm.bias.copy_(ours.norm.bias)
    return peer.eval()


def randomize_norms(model):
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.LayerNorm):
                m.weight.normal_(1.0, 0.2)
                m.bias.normal_(0.0, 0.2)


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("activation", ["gelu", "relu"])
def test_equals_torch_transformer_encoder(fused, activation):
    torch.manual_seed(0)
    ours = TransformerEncoder(dim=32, depth=3, heads=4, mlp_ratio=2, activation=activation).eval()
    randomize_norms(ours)
    peer = torch_peer(ours, activation)
    x = rand(2, 13, 32, seed=1)
    kpm = torch.zeros(2, 13, dtype=torch.bool)
    kpm[1, 9:] = True
    with fused_attention(fused), torch.no_grad():
        torch.testing.assert_close(ours(x), peer(x), **TOL)
        out = ours(x, key_padding_mask=kpm)
    # compare valid positions only (torch's fast path may zero padded rows)
    expected = peer(x, src_key_padding_mask=kpm)
    torch.testing.assert_close(out[~kpm], expected[~kpm], **TOL)


def test_backward_equals_torch():
    torch.manual_seed(0)
    ours = TransformerEncoder(dim=16, depth=2, heads=2).eval()
    peer = torch_peer(ours)
    x = rand(2, 6, 16, seed=2)
    ours(x).square().sum().backward()
    peer(x).square().sum().backward()
    torch.testing.assert_close(ours.blocks[0].attn.qkv.weight.grad, peer.layers[0].self_attn.in_proj_weight.grad, **TOL)
    torch.testing.assert_close(ours.blocks[1].mlp.fc1.weight.grad, peer.layers[1].linear1.weight.grad, **TOL)


def test_adapter_targets_match_modules():
    enc = TransformerEncoder(dim=16, depth=3, heads=2)
    names = dict(enc.named_modules())
    assert set(enc.adapter_targets) == {"lora", "bottleneck", "conv"}
    for kind, globs in enc.adapter_targets.items():
        for glob in globs:
            hits = [n for n in names if fnmatch(n, glob)]
            assert len(hits) == 3, (kind, glob, hits)
    assert all(isinstance(names[f"blocks.{i}.attn.qkv"], nn.Linear) for i in range(3))
    assert names["blocks.0.attn.qkv"].out_features == 48


def test_attn_scale_is_used():
    torch.manual_seed(0)
    a = TransformerEncoder(dim=40, depth=1, heads=10, attn_scale=40 ** -0.5).eval()
    b = TransformerEncoder(dim=40, depth=1, heads=10).eval()
    b.load_state_dict(a.state_dict())
    assert a.blocks[0].attn.scale == 40 ** -0.5
    x = rand(1, 6, 40, seed=3)
    assert not torch.allclose(a(x), b(x))


def test_padding_does_not_leak_into_valid_tokens():
    torch.manual_seed(0)
    enc = TransformerEncoder(dim=16, depth=2, heads=4).eval()
    x = rand(2, 10, 16, seed=4)
    kpm = torch.zeros(2, 10, dtype=torch.bool)
    kpm[:, 7:] = True
    x2 = x.clone()
    x2[:, 7:] = 50.0
    torch.testing.assert_close(enc(x2, key_padding_mask=kpm)[:, :7], enc(x, key_padding_mask=kpm)[:, :7], **TOL)
    assert not torch.allclose(enc(x2)[:, :7], enc(x)[:, :7])


def test_intermediates_and_shapes():
    torch.manual_seed(0)
    enc = TransformerEncoder(dim=16, depth=3, heads=2).eval()
    x = rand(2, 5, 16, seed=5)
    feats = enc.forward_intermediates(x)
    assert len(feats) == 3 and all(f.shape == (2, 5, 16) for f in feats)
    torch.testing.assert_close(enc.norm(feats[-1]), enc(x), **TOL)
    assert isinstance(TransformerEncoder(8, 1, 2, final_norm=False).norm, nn.Identity)


def test_dropout_only_in_training_and_all_params_get_grads():
    torch.manual_seed(0)
    enc = TransformerEncoder(dim=16, depth=2, heads=2, dropout=0.5, attn_dropout=0.5)
    x = rand(2, 8, 16, seed=6)
    enc.train()
    y = enc(x)
    y.square().mean().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in enc.parameters())
    enc.eval()
    torch.testing.assert_close(enc(x), enc(x))
    assert not torch.allclose(y, enc(x))


def test_activations():
    assert isinstance(make_activation("silu"), nn.SiLU)
    assert isinstance(make_activation(nn.Mish), nn.Mish)
    with pytest.raises(ValueError, match="activation"):
        make_activation("bogus")
