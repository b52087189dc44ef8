"""Reusable modules built on the core's ops: conv modules, feed-forward projections, norms, gated attention, U-Net blocks,
state-space and linear-attention mixers (S4D, Mamba, GLA, DeltaNet).

One concept per file; backbones and plugins compose them. Nothing here knows a domain.
"""
from .conv_module import ConvModule, depthwise_conv_channels_last
from .delta_net import DeltaNetBlock
from .ffconv import FFConvM
from .gated_attention_unit import GatedAttentionUnit
from .gla_block import GLABlock
from .mamba import MambaBlock, MambaState
from .multihead_mixer import MultiHeadMixer
from .offset_scale import OffsetScale
from .s4d_block import S4DBlock
from .scale_norm import ScaleNorm
from .unet import ChannelsLastConv, ResidualConvBlock, UnetResBlock

__all__ = ["ChannelsLastConv", "ConvModule", "DeltaNetBlock", "FFConvM", "GLABlock", "GatedAttentionUnit", "MambaBlock",
           "MambaState", "MultiHeadMixer", "OffsetScale", "ResidualConvBlock", "S4DBlock", "ScaleNorm", "UnetResBlock",
           "depthwise_conv_channels_last"]
