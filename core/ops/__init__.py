"""Accelerated kernels shared by every domain: attention in its several forms, long-sequence mixers (FFT long
convolution, S4D, selective scan, gated linear attention, delta rule), CPU conv and norm, batched solves.

Modules built from these kernels (conv modules, feed-forward projections, norms, the gated
attention unit, U-Net blocks) live in :mod:`sigplex.core.blocks`; encoders in :mod:`sigplex.core.backbones`.
"""
from .attention import (
    attention,
    attention_reference,
    combine_bias_and_mask,
    fused_attention,
    fused_attention_enabled,
    set_fused_attention,
)

__all__ = [
    "attention",
    "attention_reference",
    "combine_bias_and_mask",
    "fused_attention",
    "fused_attention_enabled",
    "set_fused_attention",
]

from .attention import MultiHeadAttention
from .chunks import token_chunks
from .conv import conv_forward
from .delta_rule import delta_rule
from .fft_conv import fft_conv
from .gated_attention import mixed_chunk_attention
from .gla import gated_linear_attention
from .inference import eager_inference
from .layout import channels_last, channels_to_first, channels_to_last
from .linalg import solve_psd
from .linear_attention import elu_feature_map, linear_attention, relu_feature_map
from .norm import instance_norm
from .rotary import RotaryEmbedding, apply_rotary, rotary_angles
from .s4d import s4d, s4d_kernel
from .scan import linear_scan
from .selective_scan import selective_scan, selective_scan_step

__all__ += [
    "MultiHeadAttention",
    "mixed_chunk_attention", "eager_inference",
    "elu_feature_map", "linear_attention", "relu_feature_map", "solve_psd",
    "RotaryEmbedding", "apply_rotary", "rotary_angles",
    "channels_last", "channels_to_first", "channels_to_last", "conv_forward", "instance_norm",
    "delta_rule", "fft_conv", "gated_linear_attention", "linear_scan", "s4d", "s4d_kernel", "selective_scan",
    "selective_scan_step", "token_chunks",
]

from .window import (
    WindowAttention,
    WindowPlan,
    clear_window_caches,
    relative_position_index,
    shifted_window_mask,
    window_partition,
    window_plan,
    window_reverse,
)

__all__ += [
    "WindowAttention", "WindowPlan", "clear_window_caches", "relative_position_index",
    "shifted_window_mask", "window_partition", "window_plan", "window_reverse",
]
