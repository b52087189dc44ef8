"""sigplex.core.ops.attention: SDPA entry, reference path, switch, and MultiHeadAttention."""
import os
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from sigplex.core.ops.attention import (
    MultiHeadAttention,
    attention,
    attention_reference,
    combine_bias_and_mask,
    fused_attention,
    fused_attention_enabled,
    set_fused_attention,
)

TOL = dict(atol=1e-5, rtol=1e-5)


def naive_attention(q, k, v, bias=None, mask=None, scale=None):
    """Softmax attention in float64 with explicit exp/sum; fully masked rows -> 0."""
    q, k, v = q.double(), k.double(), v.double()
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    s = torch.einsum("...qd,...kd->...qk", q, k) * scale
    if bias is not None:
        s = s + bias.double()
    allowed = torch.ones_like(s, dtype=torch.bool)
    if mask is not None:
        if mask.dtype == torch.bool:
            allowed = allowed & mask
        else:
            s = s + mask.double()
    s = s.masked_fill(~allowed, -1e300)
    w = torch.exp(s - s.amax(-1, keepdim=True)) * allowed
    denom = w.sum(-1, keepdim=True)
    w = torch.where(denom > 0, w / denom.clamp_min(1e-300), torch.zeros_like(w))
    return torch.einsum("...qk,...kd->...qd", w, v)


def rand(*shape, dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=dtype)


@pytest.fixture(params=[True, False], ids=["fused", "reference"])
def path(request):
    with fused_attention(request.param):
        yield request.param


def test_switch_and_context_manager_restore():
    before = fused_attention_enabled()
    with fused_attention(not before):
        assert fused_attention_enabled() is (not before)
        with fused_attention(before):
            assert fused_attention_enabled() is before
        assert fused_attention_enabled() is (not before)
    assert fused_attention_enabled() is before
    set_fused_attention(False)
    try:
        assert not fused_attention_enabled()
    finally:
        set_fused_attention(before)


def test_env_var_selects_reference_path():
    code = "from sigplex.core.ops import fused_attention_enabled as f; print(f())"
    env = dict(os.environ, SIGPLEX_FUSED_ATTN="0")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("case", ["plain", "bool_mask", "float_mask", "bias", "bias_and_bool_mask",
                                  "bias_and_float_mask", "scale", "cross_lengths"])
def test_attention_matches_naive(path, case):
    b, h, lq, lk, d = 2, 3, 5, 7, 8
    if case != "cross_lengths":
        lk = lq
    q, k, v = rand(b, h, lq, d, seed=1), rand(b, h, lk, d, seed=2), rand(b, h, lk, 6, seed=3)
    bias = mask = scale = None
    bool_mask = rand(lq, lk, seed=4) > -0.5  # broadcast [Lq, Lk]
    bool_mask[:, 0] = True  # no fully masked row here
    if case in ("bool_mask", "bias_and_bool_mask"):
        mask = bool_mask
    if case in ("float_mask", "bias_and_float_mask"):
        mask = rand(b, 1, lq, lk, seed=5)
    if case.startswith("bias"):
        bias = rand(h, lq, lk, seed=6)
    if case == "scale":
        scale = 0.05
    out = attention(q, k, v, bias=bias, mask=mask, scale=scale)
    assert out.shape == (b, h, lq, 6)
    torch.testing.assert_close(out.double(), naive_attention(q, k, v, bias, mask, scale), **TOL)


def test_scale_changes_result():
    q, k, v = rand(1, 2, 6, 4, seed=1), rand(1, 2, 6, 4, seed=2), rand(1, 2, 6, 4, seed=3)
    assert not torch.allclose(attention(q, k, v), attention(q, k, v, scale=0.1))


def test_fused_equals_reference_path():
    q, k, v = rand(2, 4, 9, 16, seed=1), rand(2, 4, 9, 16, seed=2), rand(2, 4, 9, 16, seed=3)
    bias, mask = rand(4, 9, 9, seed=4), rand(9, 9, seed=5) > -1.0
    with fused_attention(True):
        fused = attention(q, k, v, bias=bias, mask=mask, scale=0.3)
    with fused_attention(False):
        ref = attention(q, k, v, bias=bias, mask=mask, scale=0.3)
    torch.testing.assert_close(fused, ref, **TOL)


def test_combine_bias_and_mask():
    bias = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    mask = torch.tensor([True, False])
    out = combine_bias_and_mask(bias, mask, torch.float32)
    assert out.tolist() == [[1.0, float("-inf")], [3.0, float("-inf")]]
    assert combine_bias_and_mask(None, None, torch.float32) is None
    assert torch.equal(combine_bias_and_mask(None, mask, torch.float32), torch.tensor([0.0, float("-inf")]))
    assert torch.equal(combine_bias_and_mask(bias, bias, torch.float32), 2 * bias)


@pytest.mark.parametrize("with_bias", [False, True])
def test_fully_masked_rows_give_zeros_and_finite_grads(path, with_bias):
    q = rand(2, 2, 4, 8, seed=1).requires_grad_()
    k = rand(2, 2, 5, 8, seed=2).requires_grad_()
    v = rand(2, 2, 5, 3, seed=3).requires_grad_()
    mask = torch.ones(4, 5, dtype=torch.bool)
    mask[1] = False  # query row 1 may attend to nothing
    mask[2, 3:] = False
    bias = rand(2, 1, 4, 5, seed=4) if with_bias else None
    out = attention(q, k, v, bias=bias, mask=mask)
    assert torch.isfinite(out).all()
    assert torch.equal(out[:, :, 1], torch.zeros_like(out[:, :, 1]))
    torch.testing.assert_close(out.double(), naive_attention(q, k, v, bias, mask), **TOL)
    out.square().sum().backward()
    for t in (q, k, v):
        assert torch.isfinite(t.grad).all()
    assert torch.equal(q.grad[:, :, 1], torch.zeros_like(q.grad[:, :, 1]))


def test_dropout_is_applied_when_asked(path):
    q, k, v = rand(1, 2, 16, 8, seed=1), rand(1, 2, 16, 8, seed=2), rand(1, 2, 16, 8, seed=3)
    clean = attention(q, k, v)
    torch.manual_seed(0)
    dropped = attention(q, k, v, dropout_p=0.5)
    assert not torch.allclose(clean, dropped)
    torch.testing.assert_close(attention(q, k, v, dropout_p=0.0), clean)


@pytest.mark.parametrize("fused", [True, False])
def test_gradcheck_float64(fused):
    q, k, v = (rand(1, 2, 4, 3, dtype=torch.float64, seed=s).requires_grad_() for s in (1, 2, 3))
    bias = rand(2, 4, 4, dtype=torch.float64, seed=4).requires_grad_()
    mask = torch.tensor([[True, True, False, True]]).expand(4, 4)
    with fused_attention(fused):
        assert torch.autograd.gradcheck(
            lambda q, k, v, b: attention(q, k, v, bias=b, mask=mask, scale=0.7), (q, k, v, bias)
        )


def test_reference_gradients_match_fused():
    inputs = [rand(2, 2, 6, 4, seed=s) for s in (1, 2, 3)]
    grads = []
    for fused in (True, False):
        q, k, v = (t.clone().requires_grad_() for t in inputs)
        with fused_attention(fused):
            attention(q, k, v, mask=torch.ones(6, 6, dtype=torch.bool).tril()).pow(2).sum().backward()
        grads.append((q.grad, k.grad, v.grad))
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, **TOL)


def test_bf16_within_stated_bound(path):
    # bf16 has an 8-bit mantissa: bound 3e-2 absolute + 3e-2 relative against the float64 naive.
    q, k, v = rand(2, 2, 32, 16, seed=1), rand(2, 2, 32, 16, seed=2), rand(2, 2, 32, 16, seed=3)
    bias = rand(2, 32, 32, seed=4)
    out = attention(q.bfloat16(), k.bfloat16(), v.bfloat16(), bias=bias.bfloat16())
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.double(), naive_attention(q, k, v, bias), atol=3e-2, rtol=3e-2)


def test_reference_path_accepts_bool_mask_directly():
    q, k, v = rand(1, 1, 4, 4, seed=1), rand(1, 1, 4, 4, seed=2), rand(1, 1, 4, 4, seed=3)
    mask = torch.ones(4, 4, dtype=torch.bool).tril()
    torch.testing.assert_close(attention_reference(q, k, v, mask).double(), naive_attention(q, k, v, mask=mask), **TOL)


# --------------------------------------------------------------------------- MultiHeadAttention


def torch_pair(embed=24, heads=4, bias=True, seed=0):
    torch.manual_seed(seed)
    ref = torch.nn.MultiheadAttention(embed, heads, bias=bias, batch_first=True).eval()
    with torch.no_grad():  # non-zero biases so that copying them is tested
        for p in ref.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return ref, MultiHeadAttention.from_torch(ref).eval()


@pytest.mark.parametrize("bias", [True, False])
def test_mha_equals_torch_multihead_attention(path, bias):
    ref, ours = torch_pair(bias=bias)
    assert ours.qkv.weight.shape == (72, 24) and ours.proj.weight.shape == (24, 24)
    x = rand(3, 11, 24, seed=1)
    expected = ref(x, x, x, need_weights=False)[0]
    torch.testing.assert_close(ours(x), expected, **TOL)


@pytest.mark.filterwarnings("ignore:Support for mismatched key_padding_mask")
def test_mha_masks_equal_torch(path):
    ref, ours = torch_pair()
    x = rand(2, 9, 24, seed=1)
    kpm = torch.zeros(2, 9, dtype=torch.bool)
    kpm[0, 6:] = True  # padding in sample 0
    causal_allowed = torch.ones(9, 9, dtype=torch.bool).tril()
    float_mask = rand(9, 9, seed=2)
    # torch's boolean attn_mask marks *disallowed* positions; ours marks allowed ones.
    expected = ref(x, x, x, key_padding_mask=kpm, attn_mask=~causal_allowed, need_weights=False)[0]
    torch.testing.assert_close(ours(x, mask=causal_allowed, key_padding_mask=kpm), expected, **TOL)
    expected = ref(x, x, x, key_padding_mask=kpm, attn_mask=float_mask, need_weights=False)[0]
    torch.testing.assert_close(ours(x, mask=float_mask, key_padding_mask=kpm), expected, **TOL)
    # bias is additive like a float mask
    torch.testing.assert_close(ours(x, bias=float_mask, key_padding_mask=kpm), expected, **TOL)
    expected = ref(x, x, x, key_padding_mask=kpm, need_weights=False)[0]
    torch.testing.assert_close(ours(x, key_padding_mask=kpm), expected, **TOL)


def test_mha_cross_attention_equals_torch(path):
    ref, ours = torch_pair()
    x, ctx = rand(2, 5, 24, seed=1), rand(2, 8, 24, seed=2)
    torch.testing.assert_close(ours(x, context=ctx), ref(x, ctx, ctx, need_weights=False)[0], **TOL)


def test_mha_backward_equals_torch():
    ref, ours = torch_pair()
    x = rand(2, 7, 24, seed=1)
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    ref(x1, x1, x1, need_weights=False)[0].pow(2).sum().backward()
    ours(x2).pow(2).sum().backward()
    torch.testing.assert_close(x2.grad, x1.grad, **TOL)
    torch.testing.assert_close(ours.qkv.weight.grad, ref.in_proj_weight.grad, **TOL)
    torch.testing.assert_close(ours.qkv.bias.grad, ref.in_proj_bias.grad, **TOL)
    torch.testing.assert_close(ours.proj.weight.grad, ref.out_proj.weight.grad, **TOL)


def test_mha_scale_override_matches_naive():
    torch.manual_seed(0)
    mha = MultiHeadAttention(40, num_heads=10, scale=40 ** -0.5).eval()
    x = rand(2, 6, 40, seed=1)
    q, k, v = mha.qkv(x).view(2, 6, 3, 10, 4).permute(2, 0, 3, 1, 4)
    o = naive_attention(q, k, v, scale=40 ** -0.5).float().transpose(1, 2).reshape(2, 6, 40)
    torch.testing.assert_close(mha(x), mha.proj(o), **TOL)
    default = MultiHeadAttention(40, num_heads=10).eval()
    default.load_state_dict(mha.state_dict())
    assert not torch.allclose(default(x), mha(x))


def test_mha_dropout_only_in_training():
    torch.manual_seed(0)
    mha = MultiHeadAttention(16, 2, dropout=0.5)
    x = rand(1, 12, 16, seed=1)
    mha.eval()
    torch.testing.assert_close(mha(x), mha(x))
    mha.train()
    torch.manual_seed(1)
    a = mha(x)
    mha.eval()
    assert not torch.allclose(a, mha(x))


def test_mha_gradcheck_float64():
    torch.manual_seed(0)
    mha = MultiHeadAttention(6, 2).double()
    x = rand(1, 3, 6, dtype=torch.float64, seed=1).requires_grad_()
    assert torch.autograd.gradcheck(lambda t: mha(t, key_padding_mask=torch.tensor([[False, False, True]])), (x,))


def test_mha_rejects_indivisible_heads():
    with pytest.raises(ValueError, match="divisible"):
        MultiHeadAttention(10, 3)


def _spy(monkeypatch, owner, name):
    """Count the calls of ``owner.name`` (still calling through); the list of calls."""
    calls = []
    real = getattr(owner, name)

    def spy(*a, **kw):
        calls.append(1)
        return real(*a, **kw)

    monkeypatch.setattr(owner, name, spy)
    return calls


def test_sdpa_is_the_fused_path(monkeypatch):
    calls = _spy(monkeypatch, F, "scaled_dot_product_attention")
    q = rand(1, 1, 3, 4)
    with fused_attention(True):
        attention(q, q, q)
    with fused_attention(False):
        attention(q, q, q)
    assert len(calls) == 1


def test_lower_rank_bias_reaches_sdpa_with_the_query_rank(monkeypatch):
    """A [H, L, S] or [L, S] bias goes to SDPA as [1, H, L, S] / [1, 1, L, S]: the CPU flash kernel
    refuses a mask of lower rank than q and would fall back to the slower math path."""
    ranks = []
    real = F.scaled_dot_product_attention

    def spy(q, k, v, attn_mask=None, **kw):
        ranks.append(attn_mask.dim())
        return real(q, k, v, attn_mask=attn_mask, **kw)

    monkeypatch.setattr(F, "scaled_dot_product_attention", spy)
    q, k, v = rand(2, 3, 5, 4), rand(2, 3, 6, 4), rand(2, 3, 6, 4)
    for bias in (rand(3, 5, 6), rand(5, 6)):
        with fused_attention(True):
            got = attention(q, k, v, bias=bias)
        with fused_attention(False):
            ref = attention(q, k, v, bias=bias)
        torch.testing.assert_close(got, ref, atol=1e-5, rtol=1e-5)
    assert ranks == [4, 4]


@pytest.mark.parametrize("bias, scale", [(True, None), (False, None), (True, 40 ** -0.5)])
def test_mha_small_shape_inference_takes_the_native_kernel_and_equals_sdpa(monkeypatch, bias, scale):
    """No-grad inference at small shapes goes to torch's fused MHA kernel, with the same result as the SDPA path
    (a custom scale is folded into q's projection); the EEG-conformer shape, B4 T63 E40 H10."""
    calls = _spy(monkeypatch, torch, "_native_multi_head_attention")
    torch.manual_seed(0)
    mha = MultiHeadAttention(40, num_heads=10, bias=bias, scale=scale).eval()
    with torch.no_grad():
        for p in mha.parameters():
            p.add_(0.1 * torch.randn_like(p))
    x = rand(4, 63, 40, seed=1)
    with torch.no_grad():
        native = mha(x)
        assert calls == [1]
        with fused_attention(False):  # the reference math, as SDPA's path would compute it
            reference = mha(x)
    assert calls == [1]
    torch.testing.assert_close(native, reference, **TOL)
    if scale is None:
        ref = torch.nn.MultiheadAttention(40, 10, bias=bias, batch_first=True).eval()
        with torch.no_grad():
            ref.in_proj_weight.copy_(mha.qkv.weight)
            ref.out_proj.weight.copy_(mha.proj.weight)
            if bias:
                ref.in_proj_bias.copy_(mha.qkv.bias)
                ref.out_proj.bias.copy_(mha.proj.bias)
            torch.testing.assert_close(native, ref(x, x, x, need_weights=False)[0], **TOL)


def test_mha_native_kernel_is_not_used_where_it_would_change_the_result(monkeypatch):
    """Grad, masks, cross-attention, long sequences, hooks (adapters) and tracing keep the SDPA path."""
    import importlib

    A = importlib.import_module("sigplex.core.ops.attention")
    calls = _spy(monkeypatch, torch, "_native_multi_head_attention")
    torch.manual_seed(0)
    mha = MultiHeadAttention(16, 2).eval()
    x = rand(2, 9, 16, seed=1)
    mha(x)  # grad enabled and parameters require grad: autograd must see the ops
    with torch.no_grad():
        mha(x, key_padding_mask=torch.zeros(2, 9, dtype=torch.bool))
        mha(x, context=rand(2, 5, 16, seed=2))
        mha(rand(1, A.NATIVE_MAX_TOKENS_X_HEADS // 2 + 1, 16, seed=3))
        handle = mha.qkv.register_forward_hook(lambda m, i, o: o + 1)
        hooked = mha(x)
        handle.remove()
        assert not torch.allclose(hooked, mha(x))  # the hook's change is in the output
        torch.jit.trace(mha, (x,), check_trace=False)
    assert calls == [1]  # only the plain mha(x) after the hook was removed
