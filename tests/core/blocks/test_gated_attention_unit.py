"""sigplex.core.blocks.GatedAttentionUnit: the MossFormer layer against its manual composition."""
import torch
from attention_reference import naive_mixed, naive_rotary

from sigplex.core.blocks import GatedAttentionUnit

TOL = dict(atol=1e-5, rtol=1e-5)


def rand(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def small_gau(**kw):
    torch.manual_seed(0)
    cfg = dict(dim=16, group_size=8, query_key_dim=12, expansion_factor=2.0, rotary_dim=8, dropout=0.0)
    cfg.update(kw)
    gau = GatedAttentionUnit(**cfg).eval()
    with torch.no_grad():  # larger offset/scale than the init so attention matters numerically
        gau.qk_offset_scale.gamma.normal_(std=0.5)
        gau.qk_offset_scale.beta.normal_(std=0.1)
    return gau


def test_gau_matches_manual_composition():
    gau = small_gau()
    x = rand(2, 21, 16, seed=1)
    # token shift of the first half of the channels by one step
    h = torch.cat((torch.nn.functional.pad(x[..., :8], (0, 0, 1, -1)), x[..., 8:]), -1)
    vu = gau.to_hidden(h)
    qk = gau.to_qk(h)
    g, b = gau.qk_offset_scale.gamma, gau.qk_offset_scale.beta
    qq, ql, kq, kl = (naive_rotary(qk * g[i] + b[i], 8).float() for i in range(4))
    att = naive_mixed(qq, kq, ql, kl, vu, 8).float()
    v, u = vu[..., :32], vu[..., 32:]
    att_v, att_u = att[..., :32], att[..., 32:]
    expected = x + gau.to_out((att_u * v) * torch.sigmoid(att_v * u))
    torch.testing.assert_close(gau(x), expected, **TOL)


def test_gau_backward_reaches_every_parameter():
    gau = small_gau().train()
    x = rand(2, 19, 16, seed=2).requires_grad_()
    gau(x).square().mean().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    for name, p in gau.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


def test_gau_causal_module_ignores_the_future():
    x = rand(2, 30, 16, seed=3)
    t0 = 11
    x2 = x.clone()
    x2[:, t0:] += rand(2, 30 - t0, 16, seed=9)  # per-feature noise: no norm can remove it
    causal = small_gau(causal=True)
    change = (causal(x2)[:, :t0] - causal(x)[:, :t0]).abs().max().item()
    assert change <= 1e-6, change  # masked attention, causal convs, token shift forward only
    bidir = small_gau(causal=False)
    assert (bidir(x2)[:, :t0] - bidir(x)[:, :t0]).abs().max().item() > 1e-2


def test_gau_options():
    x = rand(1, 9, 16, seed=4)
    for kw in (dict(shift_tokens=False), dict(rotary_dim=0), dict(norm="layernorm"), dict(rotary_dim=64)):
        assert small_gau(**kw)(x).shape == x.shape
    mask = torch.tensor([[True] * 6 + [False] * 3])
    assert small_gau()(x, mask=mask).shape == x.shape
