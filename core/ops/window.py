"""Shifted-window attention for 2D and 3D grids (Swin): the attention module, and the entry to its geometry and kernels.

Tensors on a grid are channels-last: ``[B, *spatial, C]`` with 2 or 3 spatial dims. The code is
in three files, imports pointing one way (this module imports the other two, they import
neither this module nor each other); every name below is importable from here:

- :mod:`sigplex.core.ops.window_geometry` — pure functions and cached plans.
  :func:`window_partition` / :func:`window_reverse` (``[B, *S, C] <-> [B*nW, N, C]`` by one view
  + permute; sizes must be multiples of the window, :func:`pad_to_window` pads),
  :func:`effective_window` (MONAI's rule: a window no larger than the grid, no shift there),
  :func:`relative_position_index` (the ``[N, N]`` index into the ``(2w-1)^d`` bias table),
  :func:`shifted_window_mask` (the ``[nW, N, N]`` additive mask of a cyclically shifted grid:
  0 within a region, ``MASK_VALUE`` = -1e4 across, where MONAI adds -100; built once per
  (padded shape, window, shift, device) and cached) and :func:`window_plan` (everything a
  shifted-window layer needs for one grid, cached: a gather index fusing pad + cyclic shift +
  partition in one ``index_select``, its inverse (reverse + unshift + crop in one), and the
  windows grouped by mask pattern with one ``[N, N]`` mask per pattern). Partition, index and
  mask are checked against naive references in ``tests/core/test_window_attention.py``.
- :mod:`sigplex.core.ops.window_autograd` — the autograd Functions with hand-written backwards.

:class:`WindowAttention` has MONAI's parameter names and shapes (``qkv``, ``proj``,
``relative_position_bias_table``, buffer ``relative_position_index``) so that weights of
``monai.networks.nets.swin_unetr.WindowAttention`` load unchanged. ``forward(x, mask)`` is
MONAI's call on pre-partitioned windows; :meth:`WindowAttention.forward_grid` does the whole
shifted-window step on a grid and is what :mod:`sigplex.core.backbones.swin` uses. Both go
through :func:`sigplex.core.ops.attention.attention` (SDPA unless ``SIGPLEX_FUSED_ATTN=0``).

Masks in :meth:`~WindowAttention.forward_grid`: a window's mask depends only on whether it is
the last window along each shifted dim, so at most ``2**ndim`` patterns exist (8 in 3D, 4 in
2D; one, and no mask, when nothing is shifted), and the plan orders the windows by pattern.
When the bias table needs no gradient, ``bias + mask`` is ``[n_patterns, heads, N, N]``, made
once and cached (with attention dropout in training it is made per call, through autograd),
and one slice of it serves every window of a pattern and every batch item. When the table
trains without attention dropout, the bias and the constant masks stay apart and
:class:`~sigplex.core.ops.window_autograd.BiasedAttention` adds them itself, per pattern in the
forward and per block of windows in the backward. Either way nothing per window or per batch
item is materialised.

>>> import torch
>>> attn = WindowAttention(dim=12, num_heads=3, window_size=(7, 7, 7), qkv_bias=True)
>>> x = torch.randn(2, 9, 10, 11, 12)            # B, D, H, W, C (sizes need padding)
>>> attn.forward_grid(x, shift_size=(3, 3, 3)).shape
torch.Size([2, 9, 10, 11, 12])
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

from .attention import attention
from .window_autograd import TableRows, biased_attention, gather_rows, needs_own_backward, uses_biased_attention
from .window_geometry import (
    MASK_VALUE,
    WindowPlan,
    build_shift_mask,
    clear_window_caches,
    effective_window,
    pad_to_window,
    padded_shape,
    per_dim,
    relative_position_index,
    shifted_window_mask,
    window_partition,
    window_plan,
    window_reverse,
)

# Bytes of one block of [windows, heads, N, N] scores in BiasedAttention, small enough to stay in
# cache between the ops that make and use them: a backward in such blocks beats one on the whole
# tensor at once. WindowAttention passes the value this name holds at each call.
BLOCK_BYTES = 4 * 2 ** 20


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
        if needs_own_backward(table):
            rows = TableRows.apply(table, index, *self._table_grad_plan(n, index, table.shape[0]))
        else:
            rows = table[index]
        return rows.view(n, n, -1).permute(2, 0, 1)

    def _table_grad_plan(self, n: int, index: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``(order, counts)`` of ``index`` for :class:`TableRows`, cached per ``n`` and index buffer."""
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
        cacheable = (not (torch.is_grad_enabled() and table.requires_grad) and not torch.jit.is_tracing()
                     and not torch.compiler.is_compiling())
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
        if uses_biased_attention(self.relative_position_bias_table, self._drop()):
            q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # [B*nW, heads, n, hd]; window m takes mask[m % nW]
            out = biased_attention(q, k, v, self.relative_position_bias(n), mask, self.scale, BLOCK_BYTES)
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
            key = None if torch.compiler.is_compiling() else ("mask", mask.data_ptr(), mask._version, tuple(mask.shape))
            comb = self._combined(n, mask, key)
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
        if torch.compiler.is_compiling():
            return self._forward_grid_rolled(x, per_dim(shift_size, nd), window_size or self.window_size)
        plan = window_plan(spatial, window_size or self.window_size, per_dim(shift_size, nd), x.device)
        h, n = self.num_heads, plan.tokens
        fwd, inv, fwd_adj, inv_adj, pad_slots, pad_rows = plan.batched_indices(b)
        tokens = x.reshape(b, plan.length, c)
        # one zero row per batch item stands for every padded position
        tokens = torch.cat([tokens, tokens.new_zeros(b, 1, c)], dim=1)
        qkv = self.qkv(tokens).view(b * (plan.length + 1), 3 * c)
        windows = gather_rows(qkv, fwd, fwd_adj, pad_slots, pad_rows).view(plan.n_windows, b, n, 3, h, c // h)
        masks = plan.group_masks
        trains_bias = uses_biased_attention(self.relative_position_bias_table, self._drop())
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
                o = biased_attention(q, k, v, bias, None if masks is None else masks[g:g + 1], self.scale,
                                     BLOCK_BYTES)
            else:
                o = attention(q, k, v, bias=comb[g:g + 1], scale=self.scale, dropout_p=self._drop())
            outs.append(o.transpose(1, 2).reshape(size * b * n, c))
        out = outs[0] if len(outs) == 1 else torch.cat(outs, 0)
        out = gather_rows(out, inv, inv_adj, pad_grad_row=True).view(b, *spatial, c)
        return self.proj_drop(self.proj(out))

    def _forward_grid_rolled(self, x: torch.Tensor, shift_size: Sequence[int], window_size: Sequence[int]):
        """:meth:`forward_grid` as MONAI computes it (pad, roll, partition, attend, reverse, roll, crop).

        The path ``torch.compile`` traces: shape-only ops that Inductor fuses, where the plan's
        gathers and caches of the eager path would break the graph.
        """
        spatial = tuple(x.shape[1:-1])
        window, shift = effective_window(spatial, per_dim(window_size, len(spatial)), shift_size)
        grid = pad_to_window(x, window)
        padded = tuple(grid.shape[1:-1])
        dims = tuple(range(1, len(spatial) + 1))
        mask = None
        if any(shift):
            grid = torch.roll(grid, tuple(-s for s in shift), dims)
            mask = build_shift_mask(padded, window, shift, x.device)
        out = window_reverse(self.forward(window_partition(grid, window), mask), window, padded)
        if any(shift):
            out = torch.roll(out, shift, dims)
        return out[tuple(slice(None, s) for s in (out.shape[0], *spatial))]


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
