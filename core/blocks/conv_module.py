"""Depthwise 1-D convolution over time with a residual, for token sequences ``[B, T, C]``.

>>> import torch
>>> ConvModule(8, kernel_size=5, causal=True)(torch.randn(2, 10, 8)).shape
torch.Size([2, 10, 8])
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..ops.inference import eager_inference


def depthwise_conv_channels_last(x: torch.Tensor, weight: torch.Tensor, pad: tuple[int, int],
                                 dilation: int = 1) -> torch.Tensor:
    """Depthwise conv over time on ``[B, T, C]``: ``weight`` ``[C, 1, K]`` (a ``groups=C`` Conv1d's), -> ``[B, T', C]``.

    ``pad``: (left, right) zeros on the time axis; ``T' = T + left + right - dilation * (K - 1)``.
    ``x`` is read as a channels-last ``[B, C, 1, T]`` image, which oneDNN's depthwise kernel
    takes without a transposed copy in or out: on 2 cores at T 4001, C 2048, K 17, 4 ms against
    103 ms for Conv1d on the transposed input. oneDNN has no fast dilated kernel in this layout
    (132 ms at C 256, K 39, dilation 2), so a dilation ``d`` runs as ``d`` interleaved undilated
    convs (positions ``r, r + d, ...``) side by side as channels, ``[B, T, C] -> [B, T/d, d*C]``
    being a view (3 ms). Conv1d's backward is faster than this layout's, so this is the
    inference path (callers keep Conv1d when gradients flow).
    """
    if weight.shape[1] != 1:
        raise ValueError(f"depthwise weight expected [C, 1, K], got {tuple(weight.shape)}")
    left, right = pad
    b, t, _ = x.shape
    if dilation > 1:
        if left % dilation or right % dilation:
            raise ValueError(f"padding {pad} must be multiples of the dilation {dilation}")
        steps = -(-t // dilation)
        xp = F.pad(x, (0, 0, 0, steps * dilation - t)) if steps * dilation != t else x
        # [B, steps, d, C] -> [B, steps, d*C]: a view; phase r's channels are block r
        folded = xp.reshape(b, steps, -1)
        y = depthwise_conv_channels_last(folded, weight.repeat(dilation, 1, 1), (left // dilation, right // dilation))
        y = y.reshape(b, -1, weight.shape[0])  # [B, steps', d*C] -> [B, steps'*d, C], a view again
        return y[:, : t + left + right - dilation * (weight.shape[-1] - 1)]
    if left == right:
        image = x.transpose(1, 2).unsqueeze(2)
        y = F.conv2d(image, weight.unsqueeze(2), padding=(0, left), groups=weight.shape[0])
    else:
        image = F.pad(x, (0, 0, left, right)).transpose(1, 2).unsqueeze(2)
        y = F.conv2d(image, weight.unsqueeze(2), groups=weight.shape[0])
    return y.squeeze(2).transpose(1, 2)


class ConvModule(nn.Module):
    """``x + dwconv(x)`` on ``[B, T, C]``, same length out.

    ``causal=True`` pads on the left only, so the output at ``t`` sees inputs ``<= t``;
    otherwise the kernel is centred (``(k - 1) // 2`` left, ``k // 2`` right). Without
    gradients the conv runs in the ``[B, T, C]`` layout itself (:func:`depthwise_conv_channels_last`).
    """

    def __init__(self, dim: int, kernel_size: int = 17, causal: bool = False):
        super().__init__()
        self.causal = causal
        self.kernel_size = kernel_size
        self.conv = nn.Conv1d(dim, dim, kernel_size, groups=dim, bias=False)

    def forward(self, x):
        k = self.kernel_size
        pad = (k - 1, 0) if self.causal else ((k - 1) // 2, k // 2)
        if eager_inference(x, self.conv.weight):
            return x + depthwise_conv_channels_last(x, self.conv.weight, pad)
        return x + self.conv(F.pad(x.transpose(1, 2), pad)).transpose(1, 2)


__all__ = ["ConvModule", "depthwise_conv_channels_last"]
