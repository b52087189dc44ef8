"""Token chunks for the chunkwise-parallel mixers: zero-pad the token axis to a multiple of the chunk and split it.

>>> import torch
>>> (a,), pad = token_chunks((torch.ones(2, 7, 3),), 4)
>>> a.shape, pad
(torch.Size([2, 2, 4, 3]), 1)
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def token_chunks(tensors, chunk: int, dim: int = -2) -> tuple[list[torch.Tensor], int]:
    """Each tensor with its token axis ``dim`` (negative) zero-padded to a multiple of ``chunk`` and split
    into ``[..., groups, chunk, ...]``; also the number of padded tokens."""
    n = tensors[0].shape[dim]
    pad = (-n) % chunk
    out = []
    for t in tensors:
        if pad:
            t = F.pad(t, (0, 0) * (-dim - 1) + (0, pad))
        out.append(t.unflatten(dim, (-1, chunk)))
    return out, pad


__all__ = ["token_chunks"]
