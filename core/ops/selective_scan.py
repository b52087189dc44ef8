"""Selective scan (Mamba; the token mixer of MambaMixer): a diagonal state space whose Δ, B, C depend on the input.

Per channel ``d`` and state ``n``::

    h_t[d, n] = exp(Δ_t[d] A[d, n]) h_{t-1}[d, n] + Δ_t[d] B_t[n] u_t[d]
    y_t[d]    = Σ_n C_t[n] h_t[d, n] + D[d] u_t[d]        (then ⊙ silu(z_t[d]) when z is given)

Shapes follow mamba-ssm's ``selective_scan_fn``: ``u, delta, z [batch, D, L]``, ``A [D, N]``,
``B, C [batch, N, L]``, ``D, delta_bias [D]``, states ``[batch, D, N]``. :func:`selective_scan` computes
every step at once with :func:`~sigplex.core.ops.scan.linear_scan` (chunk-parallel, no loop over
tokens); :func:`selective_scan_step` advances one step for streaming inference, and a full pass
with ``return_last_state=True`` hands over the state to continue from.

>>> import torch
>>> u, delta = torch.randn(2, 8, 30), torch.rand(2, 8, 30)
>>> A, B, C = -torch.rand(8, 4), torch.randn(2, 4, 30), torch.randn(2, 4, 30)
>>> y, state = selective_scan(u, delta, A, B, C, return_last_state=True)
>>> y.shape, state.shape
(torch.Size([2, 8, 30]), torch.Size([2, 8, 4]))
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .chunks import token_chunks
from .inference import capturing
from .scan import TINY_DECAY, _scan, factor_span, reverse_scan

_LOG_TINY = math.log(TINY_DECAY)
# tokens per block: about this many [batch, D, block, N] elements, so a block's working set stays in cache
BLOCK_ELEMENTS = 1 << 18
# blocks whose chunks' total log-decay |A|·ΣΔ stays within scan.factor_span take the factorised form
# h_t = p_t (H + Σ_s drive_s / p_s), p = exp(cumulative log-decay from the chunk start), ~3x fewer passes than
# the doubling scan, which the others take.


def _decay(delta: torch.Tensor, A: torch.Tensor) -> torch.Tensor:
    """``exp(Δ A)`` ``[batch, D, T, N]``, with decays below ``TINY_DECAY`` set to zero (no denormals)."""
    x = delta[..., None] * A[:, None, :]
    return torch.exp(x.clamp_min(_LOG_TINY)).masked_fill(x < _LOG_TINY, 0.0)


def _block_states(u, delta, A, B, h_in, chunk):
    """One block: the decays and the states ``h [batch, D, T, N]`` from the state ``h_in`` before it."""
    decay = _decay(delta, A)
    drive = (delta * u)[..., None] * B.transpose(1, 2)[:, None]
    first = torch.addcmul(drive[..., :1, :], decay[..., :1, :], h_in[..., None, :])
    drive = torch.cat((first, drive[..., 1:, :]), -2)
    return decay, _scan(decay, drive, chunk, flush=True)


def _blocks(length: int, u: torch.Tensor, A: torch.Tensor, chunk: int) -> list[tuple[int, int]]:
    size = max(chunk, BLOCK_ELEMENTS // max(1, u.shape[0] * A.numel()) // chunk * chunk)
    return [(s, min(s + size, length)) for s in range(0, length, size)]


def _factorisable(delta: torch.Tensor, A: torch.Tensor, chunk: int) -> bool:
    """Whether every chunk's decay ``exp(A·ΣΔ)`` stays above ``exp(-factor_span)`` (so ``1 / decay`` is finite)."""
    (chunks,), _ = token_chunks((delta.abs(),), chunk, dim=-1)  # |Δ|: a negative Δ (growth) is bounded too
    span = chunks.sum(-1).amax((0, 2)) * A.abs().amax(-1)
    return bool(span.max() <= factor_span(delta.dtype))


def _chunks(u, delta, A, B, C, chunk):
    """Zero-padded chunk views: Δ and Δ·u ``[b, D, g, q]``, B and C ``[b, 1, g, q, N]``, log-decays from
    the chunk start ``[b, D, g, q, N]``."""
    (dl, du, bc, cc), _ = token_chunks((delta, delta * u, B, C), chunk, dim=-1)
    bc, cc = (t.permute(0, 2, 3, 1)[:, None].contiguous() for t in (bc, cc))
    log_p = dl.cumsum(-1)[..., None] * A[:, None, None, :]
    return dl, du, bc, cc, log_p


def _factor_states(du, bc, p, h_in, chunk):
    """``h = p ⊙ (s + H)``: the drive, ``s`` (cumulative drive over decay) and ``H`` (state entering each chunk)."""
    drive = du[..., None] * bc
    s = (drive / p).cumsum(-2)
    p_end = p[..., -1, :]
    after = _scan(p_end, p_end * torch.cat((s[..., :1, -1, :] + h_in[..., None, :], s[..., 1:, -1, :]), -2), chunk)
    entering = torch.cat((h_in[..., None, :], after[..., :-1, :]), -2)
    return drive, s + entering[..., None, :], after[..., -1, :]


def _forward_block(u, delta, A, B, C, h_in, chunk, factor):
    """One block's ``y [b, D, T]`` (without D and z) and its last state."""
    if not factor:
        _, hs = _block_states(u, delta, A, B, h_in, chunk)
        return (hs * C.transpose(1, 2)[:, None]).sum(-1), hs[..., -1, :]
    _, du, bc, cc, log_p = _chunks(u, delta, A, B, C, chunk)
    p = torch.exp(log_p)
    _, hsum, last = _factor_states(du, bc, p, h_in, chunk)
    y = (hsum * p * cc).sum(-1).flatten(-2)
    return y[..., :u.shape[-1]], last


def _backward_block(u, delta, A, B, C, h_in, gy, carry, chunk, factor):
    """Gradients of one block for u, Δ, A, B, C and the state entering it, given ``carry`` = dL/dh at its end."""
    n = u.shape[-1]
    if not factor:
        bt, ct = B.transpose(1, 2)[:, None], C.transpose(1, 2)[:, None]
        decay, hs = _block_states(u, delta, A, B, h_in, chunk)
        gh = gy[..., None] * ct
        gh[..., -1, :] += carry
        g = reverse_scan(decay, gh, chunk, flush=True)  # dL/dh_t, [b, D, T, N]
        h_prev = torch.cat((h_in[..., None, :], hs[..., :-1, :]), -2)
        g_log = g * h_prev * decay  # dL/d(Δ_t A)
        g_c = (gy[..., None] * hs).sum(1).transpose(1, 2)
        g_b = (g * (delta * u)[..., None]).sum(1).transpose(1, 2)
        g_du, g_a = (g * bt).sum(-1), (g_log * delta[..., None]).sum((0, 2))
        return g_du * delta, (g_log * A[:, None, :]).sum(-1) + g_du * u, g_a, g_b, g_c, decay[..., 0, :] * g[..., 0, :]
    dl, du, bc, cc, log_p = _chunks(u, delta, A, B, C, chunk)
    p = torch.exp(log_p)
    drive, hsum, _ = _factor_states(du, bc, p, h_in, chunk)
    h = hsum * p
    (gyc, uc), _ = token_chunks((gy, u), chunk, dim=-1)
    r = (p * gyc[..., None] * cc).flip(-2).cumsum(-2).flip(-2)  # Σ_{s >= t in the chunk} p_s ∂h_s
    p_end = p[..., -1, :]
    # λ_k, dL/dh at the end of chunk k from later chunks: λ_last = carry, λ_{k-1} = p_end_k λ_k + r_0(k)
    lam = reverse_scan(p_end, torch.cat((r[..., 1:, 0, :], carry[..., None, :]), -2), chunk)
    g = (r + p_end[..., None, :] * lam[..., None, :]) / p  # dL/dh_t
    g_log = g * (h - drive)  # a_t h_{t-1} = h_t - drive_t
    g_du = (g * bc).sum(-1)
    g_b = (g * du[..., None]).sum(1).flatten(1, 2).transpose(1, 2)[..., :n]
    g_c = (gyc[..., None] * h).sum(1).flatten(1, 2).transpose(1, 2)[..., :n]
    g_a = (g_log * dl[..., None]).sum((0, 2, 3))
    g_delta = ((g_log * A[:, None, None, :]).sum(-1) + g_du * uc)
    g_u = g_du * dl
    carry_in = p_end[..., 0, :] * lam[..., 0, :] + r[..., 0, 0, :]
    return g_u.flatten(-2)[..., :n], g_delta.flatten(-2)[..., :n], g_a, g_b, g_c, carry_in


def _forward(u, delta, A, B, C, h, chunk, factor=True):
    """``y`` without D and z, the state entering every block, each block's path, the last state."""
    y, entering, paths = [], [], []
    for s, e in _blocks(u.shape[-1], u, A, chunk):
        entering.append(h)
        paths.append(factor and _factorisable(delta[..., s:e], A, chunk))
        y_block, h = _forward_block(u[..., s:e], delta[..., s:e], A, B[..., s:e], C[..., s:e], h, chunk, paths[-1])
        y.append(y_block)
    return torch.cat(y, -1), entering, paths, h


class _SelectiveScan(torch.autograd.Function):
    """Block by block forward; the backward recomputes each block's states from the saved entering state
    and runs the adjoint recurrence backwards, so memory is O(L·D), not O(L·D·N)."""

    @staticmethod
    def forward(ctx, u, delta, A, B, C, h0, chunk):
        y, entering, paths, last = _forward(u, delta, A, B, C, h0, chunk)
        ctx.save_for_backward(u, delta, A, B, C, *entering)
        ctx.chunk, ctx.paths = chunk, paths
        return y, last

    @staticmethod
    def backward(ctx, grad_y, grad_last):
        u, delta, A, B, C, *entering = ctx.saved_tensors
        grad_u, grad_delta = torch.empty_like(u), torch.empty_like(delta)
        grad_b, grad_c, grad_a = torch.empty_like(B), torch.empty_like(C), torch.zeros_like(A)
        carry = grad_last if grad_last is not None else torch.zeros_like(entering[0])
        blocks = _blocks(u.shape[-1], u, A, ctx.chunk)
        for (s, e), h_in, factor in zip(reversed(blocks), reversed(entering), reversed(ctx.paths)):
            g_u, g_delta, g_a, g_b, g_c, carry = _backward_block(
                u[..., s:e], delta[..., s:e], A, B[..., s:e], C[..., s:e], h_in, grad_y[..., s:e], carry,
                ctx.chunk, factor)
            grad_u[..., s:e], grad_delta[..., s:e], grad_b[..., s:e], grad_c[..., s:e] = g_u, g_delta, g_b, g_c
            grad_a += g_a
        return grad_u, grad_delta, grad_a, grad_b, grad_c, carry, None


def _delta(delta, delta_bias, delta_softplus):
    if delta_bias is not None:
        delta = delta + delta_bias[..., None] if delta.dim() == 3 else delta + delta_bias
    return F.softplus(delta) if delta_softplus else delta


def _output(y, u, D, z):
    if D is not None:
        y = y + u * (D[:, None] if u.dim() == 3 else D)
    return y * F.silu(z) if z is not None else y


def selective_scan(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus: bool = False,
                   initial_state=None, return_last_state: bool = False, chunk_size: int = 16):
    """All ``L`` steps of the selective scan (see the module docstring); ``y [batch, D, L]``.

    ``initial_state [batch, D, N]`` is ``h_{-1}`` (zeros by default); ``return_last_state`` also returns
    ``h_{L-1}``. ``chunk_size`` is the scan's chunk length (any value gives the same result).
    """
    if u.dim() != 3 or A.dim() != 2 or B.dim() != 3 or C.dim() != 3 or A.shape[0] != u.shape[1]:
        raise ValueError(f"selective_scan: expected u [batch, D, L], A [D, N], B and C [batch, N, L]; got u "
                         f"{tuple(u.shape)}, A {tuple(A.shape)}, B {tuple(B.shape)}, C {tuple(C.shape)}")
    delta = _delta(delta, delta_bias, delta_softplus)
    dtype = torch.promote_types(u.dtype, delta.dtype)
    u, delta, A, B, C = (t.to(dtype) for t in (u, delta, A, B, C))
    h0 = initial_state.to(dtype) if initial_state is not None else u.new_zeros(u.shape[0], *A.shape)
    chunk = max(2, int(chunk_size))
    if u.shape[-1] == 0:
        y, last = u.clone(), h0
    elif capturing():  # exports and torch.compile record plain ops, without the data-dependent path choice
        y, _, _, last = _forward(u, delta, A, B, C, h0, chunk, factor=False)
    else:
        y, last = _SelectiveScan.apply(u, delta, A, B, C, h0, chunk)
    y = _output(y, u, D, z)
    return (y, last) if return_last_state else y


def selective_scan_step(state, u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus: bool = False):
    """One step for streaming: ``u, delta, z [batch, D]``, ``B, C [batch, N]``, ``state [batch, D, N]`` (or None
    for zeros) -> ``(y [batch, D], new_state)``; a sequence of steps equals :func:`selective_scan`."""
    delta = _delta(delta, delta_bias, delta_softplus)
    decay = torch.exp(delta[..., None] * A)
    drive = (delta * u)[..., None] * B[:, None, :]
    state = drive if state is None else torch.addcmul(drive, decay, state)
    y = (state @ C[:, :, None].to(state.dtype)).squeeze(-1)
    return _output(y, u, D, z), state


__all__ = ["selective_scan", "selective_scan_step"]
