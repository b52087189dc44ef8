"""The delta rule (DeltaNet) in its chunkwise-parallel form (Yang et al. 2024, "Parallelizing Linear
Transformers with the Delta Rule over Sequence Length").

Per head, with the state ``S [K, V]``::

    S_t = (I - β_t k_t k_tᵀ) S_{t-1} + β_t k_t v_tᵀ        o_t = scale · S_tᵀ q_t

Inside a chunk the product of the Householder-like factors has the WY form ``I - Σ_i k_i w_iᵀ``, and the
state's additive part ``Σ_i k_i u_iᵀ``; the UT transform gets every ``w_i`` and ``u_i`` of a chunk at once:
``W = T K``, ``U = T V`` with ``T = (I + tril(diag(β) K Kᵀ, -1))⁻¹ diag(β)`` (one batched unit-triangular
solve). With ``Ũ = U - W S_in``: ``O = Q S_in + tril(Q Kᵀ) Ũ`` and ``S_out = S_in + Kᵀ Ũ``. Everything but
the state hand-over is batched over all chunks; the hand-over is a loop over chunks (``T / chunk_size``
matmul steps, never over tokens). An ONNX export (which has no triangular solve) inverts the triangular
matrix by ``log2(chunk_size)`` matmuls instead. Use L2-normalised keys and ``β`` in (0, 1) (sigmoid), as DeltaNet does:
then every factor is a contraction.

Shapes: ``q, k [B, H, T, K]``, ``v [B, H, T, V]``, ``beta [B, H, T]`` -> ``[B, H, T, V]``;
``initial_state`` / final state ``[B, H, K, V]``.

>>> import torch
>>> q, k, v = torch.randn(3, 1, 2, 50, 8).unbind(0)
>>> k = torch.nn.functional.normalize(k, dim=-1)
>>> delta_rule(q, k, v, torch.rand(1, 2, 50)).shape
torch.Size([1, 2, 50, 8])
"""
from __future__ import annotations

import torch

from .chunks import token_chunks


def _unit_lower_inverse(m: torch.Tensor) -> torch.Tensor:
    """``m⁻¹`` for unit lower-triangular ``m = I + N`` by matmuls only: ``(I - N)(I + N²)(I + N⁴)···``
    (``N`` is nilpotent, ``N^C = 0``); the export path, where no triangular solve exists."""
    eye = torch.eye(m.shape[-1], dtype=m.dtype, device=m.device)
    power = eye - m  # -N
    inverse = eye + power
    steps = 2
    while steps < m.shape[-1]:
        power = power @ power
        inverse = inverse + inverse @ power
        steps *= 2
    return inverse


def delta_rule(q, k, v, beta, scale: float | None = None, initial_state=None, output_final_state: bool = False,
               chunk_size: int = 32):
    """DeltaNet over ``[B, H, T, *]`` (see the module docstring); ``scale`` defaults to ``K ** -0.5``."""
    if q.dim() != 4 or k.shape != q.shape or v.shape[:3] != q.shape[:3] or beta.shape != q.shape[:3]:
        raise ValueError(f"delta_rule: expected q, k [B, H, T, K], v [B, H, T, V] and beta [B, H, T]; got q "
                         f"{tuple(q.shape)}, k {tuple(k.shape)}, v {tuple(v.shape)}, beta {tuple(beta.shape)}")
    *lead, n, dk = q.shape
    dv = v.shape[-1]
    q = q * (dk ** -0.5 if scale is None else scale)
    c = max(1, min(int(chunk_size), n))
    (q, k, v, beta), _ = token_chunks((q, k, v, beta[..., None]), c)  # [B, H, G, C, *]; padding: k = v = β = 0
    eye = torch.eye(c, dtype=q.dtype, device=q.device)
    strict = torch.ones(c, c, dtype=torch.bool, device=q.device).tril(-1)
    m = eye + (beta * (k @ k.transpose(-1, -2))).masked_fill(~strict, 0.0)  # unit lower-triangular
    rhs = beta * torch.cat((k, v), -1)
    if torch.onnx.is_in_onnx_export():
        wu = _unit_lower_inverse(m) @ rhs  # ONNX has no triangular solve
    else:
        wu = torch.linalg.solve_triangular(m, rhs, upper=False, unitriangular=True)
    w, u = wu.split((dk, dv), -1)
    qk = (q @ k.transpose(-1, -2)).masked_fill(~(strict | eye.bool()), 0.0)  # tril(Q Kᵀ), inclusive
    q_state = q - qk @ w  # O = (Q - tril(QKᵀ) W) S_in + tril(QKᵀ) U
    out = qk @ u
    s = initial_state if initial_state is not None else q.new_zeros(*lead, dk, dv)
    states = []
    # one unbind per tensor (indexing chunk i would give autograd one full-size gradient per chunk)
    for k_i, u_i, w_i in zip(k.transpose(-1, -2).unbind(-3), u.unbind(-3), w.unbind(-3)):
        states.append(s)  # S_out = S_in + Kᵀ (U - W S_in)
        s = s + k_i @ (u_i - w_i @ s)
    out = out + q_state @ torch.stack(states, -3)
    out = out.flatten(-3, -2)[..., :n, :]
    return (out, s) if output_final_state else out


__all__ = ["delta_rule"]
