"""sigplex.core.ops fft_conv, s4d, linear_scan and selective_scan against their naive definitions in float64."""
import importlib

import pytest
import torch
import torch.nn.functional as F
from mixer_reference import grads, naive_s4d, naive_selective_scan, rel_err

from sigplex.core.ops.fft_conv import fft_conv, fft_size
from sigplex.core.ops.s4d import s4d, s4d_kernel
from sigplex.core.ops.scan import linear_scan
from sigplex.core.ops.selective_scan import selective_scan, selective_scan_step

selective_scan_module = importlib.import_module("sigplex.core.ops.selective_scan")  # the package shadows the name
scan_module = importlib.import_module("sigplex.core.ops.scan")
EXACT = 1e-6  # relative, float64, forward and backward
LENGTHS = [1, 7, 33, 100]


def rand(*shape, seed=0, dtype=torch.float64):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def test_fft_size_is_smooth_and_minimal():
    for n in (1, 2, 7, 97, 1000, 4097, 65535):
        m = fft_size(n)
        assert m >= n and all(fft_size(j) >= j for j in range(max(1, m - 3), m))
        r = m
        for p in (2, 3, 5):
            while r % p == 0:
                r //= p
        assert r == 1 and not any(fft_size(n) > j >= n and _smooth(j) for j in range(n, m))


def _smooth(j):
    for p in (2, 3, 5):
        while j % p == 0:
            j //= p
    return j == 1


@pytest.mark.parametrize("length", LENGTHS)
@pytest.mark.parametrize("taps", [1, 4, 50, 160])
def test_fft_conv_equals_conv1d(length, taps):
    x, k = rand(2, 3, length, seed=length), rand(3, taps, seed=taps)
    causal_ref = lambda x, k: F.conv1d(F.pad(x, (k.shape[-1] - 1, 0)), k.flip(-1)[:, None], groups=3)
    centred_ref = lambda x, k: F.conv1d(x, k.flip(-1)[:, None], padding="same", groups=3)
    for causal, ref in ((True, causal_ref), (False, centred_ref)):
        fft = lambda x, k, causal=causal: fft_conv(x, k, causal=causal, direct=False)
        assert rel_err(fft(x, k), ref(x, k)) < EXACT
        assert rel_err(fft_conv(x, k, causal=causal), ref(x, k)) < EXACT  # the default path (direct when short)
        for got, expected in zip(grads(fft, x, k), grads(ref, x, k)):
            assert rel_err(got, expected) < EXACT


def test_fft_conv_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match=r"x \[B, C, L\] and k \[C, K\]"):
        fft_conv(torch.randn(1, 3, 10), torch.randn(4, 5))


def s4d_params(h=3, n=5, seed=0):
    log_dt = torch.log(0.01 + 0.2 * torch.rand(h, generator=torch.Generator().manual_seed(seed), dtype=torch.float64))
    return log_dt, rand(h, n, seed=seed + 1) * 0.5, rand(h, n, seed=seed + 2) * 3, rand(h, n, 2, seed=seed + 3), \
        rand(h, seed=seed + 4)


@pytest.mark.parametrize("length", LENGTHS)
def test_s4d_equals_its_recurrence(length):
    params = s4d_params(seed=length)
    u = rand(2, 3, length, seed=length)
    assert rel_err(s4d(u, *params), naive_s4d(u, *params)) < EXACT
    for got, expected in zip(grads(s4d, u, *params), grads(naive_s4d, u, *params)):
        assert rel_err(got, expected) < EXACT


def test_s4d_kernel_float32_is_close_and_long_kernels_stay_finite():
    params = [p.float() for p in s4d_params(h=4, n=8)[:4]]
    k64 = s4d_kernel(*[p.double() for p in params], length=300)
    torch.testing.assert_close(s4d_kernel(*params, length=300).double(), k64, atol=1e-5, rtol=1e-4)
    assert torch.isfinite(s4d_kernel(*params, length=20000)).all()


def test_s4d_rejects_bad_shapes():
    log_dt, lar, ai, c, d = s4d_params()
    with pytest.raises(ValueError, match=r"c \[H, N, 2\]"):
        s4d(rand(1, 3, 9), log_dt, lar, ai, c[..., 0], d)


@pytest.mark.parametrize("length,chunk", [(1, 4), (7, 4), (33, 5), (100, 16), (100, 3)])
def test_linear_scan_equals_the_loop(length, chunk):
    a, b, h0 = torch.rand(2, length, 3, dtype=torch.float64), rand(2, length, 3, seed=1), rand(2, 3, seed=2)

    def loop(a, b, h0):
        h, out = h0, []
        for t in range(a.shape[-2]):
            h = a[:, t] * h + b[:, t]
            out.append(h)
        return torch.stack(out, -2)

    scan = lambda a, b, h0: linear_scan(a, b, h0, chunk_size=chunk)
    assert rel_err(scan(a, b, h0), loop(a, b, h0)) < EXACT
    for got, expected in zip(grads(scan, a, b, h0), grads(loop, a, b, h0)):
        assert rel_err(got, expected) < EXACT


def test_linear_scan_strong_decay_over_long_chunks_stays_finite_in_float32():
    a = torch.full((1, 4096, 2), 1e-30)  # log-decay -69 per step: a cumulative exp would overflow at once
    b = torch.ones(1, 4096, 2)
    h = linear_scan(a, b, chunk_size=1024)
    assert torch.isfinite(h).all() and torch.allclose(h, torch.ones_like(h))


def ssm_inputs(length, batch=2, d=4, n=3, seed=0):
    u, z = rand(batch, d, length, seed=seed), rand(batch, d, length, seed=seed + 1)
    delta = rand(batch, d, length, seed=seed + 2)  # softplus'd inside
    A = -torch.exp(rand(d, n, seed=seed + 3))
    B, C = rand(batch, n, length, seed=seed + 4), rand(batch, n, length, seed=seed + 5)
    D, bias, h0 = rand(d, seed=seed + 6), rand(d, seed=seed + 7), rand(batch, d, n, seed=seed + 8)
    return u, delta, A, B, C, D, z, bias, h0


@pytest.mark.parametrize("path", ["factorised", "doubling"])
@pytest.mark.parametrize("length,chunk,block", [(1, 16, None), (7, 4, None), (33, 5, 2), (100, 16, None), (100, 3, 5)])
def test_selective_scan_equals_the_recurrence(length, chunk, block, path, monkeypatch):
    if path == "doubling":  # the path of blocks whose decay is too strong to factorise
        monkeypatch.setattr(scan_module, "FACTOR_SPAN", -1.0)
    if block:  # several blocks of `block` chunks: the forward's state hand-over and the backward's carry
        monkeypatch.setattr(selective_scan_module, "BLOCK_ELEMENTS", 2 * 4 * 3 * chunk * block)
    u, delta, A, B, C, D, z, bias, h0 = ssm_inputs(length, seed=length)

    def ours(u, delta, A, B, C, D, z, bias, h0):
        y, last = selective_scan(u, delta, A, B, C, D, z, bias, delta_softplus=True, initial_state=h0,
                                 return_last_state=True, chunk_size=chunk)
        return torch.cat((y.flatten(), last.flatten()))

    def ref(*args):
        y, last = naive_selective_scan(*args[:-1], delta_softplus=True, state=args[-1])
        return torch.cat((y.flatten(), last.flatten()))

    args = (u, delta, A, B, C, D, z, bias, h0)
    assert rel_err(ours(*args), ref(*args)) < EXACT
    for got, expected in zip(grads(ours, *args), grads(ref, *args)):
        assert rel_err(got, expected) < EXACT


def test_selective_scan_without_options_and_float32():
    u, delta, A, B, C, *_ = ssm_inputs(40)
    delta = delta.abs()
    expected, _ = naive_selective_scan(u, delta, A, B, C)
    assert rel_err(selective_scan(u, delta, A, B, C), expected) < EXACT
    got32 = selective_scan(u.float(), delta.float(), A.float(), B.float(), C.float())
    torch.testing.assert_close(got32.double(), expected, atol=1e-5, rtol=1e-5)


def test_selective_scan_strong_decay_in_float32_is_finite_and_right():
    u, delta, A, B, C, *_ = ssm_inputs(300, d=2, n=2)
    delta = torch.full_like(delta, 50.0)  # log-decay down to -50·e per step, the states forget at once
    A = -torch.exp(torch.rand(2, 2, dtype=torch.float64))
    expected, _ = naive_selective_scan(u, delta, A, B, C)
    got = selective_scan(u.float(), delta.float(), A.float(), B.float(), C.float(), chunk_size=64)
    assert torch.isfinite(got).all()
    torch.testing.assert_close(got.double(), expected, atol=1e-4, rtol=1e-5)


def test_selective_scan_steps_equal_the_full_pass():
    u, delta, A, B, C, D, z, bias, h0 = ssm_inputs(23)
    full, last = selective_scan(u, delta, A, B, C, D, z, bias, True, initial_state=h0, return_last_state=True)
    # a first segment in one pass, the rest streamed step by step from its state
    y, state = selective_scan(u[..., :9], delta[..., :9], A, B[..., :9], C[..., :9], D, z[..., :9], bias, True,
                              initial_state=h0, return_last_state=True)
    outs = [y]
    for t in range(9, 23):
        y_t, state = selective_scan_step(state, u[..., t], delta[..., t], A, B[..., t], C[..., t], D, z[..., t],
                                         bias, True)
        outs.append(y_t[..., None])
    assert rel_err(torch.cat(outs, -1), full) < EXACT and rel_err(state, last) < EXACT


def test_selective_scan_rejects_bad_shapes():
    u, delta, A, B, C, *_ = ssm_inputs(5)
    with pytest.raises(ValueError, match=r"A \[D, N\]"):
        selective_scan(u, delta, A[:2], B, C)
