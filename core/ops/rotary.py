"""Rotary position embedding (RoFormer): rotate channel pairs by position-dependent angles.

Position ``p`` rotates pair ``i`` of the first ``rotary_dim`` channels by ``p * base^(-2i/rotary_dim)``;
the remaining channels pass through unchanged. Pairs are adjacent channels ``(2i, 2i+1)``
(``interleaved=True``, RoFormer's layout) or the two halves ``(i, i + rotary_dim/2)``
(``interleaved=False``, GPT-NeoX layout). Positions run along dimension ``-2`` (tokens).
Since rotations compose, ``q_p · k_s`` after rotation depends only on ``p - s``.

>>> import torch
>>> rope = RotaryEmbedding(8)
>>> rope(torch.randn(2, 5, 16)).shape
torch.Size([2, 5, 16])
"""
from __future__ import annotations

import torch
from torch import nn


def rotary_angles(seq_len: int, rotary_dim: int, base: float = 10000.0, offset: int = 0,
                  device=None) -> torch.Tensor:
    """Angles ``[seq_len, rotary_dim // 2]`` (float32) for positions ``offset .. offset+seq_len-1``."""
    inv_freq = base ** (-torch.arange(0, rotary_dim, 2, device=device, dtype=torch.float32) / rotary_dim)
    pos = torch.arange(offset, offset + seq_len, device=device, dtype=torch.float32)
    return pos[:, None] * inv_freq[None, :]


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, interleaved: bool = True) -> torch.Tensor:
    """Rotate the first ``2 * cos.shape[-1]`` channels of ``x`` ``[..., T, C]``; ``cos``/``sin`` are ``[T, R/2]``."""
    r = 2 * cos.shape[-1]
    rot, rest = x[..., :r], x[..., r:]
    cos, sin = cos.to(x.dtype), sin.to(x.dtype)
    if interleaved:
        pairs = rot.unflatten(-1, (r // 2, 2))
        x1, x2 = pairs[..., 0], pairs[..., 1]
        rot = torch.stack((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1).flatten(-2)
    else:
        x1, x2 = rot[..., : r // 2], rot[..., r // 2:]
        rot = torch.cat((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)
    return torch.cat((rot, rest), dim=-1) if rest.shape[-1] else rot


class RotaryEmbedding(nn.Module):
    """Rotary embedding of the first ``rotary_dim`` channels; ``forward(x, offset=0)`` on ``[..., T, C]``."""

    def __init__(self, rotary_dim: int, base: float = 10000.0, interleaved: bool = True):
        super().__init__()
        if rotary_dim <= 0 or rotary_dim % 2:
            raise ValueError(f"rotary_dim must be a positive even number, got {rotary_dim}")
        self.rotary_dim = rotary_dim
        self.base = base
        self.interleaved = interleaved

    def angles(self, seq_len: int, offset: int = 0, device=None) -> torch.Tensor:
        return rotary_angles(seq_len, self.rotary_dim, self.base, offset, device)

    def forward(self, x: torch.Tensor, offset: int = 0) -> torch.Tensor:
        if x.shape[-1] < self.rotary_dim:
            raise ValueError(f"input has {x.shape[-1]} channels, fewer than rotary_dim={self.rotary_dim}")
        ang = self.angles(x.shape[-2], offset, x.device)
        return apply_rotary(x, ang.cos(), ang.sin(), self.interleaved)

    def extra_repr(self) -> str:
        return f"rotary_dim={self.rotary_dim}, base={self.base}, interleaved={self.interleaved}"


__all__ = ["RotaryEmbedding", "apply_rotary", "rotary_angles"]
