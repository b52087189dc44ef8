"""Depthwise 1-D convolution over time with a residual, for token sequences ``[B, T, C]``.

>>> import torch
>>> ConvModule(8, kernel_size=5, causal=True)(torch.randn(2, 10, 8)).shape
torch.Size([2, 10, 8])
"""
from __future__ import annotations

import torch.nn.functional as F
from torch import nn


class ConvModule(nn.Module):
    """``x + dwconv(x)`` on ``[B, T, C]``, same length out.

    ``causal=True`` pads on the left only, so the output at ``t`` sees inputs ``<= t``;
    otherwise the kernel is centred (``(k - 1) // 2`` left, ``k // 2`` right).
    """

    def __init__(self, dim: int, kernel_size: int = 17, causal: bool = False):
        super().__init__()
        self.causal = causal
        self.kernel_size = kernel_size
        self.conv = nn.Conv1d(dim, dim, kernel_size, groups=dim, bias=False)

    def forward(self, x):
        y = x.transpose(1, 2)
        k = self.kernel_size
        y = F.pad(y, (k - 1, 0) if self.causal else ((k - 1) // 2, k // 2))
        return x + self.conv(y).transpose(1, 2)


__all__ = ["ConvModule"]
