"""sigplex.core.ops.linear_attention: kernelized linear attention, bidirectional and causal."""
import pytest
import torch
import torch.nn.functional as F

from sigplex.core.ops.linear_attention import elu_feature_map, linear_attention, relu_feature_map

TOL = dict(atol=1e-5, rtol=1e-5)


def rand(*shape, dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=dtype)


def naive_linear(q, k, v, phi=lambda x: F.elu(x) + 1, causal=False, mask=None, eps=1e-6):
    """Token-by-token definition in float64: out_t = Σ_s w_ts v_s / (Σ_s w_ts + eps), w = φ(q_t)·φ(k_s)."""
    q, k, v = q.double(), k.double(), v.double()
    fq, fk = (phi(q), phi(k)) if phi is not None else (q, k)
    w = torch.einsum("bhtd,bhsd->bhts", fq, fk)
    n = q.shape[-2]
    allowed = torch.ones(n, n, dtype=torch.bool)
    if causal:
        allowed = allowed.tril()
    w = w * allowed
    if mask is not None:
        w = w * mask[:, None, None, :]
    return torch.einsum("bhts,bhsm->bhtm", w, v) / (w.sum(-1, keepdim=True) + eps)


def qkv(b=2, h=3, n=23, d=8, m=5, dtype=torch.float32, seed=0):
    return rand(b, h, n, d, dtype=dtype, seed=seed), rand(b, h, n, d, dtype=dtype, seed=seed + 1), \
        rand(b, h, n, m, dtype=dtype, seed=seed + 2)


@pytest.mark.parametrize("causal", [False, True], ids=["bidirectional", "causal"])
@pytest.mark.parametrize("n,chunk", [(23, 8), (32, 8), (5, 64), (17, 1)])
def test_matches_naive(causal, n, chunk):
    q, k, v = qkv(n=n, seed=n)
    out = linear_attention(q, k, v, causal=causal, chunk_size=chunk)
    assert out.shape == (2, 3, n, 5)
    torch.testing.assert_close(out.double(), naive_linear(q, k, v, causal=causal), **TOL)


@pytest.mark.parametrize("causal", [False, True])
def test_key_mask(causal):
    q, k, v = qkv(n=19, seed=3)
    mask = torch.ones(2, 19, dtype=torch.bool)
    mask[0, 12:] = False
    mask[1, 0] = False
    out = linear_attention(q, k, v, causal=causal, mask=mask, chunk_size=4)
    torch.testing.assert_close(out.double(), naive_linear(q, k, v, causal=causal, mask=mask), **TOL)


@pytest.mark.parametrize("causal", [False, True])
def test_pluggable_feature_maps(causal):
    q, k, v = qkv(n=13, seed=4)
    for phi in (relu_feature_map, torch.exp, lambda x: F.softplus(x)):
        out = linear_attention(q, k, v, feature_map=phi, causal=causal, chunk_size=4)
        torch.testing.assert_close(out.double(), naive_linear(q, k, v, phi=phi, causal=causal), **TOL)
    pos_q, pos_k = q.abs() + 0.1, k.abs() + 0.1
    out = linear_attention(pos_q, pos_k, v, feature_map=None, causal=causal)
    torch.testing.assert_close(out.double(), naive_linear(pos_q, pos_k, v, phi=None, causal=causal), **TOL)
    torch.testing.assert_close(elu_feature_map(q), F.elu(q) + 1)


def test_chunk_size_does_not_change_the_result():
    q, k, v = qkv(n=30, seed=5)
    outs = [linear_attention(q, k, v, causal=True, chunk_size=c) for c in (1, 4, 7, 30, 100)]
    for o in outs[1:]:
        torch.testing.assert_close(o, outs[0], **TOL)


def test_causal_output_ignores_the_future():
    q, k, v = qkv(n=25, seed=6)
    t0 = 9
    out = linear_attention(q, k, v, causal=True, chunk_size=4)
    q2, k2, v2 = (t.clone() for t in (q, k, v))
    for t in (q2, k2, v2):
        t[:, :, t0:] += 1.0
    out2 = linear_attention(q2, k2, v2, causal=True, chunk_size=4)
    torch.testing.assert_close(out2[:, :, :t0], out[:, :, :t0], atol=0, rtol=0)
    assert not torch.allclose(out2[:, :, t0:], out[:, :, t0:])
    nc = linear_attention(q, k, v)
    nc2 = linear_attention(q2, k2, v2)
    assert not torch.allclose(nc[:, :, :t0], nc2[:, :, :t0])


@pytest.mark.parametrize("causal", [False, True])
def test_gradcheck_float64(causal):
    q, k, v = (t.requires_grad_() for t in qkv(1, 2, 7, 3, 2, dtype=torch.float64, seed=7))
    mask = torch.tensor([[True] * 6 + [False]])
    assert torch.autograd.gradcheck(
        lambda q, k, v: linear_attention(q, k, v, causal=causal, mask=mask, chunk_size=3), (q, k, v)
    )


def test_bf16_within_stated_bound():
    # bf16 (8-bit mantissa): bound 3e-2 absolute + 3e-2 relative against float64 naive.
    q, k, v = qkv(n=40, seed=8)
    for causal in (False, True):
        out = linear_attention(q.bfloat16(), k.bfloat16(), v.bfloat16(), causal=causal, chunk_size=16)
        assert out.dtype == torch.bfloat16
        torch.testing.assert_close(out.double(), naive_linear(q, k, v, causal=causal), atol=3e-2, rtol=3e-2)
