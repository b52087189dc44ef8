"""First-order linear recurrence ``h_t = a_t ⊙ h_{t-1} + b_t`` computed chunk-parallel, without a loop over tokens.

``linear_scan(a, b, initial=None, chunk_size=16)``: ``a, b [..., L, S]`` (time on dim -2), ``initial``
``[..., S]`` (``h_{-1}``, zero by default) -> ``h [..., L, S]``. Inside chunks of ``chunk_size`` steps the
recurrence is solved by recursive doubling (``log2(chunk_size)`` vectorised passes); the states at the
chunk ends form the same problem ``chunk_size`` times shorter, solved recursively; one broadcast product
then carries each chunk's incoming state into it. Work ``O(L·S·log chunk_size)``; only products of the
``a`` (decays, ``|a| <= 1`` in every use here) and sums are formed -- no ``exp`` of a cumulative log
decay and no division, so nothing overflows however long a chunk is or however strong its decay.

The backward is the same recurrence run backwards (``g_t = ∂h_t + a_{t+1} g_{t+1}``), so autograd keeps
only ``a`` and ``h``, not the doubling passes' intermediates.

>>> import torch
>>> a, b = torch.rand(2, 50, 4), torch.randn(2, 50, 4)
>>> linear_scan(a, b).shape
torch.Size([2, 50, 4])
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .inference import capturing

# decays below this count as zero in the scans that ask for it (``flush``): every product of two kept
# decays is then >= 1e-36, a normal float32, so no step computes with denormals (10-100x slower on x86)
TINY_DECAY = 1e-18


# the chunked mixers factorise a chunk's decays as exp(b_t) · exp(-b_s) (matmuls, few passes) only while the
# chunk's total log-decay stays within this (8x for float64): exp(-b) <= e^40 cannot overflow float32. Chunks
# with a stronger decay take an overflow-free path (the doubling scan, or GLA's pairwise differences).
FACTOR_SPAN = 40.0


def factor_span(dtype: torch.dtype) -> float:
    """The largest total log-decay a chunk may span and still be factorised, for ``dtype``."""
    return FACTOR_SPAN if dtype != torch.float64 else 8 * FACTOR_SPAN


def _local(a: torch.Tensor, b: torch.Tensor, flush: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Recursive doubling along dim -2: (cumulative product of ``a``, ``h`` started from zero)."""
    step, n = 1, a.shape[-2]
    traced = torch.is_grad_enabled() and (a.requires_grad or b.requires_grad)  # an export records these ops
    while step < n:
        if traced:
            nb = torch.cat((b[..., :step, :], torch.addcmul(b[..., step:, :], a[..., step:, :], b[..., :-step, :])), -2)
            na = torch.cat((a[..., :step, :], a[..., step:, :] * a[..., :-step, :]), -2)
        else:  # written in place of the concatenation: one pass less
            nb, na = torch.empty_like(b), torch.empty_like(a)
            nb[..., :step, :] = b[..., :step, :]
            torch.addcmul(b[..., step:, :], a[..., step:, :], b[..., :-step, :], out=nb[..., step:, :])
            na[..., :step, :] = a[..., :step, :]
            torch.mul(a[..., step:, :], a[..., :-step, :], out=na[..., step:, :])
        if flush:
            na = na.masked_fill(na < TINY_DECAY, 0.0)
        a, b = na, nb
        step *= 2
    return a, b


def _scan(a: torch.Tensor, b: torch.Tensor, chunk: int, flush: bool = False) -> torch.Tensor:
    """``h`` from a zero initial state (no autograd); ``flush`` zeroes cumulative decays below ``TINY_DECAY``."""
    n = a.shape[-2]
    if n <= chunk:
        return _local(a, b, flush)[1]
    pad = (-n) % chunk
    if pad:
        a = F.pad(a, (0, 0, 0, pad), value=1.0)
        b = F.pad(b, (0, 0, 0, pad))
    lead, s = a.shape[:-2], a.shape[-1]
    groups = (n + pad) // chunk
    decay, h = _local(a.reshape(*lead, groups, chunk, s), b.reshape(*lead, groups, chunk, s), flush)
    ends = _scan(decay[..., -1, :], h[..., -1, :], chunk, flush)  # [..., groups, S]: the state after each chunk
    entering = torch.cat((torch.zeros_like(ends[..., :1, :]), ends[..., :-1, :]), -2)
    h = torch.addcmul(h, decay, entering.unsqueeze(-2))
    return h.reshape(*lead, groups * chunk, s)[..., :n, :]


def reverse_scan(a: torch.Tensor, b: torch.Tensor, chunk: int, flush: bool = False) -> torch.Tensor:
    """``g_t = b_t + a_{t+1} g_{t+1}`` along dim -2 (the adjoint of the forward scan; no autograd)."""
    a_next = torch.cat((a[..., 1:, :], torch.zeros_like(a[..., :1, :])), -2)
    return _scan(a_next.flip(-2), b.flip(-2), chunk, flush).flip(-2)


class _LinearScan(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a, b, chunk):
        h = _scan(a, b, chunk)
        ctx.save_for_backward(a, h)
        ctx.chunk = chunk
        return h

    @staticmethod
    def backward(ctx, grad_h):
        a, h = ctx.saved_tensors
        g = reverse_scan(a, grad_h, ctx.chunk)
        h_prev = torch.cat((torch.zeros_like(h[..., :1, :]), h[..., :-1, :]), -2)
        grad_a = g * h_prev if ctx.needs_input_grad[0] else None
        return grad_a, g, None


def linear_scan(a: torch.Tensor, b: torch.Tensor, initial: torch.Tensor | None = None,
                chunk_size: int = 16) -> torch.Tensor:
    """``h_t = a_t h_{t-1} + b_t`` along dim -2 of ``a, b [..., L, S]``; ``initial`` is ``h_{-1} [..., S]``."""
    if a.shape != b.shape:
        a, b = torch.broadcast_tensors(a, b)
    if a.shape[-2] == 0:
        return b
    if initial is not None:  # fold h_{-1} into the first input: b_0 + a_0 h_{-1}
        b = torch.cat((b[..., :1, :] + a[..., :1, :] * initial.unsqueeze(-2), b[..., 1:, :]), -2)
    chunk = max(2, int(chunk_size))
    if capturing():
        return _scan(a, b, chunk)  # exporters and torch.compile record the plain ops
    return _LinearScan.apply(a.contiguous(), b.contiguous(), chunk)


__all__ = ["FACTOR_SPAN", "TINY_DECAY", "factor_span", "linear_scan", "reverse_scan"]
