"""Kernelized linear attention (Katharopoulos et al., 2020): ``φ(q) (φ(k)ᵀ v) / (φ(q) Σ φ(k))``.

Shapes are multi-head: q, k ``[B, H, T, D]``, v ``[B, H, T, M]`` -> ``[B, H, T, M]``. The feature
map ``φ`` is ``elu(x) + 1`` by default and pluggable (any callable keeping the last dim
positive). Non-causal cost is ``O(T·D·M)``. The causal variant is exact and loop-free:
inside chunks of ``chunk_size`` tokens a masked ``C×C`` product, across chunks an exclusive
cumulative sum of the per-chunk ``φ(k)ᵀ v`` states, so memory is ``O(T·C + (T/C)·D·M)``
rather than the ``O(T·D·M)`` of a per-token cumsum.

>>> import torch
>>> q, k, v = torch.randn(3, 2, 4, 9, 8).unbind(0)
>>> linear_attention(q, k, v, causal=True).shape
torch.Size([2, 4, 9, 8])
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F


def elu_feature_map(x: torch.Tensor) -> torch.Tensor:
    """``elu(x) + 1`` -- positive, the default of linear transformers."""
    return F.elu(x) + 1.0


def relu_feature_map(x: torch.Tensor) -> torch.Tensor:
    """``relu(x)`` -- non-negative (rows whose features are all zero rely on ``eps``)."""
    return F.relu(x)


def linear_attention(q, k, v, feature_map: Callable[[torch.Tensor], torch.Tensor] | None = elu_feature_map,
                     causal: bool = False, mask=None, eps: float = 1e-6, chunk_size: int = 64):
    """Linear attention ``out_t = φ(q_t)·Σ_s φ(k_s) v_sᵀ / (φ(q_t)·Σ_s φ(k_s) + eps)``.

    The sums run over all ``s`` (non-causal) or ``s <= t`` (causal). ``mask``: optional
    ``[B, T]`` boolean, True = valid key. ``feature_map=None`` uses q and k as given.
    """
    if feature_map is not None:
        q, k = feature_map(q), feature_map(k)
    if mask is not None:
        k = k * mask.to(k.dtype)[:, None, :, None]
    if not causal:
        kv = k.transpose(-1, -2) @ v  # [B, H, D, M]
        z = k.sum(dim=-2)  # [B, H, D]
        den = (q @ z.unsqueeze(-1)) + eps  # [B, H, T, 1]
        return (q @ kv) / den

    *lead, n, d = q.shape
    m = v.shape[-1]
    c = min(chunk_size, n)
    pad = (-n) % c
    g = (n + pad) // c

    def chunks(t):
        t = F.pad(t, (0, 0, 0, pad)) if pad else t
        return t.reshape(*lead, g, c, t.shape[-1])

    qc, kc, vc = chunks(q), chunks(k), chunks(v)
    a = (qc @ kc.transpose(-1, -2)).masked_fill(
        torch.ones(c, c, dtype=torch.bool, device=q.device).triu(1), 0.0
    )  # [..., g, c, c], s <= t inside the chunk
    kv = kc.transpose(-1, -2) @ vc  # [..., g, d, m]
    z = kc.sum(dim=-2)  # [..., g, d]
    # States of previous chunks only: shift the inclusive cumsum by one chunk (no cancellation).
    kv = torch.cat((torch.zeros_like(kv[..., :1, :, :]), kv[..., :-1, :, :].cumsum(dim=-3)), dim=-3)
    z = torch.cat((torch.zeros_like(z[..., :1, :]), z[..., :-1, :].cumsum(dim=-2)), dim=-2)
    num = a @ vc + qc @ kv
    den = a.sum(dim=-1, keepdim=True) + qc @ z.unsqueeze(-1) + eps
    out = (num / den).reshape(*lead, g * c, m)
    return out[..., :n, :] if pad else out


__all__ = ["elu_feature_map", "linear_attention", "relu_feature_map"]
