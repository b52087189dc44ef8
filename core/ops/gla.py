"""Gated linear attention (GLA, Yang et al. 2024): linear attention with a data-dependent per-key-channel decay.

Per head, with the state ``S [K, V]``::

    S_t = diag(exp(log_g_t)) S_{t-1} + k_t v_tᵀ          o_t = scale · S_tᵀ q_t

Chunkwise-parallel form, chunks of ``chunk_size`` tokens, ``b_t`` the cumulative log-decay from the chunk
start (``b <= 0``, decreasing): inside a chunk ``o_t += Σ_{s<=t} Σ_d q_t[d] k_s[d] exp(b_t[d] - b_s[d]) v_s``.
While every chunk's decay stays above ``e^-40`` (``scan.factor_span``) that is one matmul of the factors
``(q ⊙ e^b)(k ⊙ e^-b)ᵀ``; beyond, where ``e^-b`` could overflow, the exponent is formed as a difference
first (``<= 0`` on and below the diagonal, clamped above it), ``O(C²·K)`` elementwise per chunk, so no
``exp`` overflows however strong the decay (exports and ``torch.compile`` take this path always). Across chunks
``o_t += (q_t ⊙ e^{b_t}) S_in`` and the chunk states follow
``S_out = e^{b_end} ⊙ S_in + Σ_s (k_s ⊙ e^{b_end - b_s}) v_sᵀ`` (every factor ``<= 1``), a
:func:`~sigplex.core.ops.scan.linear_scan` over chunks. Cost ``O(T·(C·K + K·V))``.

Shapes: ``q, k, log_g [B, H, T, K]`` (``log_g <= 0``, e.g. ``logsigmoid``), ``v [B, H, T, V]`` ->
``[B, H, T, V]``; ``initial_state`` / final state ``[B, H, K, V]``.

>>> import torch
>>> q, k, v = torch.randn(3, 1, 2, 50, 8).unbind(0)
>>> log_g = torch.nn.functional.logsigmoid(torch.randn(1, 2, 50, 8))
>>> gated_linear_attention(q, k, v, log_g).shape
torch.Size([1, 2, 50, 8])
"""
from __future__ import annotations

import torch

from .chunks import token_chunks
from .inference import capturing
from .scan import factor_span, linear_scan


def gated_linear_attention(q, k, v, log_g, scale: float | None = None, initial_state=None,
                           output_final_state: bool = False, chunk_size: int = 32):
    """GLA over ``[B, H, T, *]`` (see the module docstring); ``scale`` defaults to ``K ** -0.5``."""
    if q.dim() != 4 or k.shape != q.shape or log_g.shape != q.shape or v.shape[:3] != q.shape[:3]:
        raise ValueError(f"gated_linear_attention: expected q, k, log_g [B, H, T, K] and v [B, H, T, V]; got q "
                         f"{tuple(q.shape)}, k {tuple(k.shape)}, v {tuple(v.shape)}, log_g {tuple(log_g.shape)}")
    *lead, n, dk = q.shape
    dv = v.shape[-1]
    q = q * (dk ** -0.5 if scale is None else scale)
    c = max(1, min(int(chunk_size), n))
    (q, k, v, log_g), _ = token_chunks((q, k, v, log_g), c)  # [B, H, G, C, *]; padding: k = v = 0, no decay
    b = log_g.cumsum(-2)
    future = torch.ones(c, c, dtype=torch.bool, device=q.device).triu(1)
    q_decayed = q * torch.exp(b)
    if not capturing() and bool(b[..., -1, :].min() >= -factor_span(b.dtype)):
        # every chunk's decay stays above e^-40: exp(-b) is finite, the scores are one matmul
        scores = q_decayed @ (k * torch.exp(-b)).transpose(-1, -2)
    else:  # exp(b_t - b_s) <= 1 for s <= t; above the diagonal the exponent is clamped to 0, the score masked
        weights = (b[..., :, None, :] - b[..., None, :, :]).clamp_max(0.0).exp()  # [B, H, G, C(t), C(s), K]
        scores = (q[..., :, None, :] * k[..., None, :, :] * weights).sum(-1)
    scores = scores.masked_fill(future, 0.0)
    out = scores @ v
    b_end = b[..., -1:, :]  # [B, H, G, 1, K]
    local = (k * torch.exp(b_end - b)).transpose(-1, -2) @ v  # each chunk's own contribution, [B, H, G, K, V]
    decay = torch.exp(b_end).transpose(-1, -2).expand(*local.shape)
    init = initial_state.reshape(*lead, dk * dv) if initial_state is not None else None
    after = linear_scan(decay.flatten(-2), local.flatten(-2), init)  # state after each chunk
    start = torch.zeros_like(after[..., :1, :]) if init is None else init[..., None, :]
    entering = torch.cat((start, after[..., :-1, :]), -2).unflatten(-1, (dk, dv))
    out = out + q_decayed @ entering
    out = out.flatten(-3, -2)[..., :n, :]
    return (out, after[..., -1, :].unflatten(-1, (dk, dv))) if output_final_state else out


__all__ = ["gated_linear_attention"]
