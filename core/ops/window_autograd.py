"""Autograd Functions of shifted-window attention: hand-written backwards without scatters or full-size scores.

- :class:`GatherRows`: a row gather whose backward is a gather too (the pad + shift + partition
  of :meth:`sigplex.core.ops.window.WindowAttention.forward_grid` and its inverse).
- :class:`TableRows`: the relative-position bias lookup, its backward a sorted segment sum.
- :class:`BiasedAttention`: attention with a trainable bias and constant masks, its backward
  recomputing the probabilities a cache-sized block of windows at a time.

:func:`gather_rows` and :func:`uses_biased_attention` say when the module takes them: in eager mode,
on the CPU, when a gradient flows (and, for :class:`BiasedAttention`, without attention dropout); other
devices take autograd's own backwards (:func:`sigplex.core.device.cpu_fast_path`).
"""
from __future__ import annotations

from typing import Optional

import torch

from ..device import cpu_fast_path
from .attention import attention


class GatherRows(torch.autograd.Function):
    """``src.index_select(0, index)`` whose backward is a gather too, not a scatter-add.

    Every source row is read by exactly one output row (``adjoint`` maps it back), except the
    pad rows ``pad_rows`` (one per batch item) which are read by the slots ``pad_slots``
    ``[B, P]``: their gradient is summed explicitly. ``pad_grad_row``: outputs that are
    padding (adjoint = ``len(grad)``) receive zero gradient. The default ``index_select``
    backward is an ``index_add`` into zeros, a scatter, which is much slower on CPU.
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


def needs_own_backward(t: torch.Tensor, custom_op: bool = False) -> bool:
    """Whether ``t`` gets a gradient through one of this module's autograd Functions (eager, CPU only; with
    ``custom_op``, also under ``torch.compile``, for the kernels registered as custom ops)."""
    return (torch.is_grad_enabled() and t.requires_grad
            and cpu_fast_path(t, "window_backward", custom_op=custom_op)
            and not torch.jit.is_tracing() and not torch.jit.is_scripting())


def gather_rows(src, index, adjoint, pad_slots=None, pad_rows=None, pad_grad_row=False):
    """``src.index_select(0, index)``, through :class:`GatherRows` when ``src`` needs a gradient."""
    if needs_own_backward(src):
        return GatherRows.apply(src, index, adjoint, pad_slots, pad_rows, pad_grad_row)
    return src.index_select(0, index)


class TableRows(torch.autograd.Function):
    """``table.index_select(0, index)`` whose backward sums the gradient by sorted segments.

    ``order`` sorts ``index`` and ``counts[r]`` is how often table row ``r`` is read, so the
    table gradient is one gather and one segment sum: no scatter, unlike autograd's own backward
    (``index_put_`` with accumulate), which is slower. Sums run in another order than
    index_put's (float rounding only).
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


class BiasedAttention(torch.autograd.Function):
    """Training-time window attention ``softmax(q k^T * scale + bias + mask[m % Mm]) v``.

    ``q, k, v``: ``[M, heads, N, hd]`` (M = windows x batch); ``bias``: ``[heads, N, N]``, the
    learned relative-position bias, which needs a gradient; ``mask``: ``[Mm, N, N]`` constant
    additive masks, window ``m`` taking ``mask[m % Mm]`` (MONAI's window order), or None;
    ``block_bytes``: the size of a block of ``[windows, heads, N, N]`` scores (see below).

    The forward is SDPA's fused kernel (q, k, v and the output are kept): one call when one
    mask serves every window; with a mask per window, one call per block of windows, so that
    ``bias + mask`` is never made for all windows at once. The backward recomputes the
    probabilities a block of windows at a time (``block_bytes`` of scores), so that each
    block's scores, probabilities and their gradient stay in cache across the five products,
    and sums the bias gradient per block into ``[heads, N, N]``: nothing of size
    ``M x heads x N x N`` is ever held. Blocks tile the work as a fused kernel would; they are
    not one window each.
    """

    @staticmethod
    def forward(ctx, q, k, v, bias, mask, scale, block_bytes):
        q, k, v = q.contiguous(), k.contiguous(), v.contiguous()  # blocks below slice them: no copy per block
        out = _attend(q, k, v, bias, mask, scale, block_bytes)
        ctx.save_for_backward(q, k, v, bias, mask, out)
        ctx.scale = scale
        ctx.block_bytes = block_bytes
        return out

    @staticmethod
    def backward(ctx, dout):
        q, k, v, bias, mask, out = ctx.saved_tensors
        grads = _attend_backward(q, k, v, bias, mask, out, dout, ctx.scale, ctx.block_bytes)
        return (*grads, None, None, None)


def _attend(q, k, v, bias, mask, scale: float, block_bytes: int) -> torch.Tensor:
    """:class:`BiasedAttention`'s forward on contiguous ``q, k, v`` (no graph is recorded)."""
    m, h, n, d = q.shape
    with torch.no_grad():
        if mask is None or mask.shape[0] == 1:
            # detached: SDPA sends a mask that requires grad to its math path, even under no_grad
            additive = bias.detach() if mask is None else bias.detach() + mask.to(bias.dtype)
            return attention(q, k, v, bias=additive.to(q.dtype), scale=scale)
        out = q.new_empty(m, h, n, d)  # a mask per window: bias + mask made a block at a time, as in the backward
        block = _block_windows(q, block_bytes)
        for i in range(0, m, block):
            j = min(i + block, m)
            additive = bias.detach().unsqueeze(0) + _mask_rows(mask, i, j).to(bias.dtype).unsqueeze(1)
            out[i:j] = attention(q[i:j], k[i:j], v[i:j], bias=additive.to(q.dtype), scale=scale)
        return out


def _attend_backward(q, k, v, bias, mask, out, dout, scale: float, block_bytes: int):
    """``(dq, dk, dv, dbias)`` of :class:`BiasedAttention`, recomputing probabilities a block at a time."""
    dout = dout.contiguous()
    m, h, n, _ = q.shape
    dq, dk, dv = torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)
    acc = torch.float64 if q.dtype == torch.float64 else torch.float32
    dbias = torch.zeros(h, n, n, dtype=acc, device=q.device)
    delta = (dout * out).sum(-1, keepdim=True)
    block = _block_windows(q, block_bytes)
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
    return dq.mul_(scale), dk.mul_(scale), dv, dbias.to(bias.dtype)


# The same kernel as custom ops, so that torch.compile keeps it whole (one opaque call with a shape-only
# fake kernel) instead of tracing SDPA's math path and its N x N scores for every window.
@torch.library.custom_op("sigplex::biased_attention", mutates_args=())
def biased_attention_op(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: torch.Tensor,
                        mask: Optional[torch.Tensor], scale: float, block_bytes: int) -> torch.Tensor:
    return _attend(q.contiguous(), k.contiguous(), v.contiguous(), bias, mask, scale, block_bytes)


@biased_attention_op.register_fake
def _(q, k, v, bias, mask, scale, block_bytes):
    return q.new_empty(q.shape)


@torch.library.custom_op("sigplex::biased_attention_backward", mutates_args=())
def biased_attention_backward_op(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: torch.Tensor,
                                 mask: Optional[torch.Tensor], out: torch.Tensor, dout: torch.Tensor, scale: float,
                                 block_bytes: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    grads = _attend_backward(q.contiguous(), k.contiguous(), v.contiguous(), bias, mask, out, dout, scale, block_bytes)
    return tuple(g.contiguous() for g in grads)


@biased_attention_backward_op.register_fake
def _(q, k, v, bias, mask, out, dout, scale, block_bytes):
    return q.new_empty(q.shape), k.new_empty(k.shape), v.new_empty(v.shape), bias.new_empty(bias.shape)


def _op_setup_context(ctx, inputs, output):
    q, k, v, bias, mask, scale, block_bytes = inputs
    ctx.save_for_backward(q, k, v, bias, mask, output)
    ctx.scale, ctx.block_bytes = scale, block_bytes


def _op_backward(ctx, dout):
    q, k, v, bias, mask, out = ctx.saved_tensors
    grads = biased_attention_backward_op(q, k, v, bias, mask, out, dout, ctx.scale, ctx.block_bytes)
    return (*grads, None, None, None)


biased_attention_op.register_autograd(_op_backward, setup_context=_op_setup_context)


def biased_attention(q, k, v, bias, mask, scale: float, block_bytes: int) -> torch.Tensor:
    """:class:`BiasedAttention` in eager mode; under ``torch.compile``, the same kernel as one custom op."""
    if torch.compiler.is_compiling():
        return biased_attention_op(q.contiguous(), k.contiguous(), v.contiguous(), bias, mask, scale, block_bytes)
    return BiasedAttention.apply(q, k, v, bias, mask, scale, block_bytes)


def _block_windows(q: torch.Tensor, block_bytes: int) -> int:
    """Windows per block: ``block_bytes`` of ``[windows, heads, N, N]`` scores."""
    _, h, n, _ = q.shape
    return max(1, block_bytes // (h * n * n * q.element_size()))


def _mask_rows(mask: torch.Tensor, start: int, stop: int) -> torch.Tensor:
    """``mask[m % Mm]`` for windows ``start .. stop-1``: ``[stop - start, N, N]`` (or ``[1, N, N]``)."""
    period = mask.shape[0]
    if period == 1:
        return mask
    if start // period == (stop - 1) // period:
        return mask[start % period:(stop - 1) % period + 1]
    return mask.index_select(0, torch.arange(start, stop, device=mask.device) % period)


def uses_biased_attention(table: torch.Tensor, dropout_p: float) -> bool:
    """Whether window attention takes :func:`biased_attention` (the table needs a gradient); under
    ``torch.compile`` too, where it is a custom op Inductor calls as it is."""
    return dropout_p == 0.0 and needs_own_backward(table, custom_op=True)


__all__ = ["BiasedAttention", "GatherRows", "TableRows", "biased_attention", "gather_rows", "needs_own_backward",
           "uses_biased_attention"]
