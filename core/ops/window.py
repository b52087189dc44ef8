"""Shifted-window attention for 2D and 3D grids (Swin): partition, masks, relative bias, module.

Tensors on a grid are channels-last: ``[B, *spatial, C]`` with 2 or 3 spatial dims.

Pure functions (each has a naive reference in ``tests/core/test_window_attention.py``):

- :func:`window_partition` / :func:`window_reverse` — ``[B, *S, C] <-> [B*nW, N, C]`` by one
  view + permute (sizes must be multiples of the window; :func:`pad_to_window` pads).
- :func:`effective_window` — MONAI's rule: a window no larger than the grid, no shift there.
- :func:`relative_position_index` — the ``[N, N]`` index into the ``(2w-1)^d`` bias table.
- :func:`shifted_window_mask` — the ``[nW, N, N]`` additive mask (0 / -100, as MONAI) of a
  cyclically shifted grid, **built once per (padded shape, window, shift, device) and cached**.
- :func:`window_plan` — everything a shifted-window layer needs for one grid, cached: a gather
  index fusing pad + cyclic shift + partition in one ``index_select``, its inverse (reverse +
  unshift + crop in one), and the windows grouped by mask pattern. In 3D only 8 distinct mask
  patterns exist (2 in each shifted dim: interior or last window), so the combined additive
  ``bias + mask`` is ``[n_patterns, heads, N, N]`` and broadcasts over windows *and* batch;
  nothing per window or per batch item is materialised.

:class:`WindowAttention` has MONAI's parameter names and shapes (``qkv``, ``proj``,
``relative_position_bias_table``, buffer ``relative_position_index``) so that weights of
``monai.networks.nets.swin_unetr.WindowAttention`` load unchanged. ``forward(x, mask)`` is
MONAI's call on pre-partitioned windows; :meth:`WindowAttention.forward_grid` does the whole
shifted-window step on a grid and is what :mod:`sigplex.core.backbones.swin` uses. Both go
through :func:`sigplex.core.ops.attention.attention` (SDPA unless ``SIGPLEX_FUSED_ATTN=0``).

>>> import torch
>>> attn = WindowAttention(dim=12, num_heads=3, window_size=(7, 7, 7), qkv_bias=True)
>>> x = torch.randn(2, 9, 10, 11, 12)            # B, D, H, W, C (sizes need padding)
>>> attn.forward_grid(x, shift_size=(3, 3, 3)).shape
torch.Size([2, 9, 10, 11, 12])
"""
from __future__ import annotations

import math
from collections import OrderedDict
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .attention import attention

# Added between tokens of different regions of a shifted window. MONAI and the Swin paper add -100:
# the same attention weights (exp(-100) is 4e-44 of a row's sum, below float32's and float64's
# resolution), but float32 exp of scores near -100 gives denormal numbers, which this CPU computes
# 5x slower (softmax over [2, 3, 343, 343] with a -100 mask: 1.26 ms, with -1e4: 0.24 ms).
# exp(-1e4) is exactly 0.
MASK_VALUE = -1.0e4

_CACHE_SIZE = 64
_MASK_CACHE: "OrderedDict[tuple, torch.Tensor]" = OrderedDict()
_PLAN_CACHE: "OrderedDict[tuple, WindowPlan]" = OrderedDict()


def _cache_get(cache: OrderedDict, key, build):
    hit = cache.get(key)
    if hit is not None:
        cache.move_to_end(key)
        return hit
    value = build()
    cache[key] = value
    if len(cache) > _CACHE_SIZE:
        cache.popitem(last=False)
    return value


def clear_window_caches() -> None:
    """Drop every cached mask and plan (e.g. to free memory after a large inference)."""
    _MASK_CACHE.clear()
    _PLAN_CACHE.clear()


def _tuple(v, n: int) -> tuple[int, ...]:
    if isinstance(v, int):
        return (v,) * n
    v = tuple(int(i) for i in v)
    if len(v) != n:
        raise ValueError(f"expected {n} values, got {v}")
    return v


def effective_window(spatial: Sequence[int], window_size: Sequence[int], shift_size: Sequence[int] | None = None):
    """MONAI's ``get_window_size``: along a dim no larger than the window, the window is the
    whole dim and there is no shift. Returns ``window`` or ``(window, shift)``."""
    window = [min(int(w), int(s)) if s <= w else int(w) for s, w in zip(spatial, window_size)]
    if shift_size is None:
        return tuple(window)
    shift = [0 if s <= w else int(sh) for s, w, sh in zip(spatial, window_size, shift_size)]
    return tuple(window), tuple(shift)


def padded_shape(spatial: Sequence[int], window: Sequence[int]) -> tuple[int, ...]:
    """Each size rounded up to a multiple of its window size."""
    return tuple(int(math.ceil(s / w)) * w for s, w in zip(spatial, window))


def pad_to_window(x: torch.Tensor, window: Sequence[int]) -> torch.Tensor:
    """Zero-pad a channels-last grid ``[B, *S, C]`` at the end of each spatial dim to window multiples."""
    spatial = x.shape[1:-1]
    pads: list[int] = [0, 0]
    for s, w in reversed(list(zip(spatial, window))):
        pads += [0, (w - s % w) % w]
    return F.pad(x, pads) if any(pads) else x


def window_partition(x: torch.Tensor, window: Sequence[int]) -> torch.Tensor:
    """``[B, *S, C] -> [B*nW, N, C]``, windows in row-major order (as MONAI), N = prod(window)."""
    b, *spatial, c = x.shape
    nd = len(spatial)
    shape = [b]
    for s, w in zip(spatial, window):
        shape += [s // w, w]
    x = x.view(*shape, c)
    order = [0] + [1 + 2 * i for i in range(nd)] + [2 + 2 * i for i in range(nd)] + [2 * nd + 1]
    return x.permute(*order).reshape(-1, math.prod(window), c)


def window_reverse(windows: torch.Tensor, window: Sequence[int], spatial: Sequence[int]) -> torch.Tensor:
    """Inverse of :func:`window_partition`: ``[B*nW, N, C] -> [B, *spatial, C]``."""
    nd = len(spatial)
    counts = [s // w for s, w in zip(spatial, window)]
    c = windows.shape[-1]
    x = windows.reshape(-1, *counts, *window, c)
    order = [0]
    for i in range(nd):
        order += [1 + i, 1 + nd + i]
    return x.permute(*order + [2 * nd + 1]).reshape(-1, *spatial, c)


def relative_position_index(window: Sequence[int]) -> torch.Tensor:
    """``[N, N]`` int64 index into a ``prod(2w-1)``-row bias table (MONAI / Swin convention)."""
    window = tuple(int(w) for w in window)
    coords = torch.stack(torch.meshgrid(*[torch.arange(w) for w in window], indexing="ij")).flatten(1)
    rel = coords[:, :, None] - coords[:, None, :]  # [nd, N, N]
    index = torch.zeros(rel.shape[1:], dtype=torch.long)
    for d, w in enumerate(window):  # loop over the 2 or 3 dims, not over tokens
        stride = math.prod(2 * v - 1 for v in window[d + 1:])
        index += (rel[d] + w - 1) * stride
    return index


def _region_labels(padded: Sequence[int], window: Sequence[int], shift: Sequence[int], device) -> torch.Tensor:
    """Region id of every position of the shifted, padded grid (MONAI's ``img_mask``), ``[*padded]``."""
    label = torch.zeros((), dtype=torch.long, device=device)
    for p, w, s in zip(padded, window, shift):
        pos = torch.arange(p, device=device)
        if s > 0:
            lab = (pos >= p - w).long() + (pos >= p - s).long()
        else:  # MONAI's slices collapse to one region along an unshifted dim
            lab = torch.zeros_like(pos)
        label = label[..., None] * 3 + lab
    return label


def _mask_from_labels(labels: torch.Tensor) -> torch.Tensor:
    diff = labels[..., :, None] != labels[..., None, :]
    return torch.zeros(diff.shape, dtype=torch.float32, device=labels.device).masked_fill_(diff, MASK_VALUE)


def shifted_window_mask(padded: Sequence[int], window: Sequence[int], shift: Sequence[int], device=None) -> torch.Tensor:
    """Additive mask ``[nW, N, N]`` (0 within a region, ``MASK_VALUE`` across) of a cyclically shifted grid.

    ``padded`` sizes must be multiples of ``window``. Built once per (padded shape, window,
    shift, device) and cached: calling again returns the same tensor object. Treat it as read-only.
    """
    padded, window, shift = tuple(map(int, padded)), tuple(map(int, window)), tuple(map(int, shift))
    device = torch.device(device if device is not None else "cpu")
    key = (padded, window, shift, str(device))

    def build():
        labels = _region_labels(padded, window, shift, device)
        windows = window_partition(labels[None, ..., None], window)[..., 0]  # [nW, N]
        return _mask_from_labels(windows)

    return _cache_get(_MASK_CACHE, key, build)


class _GatherRows(torch.autograd.Function):
    """``src.index_select(0, index)`` whose backward is a gather too, not a scatter-add.

    Every source row is read by exactly one output row (``adjoint`` maps it back), except the
    pad rows ``pad_rows`` (one per batch item) which are read by the slots ``pad_slots``
    ``[B, P]``: their gradient is summed explicitly. ``pad_grad_row``: outputs that are
    padding (adjoint = ``len(grad)``) receive zero gradient. The default ``index_select``
    backward is an ``index_add`` into zeros, ~10x slower on CPU here.
    """

    @staticmethod
    def forward(ctx, src, index, adjoint, pad_slots, pad_rows, pad_grad_row: bool):
        ctx.save_for_backward(adjoint, pad_slots, pad_rows)
        ctx.has_pads = pad_slots is not None and pad_slots.numel() > 0
        ctx.pad_grad_row = pad_grad_row
        return src.index_select(0, index)

    @staticmethod
    def backward(ctx, grad):
        adjoint, pad_slots, pad_rows = ctx.saved_tensors
        g = grad
        if ctx.pad_grad_row:
            g = torch.cat([grad, grad.new_zeros(1, *grad.shape[1:])], 0)
        out = g.index_select(0, adjoint)
        if ctx.has_pads:
            b, p = pad_slots.shape
            out[pad_rows] = grad.index_select(0, pad_slots.reshape(-1)).view(b, p, *grad.shape[1:]).sum(1)
        elif pad_rows is not None:
            out[pad_rows] = 0  # the zero rows were not read at all
        return out, None, None, None, None, None


def _needs_own_backward(t: torch.Tensor) -> bool:
    """Whether ``t`` gets a gradient through one of this module's autograd Functions (eager only)."""
    return torch.is_grad_enabled() and t.requires_grad and not torch.jit.is_tracing() and not torch.jit.is_scripting()


def _gather_rows(src, index, adjoint, pad_slots=None, pad_rows=None, pad_grad_row=False):
    if _needs_own_backward(src):
        return _GatherRows.apply(src, index, adjoint, pad_slots, pad_rows, pad_grad_row)
    return src.index_select(0, index)


class _TableRows(torch.autograd.Function):
    """``table.index_select(0, index)`` whose backward sums the gradient by sorted segments.

    ``order`` sorts ``index`` and ``counts[r]`` is how often table row ``r`` is read, so the
    table gradient is one gather and one segment sum: no scatter. Autograd's own backward
    (``index_put_`` with accumulate) took 2.2 ms for a 7^3 window's 117,649 reads of 3 heads
    here, this 0.55 ms. Sums run in another order than index_put's (float rounding only).
    """

    @staticmethod
    def forward(ctx, table, index, order, counts):
        ctx.save_for_backward(order, counts)
        return table.index_select(0, index)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        order, counts = ctx.saved_tensors
        return torch.segment_reduce(grad.index_select(0, order), "sum", lengths=counts, axis=0), None, None, None


# Bytes of one block of [windows, heads, N, N] scores, small enough to stay in cache between the
# ops that make and use them. Measured on 2 cores at N = 343, 3 heads, 125 windows: the backward
# on the whole tensor at once 0.40 s, in blocks of 2-8 windows 0.25 s.
BLOCK_BYTES = 4 * 2 ** 20


class _BiasedAttention(torch.autograd.Function):
    """Training-time window attention ``softmax(q k^T * scale + bias + mask[m % Mm]) v``.

    ``q, k, v``: ``[M, heads, N, hd]`` (M = windows x batch); ``bias``: ``[heads, N, N]``, the
    learned relative-position bias, which needs a gradient; ``mask``: ``[Mm, N, N]`` constant
    additive masks, window ``m`` taking ``mask[m % Mm]`` (MONAI's window order), or None.

    The forward is SDPA's fused kernel (q, k, v and the output are kept): one call when one
    mask serves every window; with a mask per window, one call per block of windows, so that
    ``bias + mask`` is never made for all windows at once. The backward recomputes the
    probabilities a block of windows at a time (``BLOCK_BYTES`` of scores), so that each
    block's scores, probabilities and their gradient stay in cache across the five products,
    and sums the bias gradient per block into ``[heads, N, N]``: nothing of size
    ``M x heads x N x N`` is ever held. Blocks tile the work as a fused kernel would; they are
    not one window each.
    """

    @staticmethod
    def forward(ctx, q, k, v, bias, mask, scale):
        m, h, n, d = q.shape
        q, k, v = q.contiguous(), k.contiguous(), v.contiguous()  # blocks below slice them: no copy per block
        with torch.no_grad():
            if mask is None or mask.shape[0] == 1:
                # detached: SDPA sends a mask that requires grad to its math path, even under no_grad
                additive = bias.detach() if mask is None else bias.detach() + mask.to(bias.dtype)
                out = attention(q, k, v, bias=additive.to(q.dtype), scale=scale)
            else:  # a mask per window: bias + mask made a block at a time, as in the backward
                out = q.new_empty(m, h, n, d)
                block = _block_windows(q)
                for i in range(0, m, block):
                    j = min(i + block, m)
                    additive = bias.detach().unsqueeze(0) + _mask_rows(mask, i, j).to(bias.dtype).unsqueeze(1)
                    out[i:j] = attention(q[i:j], k[i:j], v[i:j], bias=additive.to(q.dtype), scale=scale)
        ctx.save_for_backward(q, k, v, bias, mask, out)
        ctx.scale = scale
        return out

    @staticmethod
    def backward(ctx, dout):
        q, k, v, bias, mask, out = ctx.saved_tensors
        scale = ctx.scale
        dout = dout.contiguous()
        m, h, n, _ = q.shape
        dq, dk, dv = torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)
        acc = torch.float64 if q.dtype == torch.float64 else torch.float32
        dbias = torch.zeros(h, n, n, dtype=acc, device=q.device)
        delta = (dout * out).sum(-1, keepdim=True)
        block = _block_windows(q)
        qbias = bias.to(q.dtype)
        for i in range(0, m, block):  # cache-sized blocks of windows, as a fused kernel tiles
            j = min(i + block, m)
            qi, ki, vi, di = q[i:j], k[i:j], v[i:j], dout[i:j]
            scores = torch.matmul(qi * scale, ki.transpose(-2, -1)).add_(qbias)
            if mask is not None:
                scores.add_(_mask_rows(mask, i, j).to(q.dtype).unsqueeze(1))
            probs = scores.softmax(-1)
            del scores
            torch.matmul(probs.transpose(-2, -1), di, out=dv[i:j])
            ds = torch.matmul(di, vi.transpose(-2, -1)).sub_(delta[i:j]).mul_(probs)
            del probs
            dbias += ds.sum(0)
            torch.matmul(ds, ki, out=dq[i:j])
            torch.matmul(ds.transpose(-2, -1), qi, out=dk[i:j])
        return dq.mul_(scale), dk.mul_(scale), dv, dbias.to(bias.dtype), None, None


def _block_windows(q: torch.Tensor) -> int:
    """Windows per block: ``BLOCK_BYTES`` of ``[windows, heads, N, N]`` scores."""
    _, h, n, _ = q.shape
    return max(1, BLOCK_BYTES // (h * n * n * q.element_size()))


def _mask_rows(mask: torch.Tensor, start: int, stop: int) -> torch.Tensor:
    """``mask[m % Mm]`` for windows ``start .. stop-1``: ``[stop - start, N, N]`` (or ``[1, N, N]``)."""
    period = mask.shape[0]
    if period == 1:
        return mask
    if start // period == (stop - 1) // period:
        return mask[start % period:(stop - 1) % period + 1]
    return mask.index_select(0, torch.arange(start, stop, device=mask.device) % period)


def _trains_bias(table: torch.Tensor, dropout_p: float) -> bool:
    """Whether window attention takes :class:`_BiasedAttention` (the table needs a gradient)."""
    return dropout_p == 0.0 and _needs_own_backward(table)


class WindowPlan:
    """Index bookkeeping of one shifted-window layout; build with :func:`window_plan` (cached).

    Attributes: ``spatial`` (grid), ``window``/``shift`` (effective), ``padded``, ``n_windows``,
    ``tokens`` (N), ``gather`` ``[nW, N]`` (source token per window slot, ``L`` = the zero pad
    row; windows ordered by mask pattern), ``group_sizes`` (windows per pattern, in order),
    ``group_masks`` ``[n_groups, N, N]`` additive (or None when unshifted) and ``window_order``
    (natural window id of each ordered window).
    """

    def __init__(self, spatial, window, shift, device):
        self.spatial, self.window, self.shift = spatial, window, shift
        self.device = device
        self.padded = padded_shape(spatial, window)
        self.ndim = len(spatial)
        self.tokens = math.prod(window)
        self.length = math.prod(spatial)
        counts = [p // w for p, w in zip(self.padded, window)]
        self.n_windows = math.prod(counts)
        self.shifted = any(s > 0 for s in shift)

        # Source token of every position of the shifted, padded grid: torch.roll(x, -shift)
        # puts x[(p + shift) % P] at p; positions beyond the real size read the zero row L.
        src = torch.zeros((), dtype=torch.long, device=device)
        valid = torch.ones((), dtype=torch.bool, device=device)
        for s, p, sh in zip(spatial, self.padded, shift):
            q = (torch.arange(p, device=device) + sh) % p
            src = src[..., None] * s + q.clamp(max=s - 1)
            valid = valid[..., None] & (q < s)
        src = torch.where(valid, src, torch.full_like(src, self.length))
        natural = window_partition(src[None, ..., None], window)[..., 0]  # [nW, N]

        # Windows grouped by mask pattern: a window's mask only depends on whether it is the
        # last one along each shifted dim.
        group = torch.zeros((), dtype=torch.long, device=device)
        for c, sh in zip(counts, shift):
            if sh > 0:
                last = (torch.arange(c, device=device) == c - 1).long()
            else:
                last = torch.zeros(c, dtype=torch.long, device=device)
            group = group[..., None] * 2 + last
        group = group.reshape(-1)
        order = torch.argsort(group, stable=True)
        self.window_order = order
        self.gather = natural[order].contiguous()
        sizes = torch.bincount(group, minlength=2 ** self.ndim)
        firsts = [int(i) for i in torch.nonzero(sizes).flatten()]
        self.group_sizes = [int(sizes[i]) for i in firsts]
        if self.shifted:
            labels = window_partition(_region_labels(self.padded, window, shift, device)[None, ..., None], window)[..., 0]
            ordered_labels = labels[order]
            starts = [0]
            for n in self.group_sizes[:-1]:
                starts.append(starts[-1] + n)
            self.group_masks = _mask_from_labels(ordered_labels[starts])  # [n_groups, N, N]
        else:
            self.group_sizes = [self.n_windows]
            self.group_masks = None

        # Inverse: slot (ordered window * N + token) holding each real token.
        flat = self.gather.reshape(-1)
        slots = torch.arange(flat.numel(), device=device)
        keep = flat < self.length
        self.inverse = torch.empty(self.length, dtype=torch.long, device=device)
        self.inverse[flat[keep]] = slots[keep]
        self._batched: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    def batched_indices(self, batch: int) -> tuple[torch.Tensor, ...]:
        """Row indices for the gathers of a batch of ``batch`` grids (cached per batch size).

        ``fwd``: ``[B*(L+1), ·] -> [nW, B, N, ·]`` (row ``b*(L+1)+L`` is the zero pad row);
        ``inv``: ``[nW*B*N, ·] -> [B*L, ·]``; and their adjoints, gathers too, used by the
        backward passes: ``fwd_adj`` ``[nW*B*N] -> [B*(L+1)]`` and ``inv_adj`` ``[B*L + 1] -> [nW*B*N]``
        (pad slots read the appended zero row ``B*L``).
        """
        hit = self._batched.get(batch)
        if hit is None:
            b = torch.arange(batch, device=self.device)
            L = self.length
            fwd = (self.gather[:, None, :] + b[None, :, None] * (L + 1)).reshape(-1)
            win, tok = self.inverse // self.tokens, self.inverse % self.tokens
            inv = ((win[None, :] * batch + b[:, None]) * self.tokens + tok[None, :]).reshape(-1)
            fwd_adj = torch.cat([inv.view(batch, L), inv.new_zeros(batch, 1)], 1).reshape(-1)
            real = self.gather[:, None, :] < L
            inv_adj = torch.where(real, self.gather[:, None, :] + b[None, :, None] * L,
                                  torch.full_like(fwd.view(real.shape[0], batch, -1), batch * L)).reshape(-1)
            pad_pos = torch.nonzero(self.gather.reshape(-1) >= L).flatten()  # flat (window, token) slots
            pw, pt = pad_pos // self.tokens, pad_pos % self.tokens
            pad_slots = ((pw[None, :] * batch + b[:, None]) * self.tokens + pt[None, :])  # [B, P]
            pad_rows = b * (L + 1) + L
            hit = (fwd, inv, fwd_adj, inv_adj, pad_slots, pad_rows)
            if len(self._batched) > 8:
                self._batched.clear()
            self._batched[batch] = hit
        return hit


def window_plan(spatial: Sequence[int], window_size: Sequence[int], shift_size: Sequence[int], device=None) -> WindowPlan:
    """The cached :class:`WindowPlan` for a grid, after MONAI's window/shift clipping."""
    spatial = tuple(int(s) for s in spatial)
    window, shift = effective_window(spatial, _tuple(window_size, len(spatial)), _tuple(shift_size, len(spatial)))
    device = torch.device(device if device is not None else "cpu")
    key = (spatial, window, shift, str(device))
    return _cache_get(_PLAN_CACHE, key, lambda: WindowPlan(spatial, window, shift, device))


class WindowAttention(nn.Module):
    """Multi-head self-attention inside windows with a learned relative position bias.

    Parameters/buffers match MONAI's ``WindowAttention`` (``qkv``, ``proj``,
    ``relative_position_bias_table`` ``[prod(2w-1), heads]``, ``relative_position_index``
    ``[N, N]``). As in MONAI, a window clipped to ``n < N`` tokens uses ``index[:n, :n]``.
    """

    def __init__(self, dim: int, num_heads: int, window_size: Sequence[int], qkv_bias: bool = False,
                 attn_drop: float = 0.0, proj_drop: float = 0.0) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim ({dim}) must be divisible by num_heads ({num_heads})")
        self.dim, self.num_heads = dim, num_heads
        self.window_size = tuple(int(w) for w in window_size)
        self.scale = (dim // num_heads) ** -0.5
        self.attn_drop_p = float(attn_drop)
        self.relative_position_bias_table = nn.Parameter(
            torch.zeros(math.prod(2 * w - 1 for w in self.window_size), num_heads))
        self.register_buffer("relative_position_index", relative_position_index(self.window_size))
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02, a=-2.0, b=2.0)
        self._bias_cache: dict = {}

    # -- bias -------------------------------------------------------------------------------
    def relative_position_bias(self, n: int) -> torch.Tensor:
        """``[heads, n, n]`` bias gathered from the table (MONAI's ``index[:n, :n]``)."""
        table = self.relative_position_bias_table
        index = self.relative_position_index[:n, :n].reshape(-1)
        if _needs_own_backward(table):
            rows = _TableRows.apply(table, index, *self._table_grad_plan(n, index, table.shape[0]))
        else:
            rows = table[index]
        return rows.view(n, n, -1).permute(2, 0, 1)

    def _table_grad_plan(self, n: int, index: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``(order, counts)`` of ``index`` for :class:`_TableRows`, cached per ``n`` and index buffer."""
        buffer = self.relative_position_index
        key = ("table_grad", n, size, buffer.data_ptr(), buffer._version, str(buffer.device))
        plan = self._bias_cache.get(key)
        if plan is None:
            plan = (torch.argsort(index, stable=True), torch.bincount(index, minlength=size))
            self._bias_cache[key] = plan
        return plan

    def _combined(self, n: int, masks: torch.Tensor | None, key) -> torch.Tensor:
        """``bias + mask`` as ``[G, heads, n, n]`` (G = 1 without mask); cached when no grad flows."""
        table = self.relative_position_bias_table
        cacheable = not (torch.is_grad_enabled() and table.requires_grad) and not torch.jit.is_tracing()
        if cacheable:
            ckey = (key, n, table.data_ptr(), table._version, table.dtype, self.relative_position_index._version)
            hit = self._bias_cache.get(ckey)
            if hit is not None:
                return hit
        bias = self.relative_position_bias(n)
        out = bias.unsqueeze(0) if masks is None else bias.unsqueeze(0) + masks.unsqueeze(1).to(bias.dtype)
        if cacheable:
            if len(self._bias_cache) > 8:
                self._bias_cache.clear()
            self._bias_cache[ckey] = out.contiguous()
            return self._bias_cache[ckey]
        return out

    def _drop(self) -> float:
        return self.attn_drop_p if self.training else 0.0

    # -- MONAI-compatible call on partitioned windows ------------------------------------------
    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """``x``: ``[B*nW, n, C]`` windows; ``mask``: ``[nW, n, n]`` additive or None (as MONAI)."""
        b, n, c = x.shape
        h = self.num_heads
        qkv = self.qkv(x).view(b, n, 3, h, c // h)
        if _trains_bias(self.relative_position_bias_table, self._drop()):
            q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # [B*nW, heads, n, hd]; window m takes mask[m % nW]
            out = _BiasedAttention.apply(q, k, v, self.relative_position_bias(n), mask, self.scale)
            out = out.transpose(1, 2).reshape(b, n, c)
        elif mask is None:
            q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
            out = attention(q, k, v, bias=self._combined(n, None, None), scale=self.scale, dropout_p=self._drop())
            out = out.transpose(1, 2).reshape(b, n, c)
        else:
            nw = mask.shape[0]
            # [B, nW*heads, n, hd] so that the [nW*heads, n, n] bias+mask broadcasts over the batch
            qkv = qkv.view(b // nw, nw, n, 3, h, c // h).permute(3, 0, 1, 4, 2, 5)
            q, k, v = qkv.reshape(3, b // nw, nw * h, n, c // h).unbind(0)
            comb = self._combined(n, mask, ("mask", mask.data_ptr(), mask._version, tuple(mask.shape)))
            out = attention(q, k, v, bias=comb.reshape(1, nw * h, n, n), scale=self.scale, dropout_p=self._drop())
            out = out.view(b // nw, nw, h, n, c // h).permute(0, 1, 3, 2, 4).reshape(b, n, c)
        return self.proj_drop(self.proj(out))

    # -- whole shifted-window step on a grid ----------------------------------------------------
    def forward_grid(self, x: torch.Tensor, shift_size: Sequence[int] | int = 0,
                     window_size: Sequence[int] | None = None) -> torch.Tensor:
        """Attention over (shifted) windows of a channels-last grid ``[B, *S, C] -> [B, *S, C]``.

        Equals MONAI's pad -> roll(-shift) -> partition -> attention(mask) -> reverse ->
        roll(+shift) -> crop, done as one gather before and one gather after attention.
        """
        b, *spatial, c = x.shape
        nd = len(spatial)
        plan = window_plan(spatial, window_size or self.window_size, _tuple(shift_size, nd), x.device)
        h, n = self.num_heads, plan.tokens
        fwd, inv, fwd_adj, inv_adj, pad_slots, pad_rows = plan.batched_indices(b)
        tokens = x.reshape(b, plan.length, c)
        # one zero row per batch item stands for every padded position
        tokens = torch.cat([tokens, tokens.new_zeros(b, 1, c)], dim=1)
        qkv = self.qkv(tokens).view(b * (plan.length + 1), 3 * c)
        windows = _gather_rows(qkv, fwd, fwd_adj, pad_slots, pad_rows).view(plan.n_windows, b, n, 3, h, c // h)
        masks = plan.group_masks
        trains_bias = _trains_bias(self.relative_position_bias_table, self._drop())
        if trains_bias:  # the bias needs a gradient: keep it apart from the constant per-pattern masks
            bias = self.relative_position_bias(n)
        else:
            comb = self._combined(n, masks, ("plan", plan.spatial, plan.window, plan.shift))
        outs = []
        # split (not slicing): its backward is one concatenation instead of a zero-filled
        # full-size gradient per pattern
        parts = windows.split(plan.group_sizes, 0) if len(plan.group_sizes) > 1 else (windows,)
        for g, size in enumerate(plan.group_sizes):  # <= 2**ndim mask patterns, not windows
            part = parts[g].reshape(size * b, n, 3, h, c // h)
            q, k, v = part.permute(2, 0, 3, 1, 4).unbind(0)  # [size*B, heads, n, hd] strided views
            if trains_bias:
                o = _BiasedAttention.apply(q, k, v, bias, None if masks is None else masks[g:g + 1], self.scale)
            else:
                o = attention(q, k, v, bias=comb[g:g + 1], scale=self.scale, dropout_p=self._drop())
            outs.append(o.transpose(1, 2).reshape(size * b * n, c))
        out = outs[0] if len(outs) == 1 else torch.cat(outs, 0)
        out = _gather_rows(out, inv, inv_adj, pad_grad_row=True).view(b, *spatial, c)
        return self.proj_drop(self.proj(out))


__all__ = [
    "MASK_VALUE",
    "WindowAttention",
    "WindowPlan",
    "clear_window_caches",
    "effective_window",
    "pad_to_window",
    "padded_shape",
    "relative_position_index",
    "shifted_window_mask",
    "window_partition",
    "window_plan",
    "window_reverse",
]
