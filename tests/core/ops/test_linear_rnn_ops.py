"""sigplex.core.ops gated_linear_attention (GLA) and delta_rule (DeltaNet) against their recurrences in float64."""
import importlib

import pytest
import torch
import torch.nn.functional as F
from mixer_reference import grads, naive_delta_rule, naive_gla, rel_err

from sigplex.core.ops import delta_rule, gated_linear_attention

scan_module = importlib.import_module("sigplex.core.ops.scan")
EXACT = 1e-6  # relative, float64, forward and backward
CASES = [(1, 16), (7, 4), (33, 5), (100, 16), (100, 33)]  # (length, chunk): chunks that do not divide the length


def rand(*shape, seed=0, dtype=torch.float64):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def gla_inputs(n, seed=0):
    q, k, v = rand(2, 2, n, 4, seed=seed), rand(2, 2, n, 4, seed=seed + 1), rand(2, 2, n, 3, seed=seed + 2)
    log_g = F.logsigmoid(rand(2, 2, n, 4, seed=seed + 3) + 2)
    return q, k, v, log_g, rand(2, 2, 4, 3, seed=seed + 4)


def test_gla_strong_decay_in_float32_stays_finite_and_right():
    q, k, v, _, _ = gla_inputs(64)
    log_g = torch.full_like(q, -30.0)  # a chunk's cumulative decay reaches e^-1920: e^{-b} would overflow
    log_g[..., ::7, :] = 0.0
    expected, _ = naive_gla(q, k, v, log_g)
    q, k, v, log_g = (t.float().requires_grad_() for t in (q, k, v, log_g))
    got = gated_linear_attention(q, k, v, log_g, chunk_size=64)
    assert torch.isfinite(got).all()
    torch.testing.assert_close(got.double(), expected, atol=1e-5, rtol=1e-5)
    got.sum().backward()
    assert all(torch.isfinite(t.grad).all() for t in (q, k, v, log_g))


def delta_inputs(n, seed=0):
    q, k, v = rand(2, 2, n, 4, seed=seed), rand(2, 2, n, 4, seed=seed + 1), rand(2, 2, n, 3, seed=seed + 2)
    beta = torch.sigmoid(rand(2, 2, n, seed=seed + 3))
    return q, F.normalize(k, dim=-1), v, beta, rand(2, 2, 4, 3, seed=seed + 4)


MIXERS = {"gla": (gated_linear_attention, naive_gla, gla_inputs), "delta_rule": (delta_rule, naive_delta_rule, delta_inputs)}


@pytest.mark.parametrize("name", list(MIXERS) + ["gla_pairwise"])
@pytest.mark.parametrize("n,chunk", CASES)
def test_equals_its_recurrence(name, n, chunk, monkeypatch):
    if name == "gla_pairwise":  # the path of chunks whose decay is too strong to factorise
        monkeypatch.setattr(scan_module, "FACTOR_SPAN", -1.0)
    op, naive, inputs = MIXERS[name.replace("_pairwise", "")]

    def ours(*args):
        out, last = op(*args[:-1], initial_state=args[-1], output_final_state=True, chunk_size=chunk)
        return torch.cat((out.flatten(), last.flatten()))

    def ref(*args):
        out, last = naive(*args[:-1], state=args[-1])
        return torch.cat((out.flatten(), last.flatten()))

    args = inputs(n, seed=n)
    assert rel_err(ours(*args), ref(*args)) < EXACT
    for got, expected in zip(grads(ours, *args), grads(ref, *args)):
        assert rel_err(got, expected) < EXACT


def test_segments_continue_from_the_final_state():
    q, k, v, log_g, _ = gla_inputs(40)
    full = gated_linear_attention(q, k, v, log_g, chunk_size=8)
    a, s = gated_linear_attention(q[:, :, :15], k[:, :, :15], v[:, :, :15], log_g[:, :, :15], output_final_state=True)
    b = gated_linear_attention(q[:, :, 15:], k[:, :, 15:], v[:, :, 15:], log_g[:, :, 15:], initial_state=s)
    assert rel_err(torch.cat((a, b), 2), full) < EXACT
    q, k, v, beta, _ = delta_inputs(40)
    full = delta_rule(q, k, v, beta, chunk_size=8)
    a, s = delta_rule(q[:, :, :15], k[:, :, :15], v[:, :, :15], beta[:, :, :15], output_final_state=True)
    b = delta_rule(q[:, :, 15:], k[:, :, 15:], v[:, :, 15:], beta[:, :, 15:], initial_state=s)
    assert rel_err(torch.cat((a, b), 2), full) < EXACT


def test_shape_errors_name_the_expected_shapes():
    q, k, v, log_g, _ = gla_inputs(5)
    with pytest.raises(ValueError, match=r"log_g \[B, H, T, K\]"):
        gated_linear_attention(q, k, v, log_g[..., :2])
    q, k, v, beta, _ = delta_inputs(5)
    with pytest.raises(ValueError, match=r"beta \[B, H, T\]"):
        delta_rule(q, k, v, beta[..., None])
