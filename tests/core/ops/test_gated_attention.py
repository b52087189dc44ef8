"""sigplex.core.ops.gated_attention (+ rotary): FLASH / MossFormer joint local+global attention kernel."""
import pytest
import torch
from attention_reference import naive_mixed, naive_rotary

from sigplex.core.ops.gated_attention import mixed_chunk_attention
from sigplex.core.ops.rotary import RotaryEmbedding, apply_rotary, rotary_angles

TOL = dict(atol=1e-5, rtol=1e-5)


def rand(*shape, dtype=torch.float32, seed=0, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=dtype) * scale


def inputs(b, n, s, e, dtype=torch.float32, seed=0):
    return [rand(b, n, s, dtype=dtype, seed=seed + i, scale=0.7) for i in range(4)] + [
        rand(b, n, e, dtype=dtype, seed=seed + 4)
    ]


@pytest.mark.parametrize("causal", [False, True], ids=["bidirectional", "causal"])
@pytest.mark.parametrize("n", [32, 37, 5], ids=["multiple", "odd_padded", "shorter_than_chunk"])
def test_mixed_chunk_matches_naive(causal, n):
    args = inputs(3, n, 12, 10, seed=n)
    out = mixed_chunk_attention(*args, group_size=8, causal=causal)
    assert out.shape == (3, n, 10)
    torch.testing.assert_close(out.double(), naive_mixed(*args, 8, causal), **TOL)


@pytest.mark.parametrize("causal", [False, True])
def test_mixed_chunk_key_mask(causal):
    args = inputs(2, 21, 6, 4, seed=3)
    mask = torch.ones(2, 21, dtype=torch.bool)
    mask[0, 15:] = False
    mask[1, 3] = False
    out = mixed_chunk_attention(*args, group_size=4, causal=causal, mask=mask)
    torch.testing.assert_close(out.double(), naive_mixed(*args, 4, causal, mask), **TOL)
    # masked keys/values can be anything: valid outputs do not change
    changed = [t.clone() for t in args]
    for t in (changed[1], changed[3], changed[4]):
        t[~mask] = 100.0
    out2 = mixed_chunk_attention(*changed, group_size=4, causal=causal, mask=mask)
    torch.testing.assert_close(out2[mask], out[mask], **TOL)


def test_leading_dims_are_batched():
    args = [t.view(2, 3, 19, -1) for t in inputs(6, 19, 4, 5, seed=7)]
    out = mixed_chunk_attention(*args, group_size=4)
    flat = mixed_chunk_attention(*[t.reshape(6, 19, -1) for t in args], group_size=4)
    torch.testing.assert_close(out.reshape(6, 19, 5), flat, **TOL)


@pytest.mark.parametrize("chunks_per_block", [1, 2, 4])
def test_inference_blocks_equal_the_training_path(monkeypatch, chunks_per_block):
    """Without grad the non-causal output is built in blocks of chunks: same numbers as the
    autograd path and the naive reference, with blocks that do not divide the chunks and
    several batch rows (each block adds its own row's global term)."""
    from sigplex.core.ops import gated_attention

    c, e = 4, 6
    monkeypatch.setattr(gated_attention, "BLOCK_BYTES", chunks_per_block * c * e * 8)  # float64
    calls = []
    blocked = gated_attention._blocked_global_local
    monkeypatch.setattr(gated_attention, "_blocked_global_local", lambda *a: calls.append(1) or blocked(*a))
    args = [t.view(2, 3, 23, -1) for t in inputs(6, 23, 5, e, dtype=torch.float64, seed=5)]  # 6 chunks, padded
    with torch.no_grad():
        fast = mixed_chunk_attention(*args, group_size=c)
    assert calls == [1]
    trained = mixed_chunk_attention(*[t.clone().requires_grad_() for t in args], group_size=c)
    assert calls == [1]  # the autograd path does not block
    torch.testing.assert_close(fast, trained.detach(), atol=1e-12, rtol=1e-12)
    flat = [t.reshape(6, 23, -1) for t in args]
    torch.testing.assert_close(fast.reshape(6, 23, e), naive_mixed(*flat, c, False), atol=1e-12, rtol=1e-12)
    traced = torch.jit.trace(lambda *a: mixed_chunk_attention(*a, group_size=c), tuple(args), check_trace=False)
    assert calls == [1]  # nor is a trace recorded with it (its graph would depend on the length)
    torch.testing.assert_close(traced(*args), fast, atol=1e-12, rtol=1e-12)


@pytest.mark.parametrize("causal", [False, True])
def test_mixed_chunk_gradcheck(causal):
    args = [t.requires_grad_() for t in inputs(2, 7, 3, 2, dtype=torch.float64, seed=11)]
    mask = torch.tensor([[True] * 7, [True] * 5 + [False] * 2])
    assert torch.autograd.gradcheck(
        lambda *a: mixed_chunk_attention(*a, group_size=3, causal=causal, mask=mask), tuple(args)
    )


def test_causal_output_ignores_the_future():
    args = inputs(2, 40, 8, 6, seed=5)
    t0 = 13
    out = mixed_chunk_attention(*args, group_size=8, causal=True)
    perturbed = [t.clone() for t in args]
    for t in perturbed:
        t[:, t0:] += rand(*t[:, t0:].shape, seed=99)
    out2 = mixed_chunk_attention(*perturbed, group_size=8, causal=True)
    torch.testing.assert_close(out2[:, :t0], out[:, :t0], atol=0, rtol=0)
    assert not torch.allclose(out2[:, t0:], out[:, t0:])
    # the bidirectional variant does look ahead (so this test can tell them apart)
    nc, nc2 = (mixed_chunk_attention(*a, group_size=8) for a in (args, perturbed))
    assert not torch.allclose(nc[:, :t0], nc2[:, :t0])


def test_global_part_crosses_chunks():
    args = inputs(1, 24, 4, 3, seed=2)
    out = mixed_chunk_attention(*args, group_size=8)
    changed = [t.clone() for t in args]
    changed[3][:, -1] += 1.0  # last lin_k, two chunks away from token 0
    changed[4][:, -1] += 1.0
    assert not torch.allclose(mixed_chunk_attention(*changed, group_size=8)[:, 0], out[:, 0])


def test_mixed_chunk_bf16_within_stated_bound():
    # bf16 (8-bit mantissa): bound 5e-2 absolute + 5e-2 relative against float64 naive.
    args = inputs(2, 50, 16, 8, seed=1)
    out = mixed_chunk_attention(*[t.bfloat16() for t in args], group_size=16)
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.double(), naive_mixed(*args, 16), atol=5e-2, rtol=5e-2)


def test_dropout_on_local_matrix():
    args = inputs(1, 16, 4, 4, seed=1)
    torch.manual_seed(0)
    a = mixed_chunk_attention(*args, group_size=8, dropout_p=0.5)
    assert not torch.allclose(a, mixed_chunk_attention(*args, group_size=8))


# --------------------------------------------------------------------------- rotary


def test_rotary_matches_complex_rotation():
    x = rand(2, 3, 17, 12, seed=1)
    rope = RotaryEmbedding(8)
    torch.testing.assert_close(rope(x).double(), naive_rotary(x, 8), **TOL)
    torch.testing.assert_close(rope(x, offset=5).double(), naive_rotary(x, 8, offset=5), **TOL)
    assert torch.equal(rope(x)[..., 8:], x[..., 8:])  # pass-through channels


def test_rotary_half_layout_is_a_permutation_of_interleaved():
    x = rand(2, 9, 8, seed=2)
    perm = torch.tensor([0, 2, 4, 6, 1, 3, 5, 7])  # interleaved pairs -> halves
    inter = RotaryEmbedding(8)(x)
    half = RotaryEmbedding(8, interleaved=False)(x[..., perm])
    torch.testing.assert_close(half, inter[..., perm], **TOL)


def test_rotary_scores_depend_only_on_relative_position():
    rope = RotaryEmbedding(16)
    q, k = rand(1, 16, seed=1), rand(1, 16, seed=2)
    seq_q, seq_k = q.expand(30, 16), k.expand(30, 16)
    s = rope(seq_q) @ rope(seq_k).T  # [30, 30]
    torch.testing.assert_close(s[3, 1], s[20, 18], **TOL)
    torch.testing.assert_close(s[10, 10], (q @ k.T)[0, 0], **TOL)
    assert not torch.allclose(s[3, 1], s[3, 2])


def test_rotary_offset_equals_slice_of_longer_sequence():
    x = rand(1, 20, 8, seed=3)
    rope = RotaryEmbedding(8)
    torch.testing.assert_close(rope(x[:, 12:], offset=12), rope(x)[:, 12:], **TOL)
    ang = rotary_angles(20, 8)
    torch.testing.assert_close(apply_rotary(x, ang.cos(), ang.sin()), rope(x), **TOL)


def test_rotary_rejects_bad_dims():
    with pytest.raises(ValueError):
        RotaryEmbedding(7)
    with pytest.raises(ValueError, match="fewer"):
        RotaryEmbedding(8)(torch.randn(2, 3, 4))
