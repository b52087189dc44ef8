"""Reusable modules built on the core's ops: conv modules, feed-forward projections, norms, gated attention, U-Net blocks.

One concept per file; backbones and plugins compose them. Nothing here knows a domain.
"""
from .conv_module import ConvModule, depthwise_conv_channels_last
from .ffconv import FFConvM
from .gated_attention_unit import GatedAttentionUnit
from .offset_scale import OffsetScale
from .scale_norm import ScaleNorm
from .unet import ChannelsLastConv, ResidualConvBlock, UnetResBlock

__all__ = ["ChannelsLastConv", "ConvModule", "FFConvM", "GatedAttentionUnit", "OffsetScale", "ResidualConvBlock",
           "ScaleNorm", "UnetResBlock", "depthwise_conv_channels_last"]
