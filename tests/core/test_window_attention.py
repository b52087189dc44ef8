"""Shifted-window attention ops against naive references written here (loops are fine in tests)."""
from __future__ import annotations

import importlib
import itertools
import math

import pytest
import torch

from sigplex.core.ops import (
    WindowAttention,
    fused_attention,
    relative_position_index,
    shifted_window_mask,
    window_partition,
    window_plan,
    window_reverse,
)
from sigplex.core.ops.window import MASK_VALUE, effective_window, pad_to_window

attention_mod = importlib.import_module("sigplex.core.ops.attention")  # the module, not the function

TOL = dict(atol=1e-5, rtol=1e-5)


# ---------------------------------------------------------------- naive references
def naive_partition(x, window):
    """Windows in row-major window order, tokens row-major inside, by explicit loops."""
    b, *spatial, c = x.shape
    counts = [s // w for s, w in zip(spatial, window)]
    out = []
    for bi in range(b):
        for widx in itertools.product(*[range(n) for n in counts]):
            sl = tuple(slice(i * w, (i + 1) * w) for i, w in zip(widx, window))
            out.append(x[(bi,) + sl].reshape(-1, c))
    return torch.stack(out)


def naive_rel_index(window):
    coords = list(itertools.product(*[range(w) for w in window]))
    n = len(coords)
    idx = torch.zeros(n, n, dtype=torch.long)
    for i, a in enumerate(coords):
        for j, bb in enumerate(coords):
            flat = 0
            for d, w in enumerate(window):
                flat = flat * (2 * w - 1) + (a[d] - bb[d] + w - 1)
            idx[i, j] = flat
    return idx


def naive_mask(padded, window, shift):
    """MONAI/Swin recipe: label regions by slices, partition, compare labels."""
    img = torch.zeros(1, *padded, 1)
    cnt = 0
    slices = [[slice(0, -w), slice(-w, -s), slice(-s, None)] for w, s in zip(window, shift)]
    for sl in itertools.product(*slices):
        img[(0,) + sl + (0,)] = cnt
        cnt += 1
    win = naive_partition(img, window)[..., 0]
    diff = win[:, None, :] - win[:, :, None]
    return torch.where(diff != 0, torch.tensor(MASK_VALUE), torch.tensor(0.0))


def naive_window_attention(mod, x, shift):
    """pad -> roll -> partition -> per-window softmax attention with bias (+mask) -> reverse."""
    b, *spatial, c = x.shape
    window, shift = effective_window(spatial, mod.window_size, shift)
    xp = pad_to_window(x, window)
    padded = xp.shape[1:-1]
    shifted = any(s > 0 for s in shift)
    if shifted:
        xp = torch.roll(xp, shifts=[-s for s in shift], dims=list(range(1, len(spatial) + 1)))
    wins = naive_partition(xp, window)  # [B*nW, N, C]
    n = wins.shape[1]
    h = mod.num_heads
    bias = mod.relative_position_bias_table[naive_rel_index(mod.window_size)[:n, :n]].permute(2, 0, 1)
    mask = naive_mask(padded, window, shift) if shifted else None
    nw = wins.shape[0] // b
    outs = []
    for i in range(wins.shape[0]):
        qkv = mod.qkv(wins[i]).view(n, 3, h, c // h).permute(1, 2, 0, 3)
        q, k, v = qkv[0], qkv[1], qkv[2]
        s = (q @ k.transpose(-1, -2)) * mod.scale + bias
        if mask is not None:
            s = s + mask[i % nw].to(s.dtype)
        outs.append((s.softmax(-1) @ v).transpose(0, 1).reshape(n, c))
    out = mod.proj(torch.stack(outs))
    counts = [p // w for p, w in zip(padded, window)]
    grid = out.view(b, *counts, *window, c)
    nd = len(spatial)
    order = [0] + [x for i in range(nd) for x in (1 + i, 1 + nd + i)] + [2 * nd + 1]
    grid = grid.permute(*order).reshape(b, *padded, c)
    if shifted:
        grid = torch.roll(grid, shifts=list(shift), dims=list(range(1, nd + 1)))
    return grid[(slice(None),) + tuple(slice(0, s) for s in spatial)]


def make_attn(dim=12, heads=3, window=(3, 3, 3), dtype=torch.float32, seed=0):
    torch.manual_seed(seed)
    mod = WindowAttention(dim, heads, window, qkv_bias=True).to(dtype)
    with torch.no_grad():
        mod.relative_position_bias_table.normal_(0, 0.5)  # make the bias matter
    return mod


# ---------------------------------------------------------------- pure ops
@pytest.mark.parametrize("shape,window",
                         [((2, 6, 9, 4, 5), (3, 3, 2)), ((3, 8, 6, 7), (4, 3)), ((1, 7, 7, 7, 2), (7, 7, 7))])
def test_partition_and_reverse_match_naive(shape, window):
    x = torch.randn(shape)
    wins = window_partition(x, window)
    torch.testing.assert_close(wins, naive_partition(x, window), atol=0, rtol=0)
    torch.testing.assert_close(window_reverse(wins, window, shape[1:-1]), x, atol=0, rtol=0)


@pytest.mark.parametrize("window", [(2, 3, 4), (7, 7, 7), (3, 5)])
def test_relative_position_index_matches_naive(window):
    assert torch.equal(relative_position_index(window), naive_rel_index(window))


@pytest.mark.parametrize("padded,window,shift", [((6, 6, 9), (3, 3, 3), (1, 1, 1)), ((14, 14, 7), (7, 7, 7), (3, 3, 3)),
                                                  ((8, 12), (4, 4), (2, 2)), ((6, 6), (3, 3), (1, 0))])
def test_shifted_mask_matches_naive(padded, window, shift):
    got = shifted_window_mask(padded, window, shift)
    if all(s > 0 for s in shift):
        torch.testing.assert_close(got, naive_mask(padded, window, shift), atol=0, rtol=0)
    else:  # an unshifted dim contributes one region (MONAI's slices collapse)
        assert set(got.unique().tolist()) <= {0.0, MASK_VALUE}
        assert got.shape == (math.prod(p // w for p, w in zip(padded, window)), math.prod(window), math.prod(window))


def test_mask_cache_reused_and_keyed_on_shape():
    a = shifted_window_mask((14, 14, 14), (7, 7, 7), (3, 3, 3), "cpu")
    b = shifted_window_mask((14, 14, 14), (7, 7, 7), (3, 3, 3), torch.device("cpu"))
    c = shifted_window_mask((21, 14, 14), (7, 7, 7), (3, 3, 3), "cpu")
    d = shifted_window_mask((14, 14, 14), (7, 7, 7), (2, 2, 2), "cpu")
    assert a is b
    assert c is not a and c.shape[0] == 12 and a.shape[0] == 8
    assert d is not a and not torch.equal(d, a)
    p1 = window_plan((9, 10, 11), (7, 7, 7), (3, 3, 3))
    assert window_plan((9, 10, 11), (7, 7, 7), (3, 3, 3)) is p1
    assert window_plan((9, 10, 12), (7, 7, 7), (3, 3, 3)) is not p1


def test_mask_cache_reused_across_forwards(monkeypatch):
    """Building the plan (and its mask) happens once per grid shape, not per forward."""
    import sigplex.core.ops.window as window_mod

    built = []
    original = window_mod.WindowPlan.__init__

    def counting(self, *args, **kwargs):
        built.append(args[0])
        original(self, *args, **kwargs)

    monkeypatch.setattr(window_mod.WindowPlan, "__init__", counting)
    window_mod.clear_window_caches()
    mod = make_attn()
    x = torch.randn(1, 5, 7, 4, 12)
    for _ in range(3):
        mod.forward_grid(x, (1, 1, 1))
    assert len(built) == 1
    mod.forward_grid(torch.randn(1, 5, 7, 5, 12), (1, 1, 1))
    assert len(built) == 2


@pytest.mark.parametrize("spatial,window,shift", [((5, 7, 4), (3, 3, 3), (1, 1, 1)), ((9, 10, 11), (7, 7, 7), (3, 3, 3)),
                                                  ((6, 6, 6), (3, 3, 3), (0, 0, 0)), ((10, 13), (7, 7), (3, 3))])
def test_plan_gather_is_pad_roll_partition(spatial, window, shift):
    plan = window_plan(spatial, window, shift)
    length = math.prod(spatial)
    ids = torch.arange(length, dtype=torch.float64).view(1, *spatial, 1)
    xp = pad_to_window(ids + 1, plan.window) - 1  # pads become -1
    xp = torch.roll(xp, shifts=[-s for s in plan.shift], dims=list(range(1, len(spatial) + 1)))
    natural = naive_partition(xp, plan.window)[..., 0].long()
    expected = torch.where(natural < 0, torch.full_like(natural, length), natural)[plan.window_order]
    assert torch.equal(plan.gather, expected)
    # inverse: the slot of each real token holds that token
    assert torch.equal(plan.gather.reshape(-1)[plan.inverse], torch.arange(length))
    # the windows of one group share one mask
    if plan.group_masks is not None:
        full = shifted_window_mask(plan.padded, plan.window, plan.shift)[plan.window_order]
        start = 0
        for g, size in enumerate(plan.group_sizes):
            assert torch.equal(full[start:start + size], plan.group_masks[g].expand(size, -1, -1))
            start += size


# ---------------------------------------------------------------- attention on grids
CASES = [
    ((2, 5, 7, 4, 12), (3, 3, 3), (1, 1, 1)),   # odd sizes, padding, shifted, batch 2
    ((1, 6, 6, 6, 12), (3, 3, 3), (0, 0, 0)),   # no padding, unshifted
    ((3, 2, 9, 8, 12), (3, 3, 3), (1, 1, 1)),   # a dim smaller than the window (clipped, no shift)
    ((2, 10, 13, 12), (7, 7), (3, 3)),          # 2D shifted with padding
    ((1, 8, 8, 12), (4, 4), (0, 0)),            # 2D unshifted
]


@pytest.mark.parametrize("shape,window,shift", CASES)
def test_forward_grid_matches_naive_fp32(shape, window, shift):
    mod = make_attn(window=window)
    x = torch.randn(shape)
    with torch.no_grad():
        ref = naive_window_attention(mod, x, shift)
        got = mod.forward_grid(x, shift)
        got_again = mod.forward_grid(x, shift)  # served from the bias cache
    torch.testing.assert_close(got, ref, **TOL)
    torch.testing.assert_close(got_again, ref, **TOL)
    # with autograd on, the uncached path gives the same values
    torch.testing.assert_close(mod.forward_grid(x, shift).detach(), ref, **TOL)


@pytest.mark.parametrize("shape,window,shift", CASES[:1] + CASES[3:4])
def test_forward_grid_bf16(shape, window, shift):
    mod16 = make_attn(window=window, dtype=torch.bfloat16)
    mod32 = make_attn(window=window)
    mod32.load_state_dict({k: v.float() for k, v in mod16.state_dict().items()})  # same rounded weights
    x = torch.randn(shape).bfloat16()
    with torch.no_grad():
        ref = naive_window_attention(mod32, x.float(), shift)
        got = mod16.forward_grid(x, shift).float()
    # bf16 keeps 8 mantissa bits: loose elementwise bound, tight bound on the mean error
    torch.testing.assert_close(got, ref, atol=0.1, rtol=0.1)
    assert (got - ref).abs().mean() < 1e-2


class _Grid(torch.nn.Module):
    def __init__(self, inner, shift):
        super().__init__()
        self.inner, self.shift = inner, shift

    def forward(self, x):
        return self.inner.forward_grid(x, self.shift)


@pytest.mark.parametrize("shape,window,shift", [((2, 3, 3, 2, 4), (2, 2, 2), (1, 1, 1)), ((1, 3, 3, 4), (2, 2), (1, 1))])
def test_gradcheck_float64(shape, window, shift):
    mod = make_attn(dim=4, heads=2, window=window, dtype=torch.float64)
    grid = _Grid(mod, shift)
    x = torch.randn(shape, dtype=torch.float64, requires_grad=True)
    table = mod.relative_position_bias_table.detach().clone().requires_grad_()

    def fn(x, table):  # gradient w.r.t. the input and the relative-position table
        return torch.func.functional_call(grid, {"inner.relative_position_bias_table": table}, (x,), strict=False)

    assert torch.autograd.gradcheck(fn, (x, table), eps=1e-6, atol=1e-5, fast_mode=True)


@pytest.mark.parametrize("shape,window,shift", CASES[:2] + CASES[3:4])
def test_gradients_match_naive(shape, window, shift):
    mod = make_attn(window=window, dtype=torch.float64)
    x = torch.randn(shape, dtype=torch.float64, requires_grad=True)
    g = torch.randn(shape, dtype=torch.float64)
    params = [x] + list(mod.parameters())
    ref = torch.autograd.grad(naive_window_attention(mod, x, shift), params, g)
    got = torch.autograd.grad(mod.forward_grid(x, shift), params, g)
    for r, o in zip(ref, got):
        torch.testing.assert_close(o, r, atol=1e-10, rtol=1e-10)


@pytest.mark.parametrize("n", [8, 27])  # 8 of 27 tokens: most table rows unread (empty segments)
def test_bias_table_gradient_matches_indexing(n):
    mod = make_attn(window=(3, 3, 3), dtype=torch.float64)
    g = torch.randn(mod.relative_position_bias_table.shape[1], n, n, dtype=torch.float64)
    (got,) = torch.autograd.grad(mod.relative_position_bias(n), mod.relative_position_bias_table, g)
    table = mod.relative_position_bias_table.detach().clone().requires_grad_()
    index = mod.relative_position_index[:n, :n].reshape(-1)
    ref_bias = table[index].view(n, n, -1).permute(2, 0, 1)  # autograd's own scatter backward
    (ref,) = torch.autograd.grad(ref_bias, table, g)
    torch.testing.assert_close(got, ref, atol=1e-12, rtol=1e-12)
    if n == 8:
        assert (ref == 0).all(dim=1).any()  # some rows were not read: their segments are empty
    with torch.no_grad():
        torch.testing.assert_close(mod.relative_position_bias(n), ref_bias)


def test_fused_and_reference_paths_agree(monkeypatch):
    calls = []
    original = attention_mod.attention_reference

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(attention_mod, "attention_reference", counting)
    mod = make_attn()
    x = torch.randn(2, 5, 7, 4, 12)
    with torch.no_grad():
        with fused_attention(True):
            fused = mod.forward_grid(x, (1, 1, 1))
        assert not calls
        with fused_attention(False):
            ref = mod.forward_grid(x, (1, 1, 1))
        assert calls  # the switch really routes to the reference math
    torch.testing.assert_close(fused, ref, **TOL)


def test_bias_cache_invalidated_when_table_changes():
    mod = make_attn().eval()
    x = torch.randn(1, 5, 7, 4, 12)
    with torch.no_grad():
        before = mod.forward_grid(x, (1, 1, 1))
        mod.relative_position_bias_table.mul_(3.0)
        after = mod.forward_grid(x, (1, 1, 1))
        ref = naive_window_attention(mod, x, (1, 1, 1))
    assert not torch.allclose(before, after)
    torch.testing.assert_close(after, ref, **TOL)


# ---------------------------------------------------------------- against MONAI
def test_window_attention_matches_monai_with_mask():
    swin = pytest.importorskip("monai.networks.nets.swin_unetr")
    torch.manual_seed(0)
    window = (7, 7, 7)
    theirs = swin.WindowAttention(24, 3, window, qkv_bias=True).eval()
    ours = WindowAttention(24, 3, window, qkv_bias=True).eval()
    ours.load_state_dict(theirs.state_dict(), strict=True)
    b = 2
    mask = swin.compute_mask([14, 14, 14], window, (3, 3, 3), torch.device("cpu"))  # [8, 343, 343]
    x = torch.randn(b * mask.shape[0], 343, 24)
    with torch.no_grad():
        torch.testing.assert_close(ours(x, mask), theirs(x, mask), **TOL)
        torch.testing.assert_close(ours(x, None), theirs(x, None), **TOL)
        # our mask: the same regions, MASK_VALUE (-1e4, no float32 denormals) for MONAI's -100, the same output
        own = shifted_window_mask([14, 14, 14], window, (3, 3, 3))
        assert torch.equal(own != 0, mask != 0) and set(own.unique().tolist()) == {0.0, MASK_VALUE}
        torch.testing.assert_close(ours(x, own), theirs(x, mask), **TOL)
        # a window clipped to n < N tokens uses index[:n, :n], as MONAI does
        small = torch.randn(3, 64, 24)
        torch.testing.assert_close(ours(small, None), theirs(small, None), **TOL)
    # the cached mask is MONAI's with MASK_VALUE for its -100
    torch.testing.assert_close(shifted_window_mask((14, 14, 14), window, (3, 3, 3)),
                               mask * (MASK_VALUE / -100.0), atol=0, rtol=0)


def test_forward_grid_matches_monai_block():
    swin = pytest.importorskip("monai.networks.nets.swin_unetr")
    torch.manual_seed(0)
    for shape, shift in (((9, 10, 11), (3, 3, 3)), ((8, 8, 8), (0, 0, 0)), ((4, 4, 4), (3, 3, 3))):
        blk = swin.SwinTransformerBlock(12, 3, (7, 7, 7), shift, qkv_bias=True).eval()
        blk.norm1 = torch.nn.Identity()
        ours = WindowAttention(12, 3, (7, 7, 7), qkv_bias=True).eval()
        ours.load_state_dict(blk.attn.state_dict())
        x = torch.randn(2, *shape, 12)
        w, s = swin.get_window_size(shape, (7, 7, 7), shift)
        padded = [math.ceil(d / ww) * ww for d, ww in zip(shape, w)]
        with torch.no_grad():
            ref = blk.forward_part1(x, swin.compute_mask(padded, w, s, x.device))
            torch.testing.assert_close(ours.forward_grid(x, shift), ref, **TOL)


@pytest.mark.parametrize("block_bytes", [None, 1])
def test_module_gradients_match_monai_with_mask(monkeypatch, block_bytes):
    """Training path on MONAI's pre-partitioned windows: input, weight and bias-table gradients in
    float64 equal MONAI's autograd; ``block_bytes=1`` runs the backward one window at a time, so
    blocks cross the mask period (window m takes mask[m % nW])."""
    swin = pytest.importorskip("monai.networks.nets.swin_unetr")
    window_mod = importlib.import_module("sigplex.core.ops.window")
    if block_bytes is not None:
        monkeypatch.setattr(window_mod, "BLOCK_BYTES", block_bytes)
    torch.manual_seed(0)
    window = (3, 3, 3)
    theirs = swin.WindowAttention(12, 3, window, qkv_bias=True).double()
    ours = WindowAttention(12, 3, window, qkv_bias=True).double()
    ours.load_state_dict(theirs.state_dict(), strict=True)
    with torch.no_grad():  # a bias large enough to matter
        theirs.relative_position_bias_table.normal_(std=1.0)
        ours.relative_position_bias_table.copy_(theirs.relative_position_bias_table)
    mask = swin.compute_mask([6, 6, 6], window, (1, 1, 1), torch.device("cpu")).double()  # [8, 27, 27]
    x = torch.randn(3 * mask.shape[0], 27, 12, dtype=torch.float64)
    g = torch.randn_like(x)
    for m in (mask, None):
        got = torch.autograd.grad(ours(x.requires_grad_(), m), [x] + list(ours.parameters()), g)
        ref = torch.autograd.grad(theirs(x, m), [x] + list(theirs.parameters()), g)
        for name, o, r in zip(["x"] + [n for n, _ in ours.named_parameters()], got, ref):
            torch.testing.assert_close(o, r, atol=1e-10, rtol=1e-10, msg=name)


def test_grid_backward_in_blocks_matches_whole(monkeypatch):
    """The blocked backward (one window per block) gives the same gradients as one block."""
    window_mod = importlib.import_module("sigplex.core.ops.window")
    mod = make_attn(dtype=torch.float64)
    x = torch.randn(2, 5, 7, 4, 12, dtype=torch.float64, requires_grad=True)
    g = torch.randn(2, 5, 7, 4, 12, dtype=torch.float64)
    params = [x] + list(mod.parameters())
    whole = torch.autograd.grad(mod.forward_grid(x, (1, 1, 1)), params, g)
    monkeypatch.setattr(window_mod, "BLOCK_BYTES", 1)
    blocked = torch.autograd.grad(mod.forward_grid(x, (1, 1, 1)), params, g)
    for w, bl in zip(whole, blocked):
        torch.testing.assert_close(bl, w, atol=1e-12, rtol=1e-12)


@pytest.mark.parametrize("shift", [(0, 0, 0), (1, 1, 1)])
def test_training_forward_gives_sdpa_a_constant_mask(monkeypatch, shift):
    """The training path's forward hands SDPA a 4D mask that needs no gradient: SDPA would take
    its unfused math path for one that does (even under no_grad), or for a lower-rank one."""
    F = importlib.import_module("torch.nn.functional")
    seen = []
    real = F.scaled_dot_product_attention

    def spy(q, k, v, attn_mask=None, **kw):
        seen.append((attn_mask.requires_grad, attn_mask.dim()))
        return real(q, k, v, attn_mask=attn_mask, **kw)

    monkeypatch.setattr(F, "scaled_dot_product_attention", spy)
    mod = make_attn()
    mod.forward_grid(torch.randn(1, 6, 6, 6, 12, requires_grad=True), shift).sum().backward()
    assert seen and all(s == (False, 4) for s in seen)


@pytest.mark.parametrize("shift", [(0, 0, 0), (2, 2, 2), (2, 0, 1)])
def test_the_rolled_grid_path_torch_compile_traces_equals_the_plan_path(shift):
    """Under torch.compile forward_grid runs MONAI's roll/partition steps; eager, both give the same grid."""
    torch.manual_seed(0)
    attn = WindowAttention(16, 2, (4, 4, 4)).double()
    x = torch.randn(2, 6, 7, 5, 16, dtype=torch.float64, requires_grad=True)
    planned = attn.forward_grid(x, shift)
    (gx_plan, gt_plan) = torch.autograd.grad(planned.square().sum(), (x, attn.relative_position_bias_table))
    rolled = attn._forward_grid_rolled(x, shift, attn.window_size)
    (gx_roll, gt_roll) = torch.autograd.grad(rolled.square().sum(), (x, attn.relative_position_bias_table))
    torch.testing.assert_close(rolled, planned, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(gx_roll, gx_plan, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(gt_roll, gt_plan, rtol=1e-10, atol=1e-12)


def test_biased_attention_custom_op_registration_and_gradients():
    """The kernel torch.compile keeps whole: fake kernel, autograd and schema pass torch.library's checks,
    and its gradients equal autograd's through the plain formula (float64)."""
    from sigplex.core.ops.window_autograd import biased_attention_op

    torch.manual_seed(0)
    m, h, n, d = 6, 2, 8, 4
    q, k, v = (torch.randn(m, h, n, d, dtype=torch.float64, requires_grad=True) for _ in range(3))
    bias = torch.randn(h, n, n, dtype=torch.float64, requires_grad=True)
    mask = torch.where(torch.rand(3, n, n) < 0.3, MASK_VALUE, 0.0).double()
    mask[:, torch.arange(n), torch.arange(n)] = 0.0  # every query keeps one key
    for window_mask in (None, mask):
        torch.library.opcheck(biased_attention_op, (q, k, v, bias, window_mask, 0.5, 1 << 10))
        out = biased_attention_op(q, k, v, bias, window_mask, 0.5, 1 << 10)  # blocks of 2 windows
        scores = q @ k.transpose(-2, -1) * 0.5 + bias
        if window_mask is not None:
            scores = scores + window_mask.repeat(m // 3, 1, 1).unsqueeze(1)  # window i takes mask[i % 3]
        naive = scores.softmax(-1) @ v
        torch.testing.assert_close(out, naive, rtol=1e-10, atol=1e-12)
        grads = torch.autograd.grad(out.square().sum(), (q, k, v, bias))
        expected = torch.autograd.grad(naive.square().sum(), (q, k, v, bias))
        for got, want in zip(grads, expected):
            torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-11)


def test_compiled_training_window_attention_keeps_the_kernel_and_equals_eager():
    """Under torch.compile (AOTAutograd, as Inductor sees it) a training forward_grid calls the custom op
    and gives eager's values and gradients."""
    torch.manual_seed(0)
    attn = WindowAttention(16, 2, (4, 4, 4))
    x = torch.randn(2, 6, 7, 5, 16, requires_grad=True)
    eager = attn.forward_grid(x, (2, 2, 2))
    want = torch.autograd.grad(eager.square().sum(), (x, attn.relative_position_bias_table))
    torch._dynamo.reset()
    explained = torch._dynamo.explain(attn.forward_grid)(x, (2, 2, 2))
    assert "sigplex.biased_attention" in explained.graphs[0].code
    compiled = torch.compile(attn.forward_grid, backend="aot_eager", fullgraph=True)(x, (2, 2, 2))
    got = torch.autograd.grad(compiled.square().sum(), (x, attn.relative_position_bias_table))
    torch.testing.assert_close(compiled, eager, rtol=1e-4, atol=1e-5)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=1e-4, atol=1e-4)
