"""Swin Transformer encoder for 2D/3D volumes (the encoder of Swin UNETR), MONAI-compatible.

Submodule names and parameter shapes follow ``monai.networks.nets.swin_unetr.SwinTransformer``
(``patch_embed.proj``, ``layers1``..``layers4`` each a one-element ModuleList holding a stage with
``blocks`` and ``downsample``, blocks with ``norm1``, ``attn.{qkv,proj,relative_position_bias_table}``,
``norm2``, ``mlp.linear1``, ``mlp.linear2``; ``layers1c``.. with ``use_v2``), so
``SwinTransformer(...).load_state_dict(monai_swin_unetr.swinViT.state_dict())`` works strictly.
This module imports nothing from MONAI.

Feature shapes: for an input ``[B, in_chans, *S]`` (S divisible by ``2 * 2**4`` in practice),
``forward`` returns five hidden states, channels-first like MONAI's::

    i = 0..4:  [B, embed_dim * 2**i, *(S / (patch * 2**i))]

(``i = 0`` is the patch embedding, ``i = k`` the output of stage k after its patch merging;
layer-normalised over channels when ``normalize=True``). Internally tokens stay channels-last
between stages and the shifted-window attention uses the cached gather plans of
:mod:`sigplex.core.ops.window`.

>>> import torch
>>> enc = SwinTransformer(in_chans=1, embed_dim=12, window_size=(7, 7, 7), patch_size=(2, 2, 2),
...                       depths=(1, 1, 1, 1), num_heads=(3, 3, 3, 3))
>>> [tuple(h.shape) for h in enc(torch.randn(1, 1, 32, 32, 32))]
[(1, 12, 16, 16, 16), (1, 24, 8, 8, 8), (1, 48, 4, 4, 4), (1, 96, 2, 2, 2), (1, 192, 1, 1, 1)]
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
import torch.utils.checkpoint as checkpoint
from torch import nn

from ..blocks.unet import ResidualConvBlock, UnetResBlock
from ..ops.conv import aten_prefers_mkldnn, conv_forward
from ..ops.layout import channels_last, channels_to_first, channels_to_last
from ..ops.norm import ChannelsLastInstanceNorm, instance_norm
from ..ops.window import WindowAttention, effective_window

_CONV = {2: nn.Conv2d, 3: nn.Conv3d}
# Private names of the kernels this module held before they moved to sigplex.core.ops (still imported from here).
_ChannelsLastInstanceNorm = ChannelsLastInstanceNorm
_aten_prefers_mkldnn = aten_prefers_mkldnn


class DropPath(nn.Module):
    """Stochastic depth: drop the whole residual branch per sample (scaled by the keep rate)."""

    def __init__(self, drop_prob: float = 0.0) -> None:
        super().__init__()
        self.drop_prob = float(drop_prob)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.drop_prob == 0.0 or not self.training:
            return x
        keep = 1.0 - self.drop_prob
        noise = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
        return x * noise.div_(keep) if keep > 0 else x * noise


class PatchEmbed(nn.Module):
    """Non-overlapping patches by a strided conv (``proj``), optional LayerNorm (``norm``)."""

    def __init__(self, patch_size: Sequence[int], in_chans: int, embed_dim: int, spatial_dims: int = 3,
                 norm: bool = False) -> None:
        super().__init__()
        self.patch_size = tuple(patch_size)
        self.embed_dim = embed_dim
        self.proj = _CONV[spatial_dims](in_chans, embed_dim, kernel_size=self.patch_size, stride=self.patch_size)
        self.norm = nn.LayerNorm(embed_dim) if norm else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads: list[int] = []
        for s, p in reversed(list(zip(x.shape[2:], self.patch_size))):
            pads += [0, (p - s % p) % p]
        if any(pads):
            x = F.pad(x, pads)
        x = conv_forward(self.proj, x)
        if self.norm is not None:
            x = channels_to_first(self.norm(channels_to_last(x)))
        return x


class MLP(nn.Module):
    """Transformer MLP (MONAI ``MLPBlock`` in "swin" dropout mode): linear1 -> GELU -> linear2."""

    def __init__(self, hidden_size: int, mlp_dim: int, dropout_rate: float = 0.0) -> None:
        super().__init__()
        self.linear1 = nn.Linear(hidden_size, mlp_dim)
        self.linear2 = nn.Linear(mlp_dim, hidden_size)
        self.fn = nn.GELU()
        self.drop1 = nn.Dropout(dropout_rate)
        self.drop2 = nn.Dropout(dropout_rate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop2(self.linear2(self.drop1(self.fn(self.linear1(x)))))


class SwinTransformerBlock(nn.Module):
    """Pre-norm block: ``x + attn(norm1(x))`` over (shifted) windows, then ``x + mlp(norm2(x))``.

    Input and output are channels-last grids ``[B, *S, C]``.
    """

    def __init__(self, dim: int, num_heads: int, window_size: Sequence[int], shift_size: Sequence[int],
                 mlp_ratio: float = 4.0, qkv_bias: bool = True, drop: float = 0.0, attn_drop: float = 0.0,
                 drop_path: float = 0.0, use_checkpoint: bool = False) -> None:
        super().__init__()
        self.dim, self.num_heads = dim, num_heads
        self.window_size, self.shift_size = tuple(window_size), tuple(shift_size)
        self.use_checkpoint = use_checkpoint
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, num_heads, self.window_size, qkv_bias=qkv_bias,
                                    attn_drop=attn_drop, proj_drop=drop)
        self.drop_path = DropPath(drop_path) if drop_path > 0.0 else nn.Identity()
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = MLP(dim, int(dim * mlp_ratio), dropout_rate=drop)

    def forward_part1(self, x: torch.Tensor) -> torch.Tensor:
        return self.attn.forward_grid(self.norm1(x), self.shift_size, self.window_size)

    def forward_part2(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop_path(self.mlp(self.norm2(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.use_checkpoint and torch.is_grad_enabled():
            x = x + self.drop_path(checkpoint.checkpoint(self.forward_part1, x, use_reentrant=False))
            return x + checkpoint.checkpoint(self.forward_part2, x, use_reentrant=False)
        x = x + self.drop_path(self.forward_part1(x))
        return x + self.forward_part2(x)


# Order in which MONAI concatenates the 2**d sub-grids, as positions in our row-major
# (offset_d, offset_h, offset_w) layout.
_MERGE_ORDER = {
    ("merging", 3): (0, 4, 2, 1, 6, 5, 3, 7),
    ("mergingv2", 3): tuple(range(8)),
    ("merging", 2): (0, 2, 1, 3),
    ("mergingv2", 2): (0, 2, 1, 3),
}


class PatchMergingV2(nn.Module):
    """2x downsampling of a channels-last grid: concat each 2^d neighbourhood, LayerNorm, linear.

    ``reduction`` (no bias) and ``norm`` over ``2^d * dim`` features, as MONAI's ``PatchMergingV2``.
    The neighbourhood is gathered with one reshape; MONAI's concatenation order is honoured by
    permuting the (tiny) norm/reduction weights instead of the data.
    """

    mode = "mergingv2"

    def __init__(self, dim: int, spatial_dims: int = 3) -> None:
        super().__init__()
        self.dim, self.spatial_dims = dim, spatial_dims
        k = 2 ** spatial_dims
        self.reduction = nn.Linear(k * dim, 2 * dim, bias=False)
        self.norm = nn.LayerNorm(k * dim)
        order = _MERGE_ORDER[(self.mode, spatial_dims)]
        # feature position of MONAI's chunk q is order[q]; invert for the weight permutation
        inv = torch.empty(k * dim, dtype=torch.long)
        chunk = torch.arange(dim)
        for q, p in enumerate(order):  # 4 or 8 chunks
            inv[p * dim + chunk] = q * dim + chunk
        self.register_buffer("_weight_perm", inv, persistent=False)
        self._identity = list(order) == sorted(order)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, *spatial, c = x.shape
        if any(s % 2 for s in spatial):
            pads: list[int] = [0, 0]
            for s in reversed(spatial):
                pads += [0, s % 2]
            x = F.pad(x, pads)
            spatial = [s + s % 2 for s in spatial]
        nd = len(spatial)
        shape = [b]
        for s in spatial:
            shape += [s // 2, 2]
        order = [0] + [1 + 2 * i for i in range(nd)] + [2 + 2 * i for i in range(nd)] + [2 * nd + 1]
        x = x.reshape(*shape, c).permute(*order).reshape(b, *[s // 2 for s in spatial], (2 ** nd) * c)
        if self._identity:
            return self.reduction(self.norm(x))
        p = self._weight_perm
        x = F.layer_norm(x, self.norm.normalized_shape, self.norm.weight[p], self.norm.bias[p], self.norm.eps)
        return F.linear(x, self.reduction.weight[:, p])


class PatchMerging(PatchMergingV2):
    """MONAI's original (v0.9) patch merging: same parameters, another concatenation order in 3D."""

    mode = "merging"


MERGING_MODE = {"merging": PatchMerging, "mergingv2": PatchMergingV2}


class BasicLayer(nn.Module):
    """One Swin stage: ``depth`` blocks alternating unshifted/shifted windows, then patch merging.

    Works on channels-last grids: ``[B, *S, C] -> [B, *S/2, 2C]`` (or unchanged without merging).
    """

    def __init__(self, dim: int, depth: int, num_heads: int, window_size: Sequence[int],
                 drop_path: Sequence[float], mlp_ratio: float = 4.0, qkv_bias: bool = True,
                 drop: float = 0.0, attn_drop: float = 0.0, downsample: type | None = None,
                 use_checkpoint: bool = False) -> None:
        super().__init__()
        self.window_size = tuple(window_size)
        self.shift_size = tuple(w // 2 for w in self.window_size)
        self.no_shift = tuple(0 for _ in self.window_size)
        self.depth = depth
        self.blocks = nn.ModuleList([
            SwinTransformerBlock(dim, num_heads, self.window_size,
                                 self.no_shift if i % 2 == 0 else self.shift_size,
                                 mlp_ratio=mlp_ratio, qkv_bias=qkv_bias, drop=drop, attn_drop=attn_drop,
                                 drop_path=drop_path[i], use_checkpoint=use_checkpoint)
            for i in range(depth)
        ])
        self.downsample = downsample(dim=dim, spatial_dims=len(self.window_size)) if downsample is not None else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for blk in self.blocks:
            x = blk(x)
        if self.downsample is not None:
            x = self.downsample(x)
        return x


class SwinTransformer(nn.Module):
    """Swin Transformer encoder (Liu et al. 2021), 2D or 3D, returning 5 hidden states.

    Arguments follow MONAI's ``SwinTransformer``; ``downsample`` is ``"merging"``,
    ``"mergingv2"`` or a class with the ``PatchMergingV2(dim, spatial_dims)`` interface.
    """

    adapter_targets = {
        "lora": ("*.attn.qkv", "*.attn.proj"),
        "bottleneck": ("*.mlp",),
        "conv": ("patch_embed.proj", "layers*c.*.layer.conv*.conv"),
    }

    def __init__(self, in_chans: int, embed_dim: int, window_size: Sequence[int], patch_size: Sequence[int],
                 depths: Sequence[int], num_heads: Sequence[int], mlp_ratio: float = 4.0, qkv_bias: bool = True,
                 drop_rate: float = 0.0, attn_drop_rate: float = 0.0, drop_path_rate: float = 0.0,
                 patch_norm: bool = False, use_checkpoint: bool = False, spatial_dims: int = 3,
                 downsample="merging", use_v2: bool = False) -> None:
        super().__init__()
        if spatial_dims not in (2, 3):
            raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims}")
        if len(depths) != 4 or len(num_heads) != 4:
            raise ValueError(f"depths and num_heads need 4 entries (one per stage), got {depths}, {num_heads}")
        self.num_layers = 4
        self.embed_dim = embed_dim
        self.spatial_dims = spatial_dims
        self.window_size = tuple(window_size)
        self.patch_size = tuple(patch_size)
        self.use_v2 = use_v2
        merge = MERGING_MODE[downsample] if isinstance(downsample, str) else downsample
        self.patch_embed = PatchEmbed(self.patch_size, in_chans, embed_dim, spatial_dims, norm=patch_norm)
        self.pos_drop = nn.Dropout(p=drop_rate)
        dpr = [float(x) for x in torch.linspace(0, drop_path_rate, sum(depths))]
        for i in range(4):
            dim = int(embed_dim * 2 ** i)
            layer = BasicLayer(dim, depths[i], num_heads[i], self.window_size,
                               dpr[sum(depths[:i]):sum(depths[:i + 1])], mlp_ratio=mlp_ratio, qkv_bias=qkv_bias,
                               drop=drop_rate, attn_drop=attn_drop_rate, downsample=merge,
                               use_checkpoint=use_checkpoint)
            setattr(self, f"layers{i + 1}", nn.ModuleList([layer]))
            if use_v2:
                setattr(self, f"layers{i + 1}c", nn.ModuleList([ResidualConvBlock(spatial_dims, dim, dim)]))
        self.num_features = int(embed_dim * 2 ** 3)

    def feature_shapes(self, spatial: Sequence[int], batch: int = 1) -> list[tuple[int, ...]]:
        """Shapes of the five hidden states for an input of spatial size ``spatial``."""
        sizes = [math.ceil(s / p) for s, p in zip(spatial, self.patch_size)]
        shapes = []
        for i in range(5):
            shapes.append((batch, self.embed_dim * 2 ** i, *sizes))
            sizes = [math.ceil(s / 2) for s in sizes]
        return shapes

    @staticmethod
    def _proj_out(x_last: torch.Tensor, normalize: bool, channels: int) -> torch.Tensor:
        if normalize:  # ``channels`` as a Python int: ONNX needs a constant normalized shape
            x_last = F.layer_norm(x_last, (channels,))
        return channels_to_first(x_last)

    def forward(self, x: torch.Tensor, normalize: bool = True) -> list[torch.Tensor]:
        x = self.pos_drop(self.patch_embed(x))  # channels-first
        x = channels_to_last(x).contiguous()
        hidden = [self._proj_out(x, normalize, self.embed_dim)]
        for i in range(4):
            if self.use_v2:
                conv = getattr(self, f"layers{i + 1}c")[0]
                x = channels_to_last(conv(channels_to_first(x))).contiguous()  # channels-last convs, no copy
            x = getattr(self, f"layers{i + 1}")[0](x)
            hidden.append(self._proj_out(x, normalize, self.embed_dim * 2 ** (i + 1)))
        return hidden


__all__ = [
    "BasicLayer",
    "DropPath",
    "MERGING_MODE",
    "MLP",
    "PatchEmbed",
    "PatchMerging",
    "PatchMergingV2",
    "ResidualConvBlock",
    "SwinTransformer",
    "SwinTransformerBlock",
    "UnetResBlock",
    "effective_window",
    "channels_last",
    "conv_forward",
    "instance_norm",
]
