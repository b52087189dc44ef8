"""U-Net residual conv blocks with MONAI's parameter names, run in channels-last through the core's CPU kernels.

:class:`ChannelsLastConv` holds a bare conv as ``.conv`` (MONAI ``Convolution(conv_only=True)``);
:class:`UnetResBlock` and :class:`ResidualConvBlock` are MONAI's ``UnetResBlock`` and
``UnetrBasicBlock(res_block=True)``, with convs through :func:`sigplex.core.ops.conv_forward` and
norms through :func:`sigplex.core.ops.instance_norm`. State dict keys equal MONAI's.
"""
from __future__ import annotations

import torch
from torch import nn

from ..ops.conv import conv_forward
from ..ops.layout import channels_last
from ..ops.norm import instance_norm

_CONV = {2: nn.Conv2d, 3: nn.Conv3d}
_INORM = {2: nn.InstanceNorm2d, 3: nn.InstanceNorm3d}


class ChannelsLastConv(nn.Module):
    """Holds a bare conv as ``.conv`` (MONAI ``Convolution(conv_only=True)`` naming).

    The weight is kept channels-last so that oneDNN runs the conv in channels-last (faster
    on CPU than the default layout for these shapes); values and state_dict keys are unchanged.
    """

    def __init__(self, conv: nn.Module) -> None:
        super().__init__()
        self.conv = conv
        conv.weight.data = channels_last(conv.weight.data)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return conv_forward(self.conv, x)


class UnetResBlock(nn.Module):
    """Residual conv block (conv-IN-LReLU-conv-IN + skip, LReLU) with MONAI ``UnetResBlock`` names."""

    def __init__(self, spatial_dims: int, in_channels: int, out_channels: int, kernel_size: int = 3) -> None:
        super().__init__()
        conv = _CONV[spatial_dims]
        pad = kernel_size // 2
        self.conv1 = ChannelsLastConv(conv(in_channels, out_channels, kernel_size, padding=pad, bias=False))
        self.conv2 = ChannelsLastConv(conv(out_channels, out_channels, kernel_size, padding=pad, bias=False))
        self.lrelu = nn.LeakyReLU(0.01, inplace=True)
        self.norm1 = _INORM[spatial_dims](out_channels)
        self.norm2 = _INORM[spatial_dims](out_channels)
        self.downsample = in_channels != out_channels
        if self.downsample:
            self.conv3 = ChannelsLastConv(conv(in_channels, out_channels, 1, bias=False))
            self.norm3 = _INORM[spatial_dims](out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        eps = self.norm1.eps
        x = channels_last(x)
        out = self.lrelu(instance_norm(self.conv1(x), eps))
        out = instance_norm(self.conv2(out), eps)
        res = instance_norm(self.conv3(x), eps) if self.downsample else x
        return self.lrelu(out + res)


class ResidualConvBlock(nn.Module):
    """MONAI ``UnetrBasicBlock(res_block=True, kernel_size=3, stride=1)`` equivalent (``.layer``)."""

    def __init__(self, spatial_dims: int, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.layer = UnetResBlock(spatial_dims, in_channels, out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x)


__all__ = ["ChannelsLastConv", "ResidualConvBlock", "UnetResBlock"]
