"""Shifted-window geometry for 2D/3D grids: partition and reverse, padding, shift masks, relative-position index, plans.

Grids are channels-last, ``[B, *spatial, C]`` with 2 or 3 spatial dims. Nothing here has weights:
masks and plans depend only on the grid shape, window, shift and device, so they are built once
and cached (:func:`clear_window_caches` drops them). The attention module that uses them is
:class:`sigplex.core.ops.window.WindowAttention`.
"""
from __future__ import annotations

import math
from collections import OrderedDict
from typing import Sequence

import torch
import torch.nn.functional as F

# Added between tokens of different regions of a shifted window. MONAI and the Swin paper add -100:
# the same attention weights (exp(-100) is 4e-44 of a row's sum, below float32's and float64's
# resolution), but float32 exp of scores near -100 gives denormal numbers, which CPUs compute
# far more slowly than normal ones. exp(-1e4) is exactly 0.
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


def per_dim(v, n: int) -> tuple[int, ...]:
    """``v`` as ``n`` ints: an int repeated, or a sequence of exactly ``n`` values."""
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
    return _cache_get(_MASK_CACHE, key, lambda: build_shift_mask(padded, window, shift, device))


def build_shift_mask(padded: Sequence[int], window: Sequence[int], shift: Sequence[int], device=None) -> torch.Tensor:
    """:func:`shifted_window_mask` without the cache: shape-only ops, so ``torch.compile`` traces it."""
    labels = _region_labels(padded, window, shift, device)
    windows = window_partition(labels[None, ..., None], window)[..., 0]  # [nW, N]
    return _mask_from_labels(windows)


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
    window, shift = effective_window(spatial, per_dim(window_size, len(spatial)), per_dim(shift_size, len(spatial)))
    device = torch.device(device if device is not None else "cpu")
    key = (spatial, window, shift, str(device))
    return _cache_get(_PLAN_CACHE, key, lambda: WindowPlan(spatial, window, shift, device))


__all__ = [
    "MASK_VALUE",
    "WindowPlan",
    "build_shift_mask",
    "clear_window_caches",
    "effective_window",
    "pad_to_window",
    "padded_shape",
    "per_dim",
    "relative_position_index",
    "shifted_window_mask",
    "window_partition",
    "window_plan",
    "window_reverse",
]
