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

from ..ops.window import WindowAttention, effective_window

_CONV = {2: nn.Conv2d, 3: nn.Conv3d}
_INORM = {2: nn.InstanceNorm2d, 3: nn.InstanceNorm3d}


def _to_last(x: torch.Tensor) -> torch.Tensor:
    """``[B, C, *S]`` -> ``[B, *S, C]`` (a view)."""
    return x.permute(0, *range(2, x.ndim), 1)


def _to_first(x: torch.Tensor) -> torch.Tensor:
    """``[B, *S, C]`` -> ``[B, C, *S]`` (a view)."""
    return x.permute(0, x.ndim - 1, *range(1, x.ndim - 1))


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
            x = _to_first(self.norm(_to_last(x)))
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


WIDE = 384  # row width of instance_norm's elementwise passes, a multiple of the usual channel counts (12 .. 384)


def instance_norm(x: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Instance norm without affine (as ``nn.InstanceNorm3d()``), fast for channels-last inputs.

    PyTorch's CPU instance norm copies a ``channels_last_3d`` tensor (the layout oneDNN convs are
    fastest in) to contiguous and back, forward and backward: in a Swin UNETR f24 64³ training
    step 23 such copies of 25 MB, 10-17 ms each. Here the statistics and their gradients of the
    ``[B, S, C]`` view are BLAS products (a ones-vector GEMV for means, the diagonal of a
    ``C x C`` Gram matrix for the variance of the centred values, two passes so a large mean
    does not eat the variance's digits) and the elementwise passes run over rows of several
    voxels, all in the channels-last layout, with a hand-written backward.
    """
    cl = torch.channels_last_3d if x.ndim == 5 else torch.channels_last
    if (x.ndim not in (4, 5) or x.is_contiguous() or not x.is_contiguous(memory_format=cl)
            or x.dtype not in (torch.float32, torch.float64)
            or torch.jit.is_tracing() or torch.jit.is_scripting() or torch.onnx.is_in_onnx_export()):
        return F.instance_norm(x, eps=eps)
    return _ChannelsLastInstanceNorm.apply(x, eps)


def _rows(flat: torch.Tensor) -> tuple[torch.Tensor, int]:
    """``[B, N, C]`` as ``[B, N / t, C t]`` rows of ``WIDE`` floats where the shape allows (else t = 1)."""
    b, n, c = flat.shape
    tile = WIDE // c if WIDE % c == 0 and n % (WIDE // c) == 0 else 1
    return flat.reshape(b, n // tile, c * tile), tile


def _channel_mean(flat: torch.Tensor) -> torch.Tensor:
    """``[B, N, C]`` -> ``[B, 1, C]``: a ones-vector GEMV, 2.5x faster than ``sum(1)`` on this layout."""
    return torch.bmm(flat.new_ones(flat.shape[0], 1, flat.shape[1]), flat) / flat.shape[1]


def _channel_dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``mean_n(a * b)`` per channel of two ``[B, N, C]`` tensors, ``[B, 1, C]``: the diagonal of ``aᵀ b / N``."""
    return torch.bmm(a.transpose(1, 2), b).diagonal(dim1=1, dim2=2).unsqueeze(1) / a.shape[1]


def _scale_shift(rows: torch.Tensor, tile: int, scale: torch.Tensor, shift: torch.Tensor, out=None) -> torch.Tensor:
    """``rows * scale + shift`` in one pass, the ``[B, 1, C]`` statistics tiled to the rows' width."""
    return torch.addcmul(shift.repeat(1, 1, tile), rows, scale.repeat(1, 1, tile), out=out)


def _normalized(flat: torch.Tensor, mean: torch.Tensor, rstd: torch.Tensor) -> torch.Tensor:
    """``(flat - mean) * rstd`` in one pass, ``[B, N, C]``."""
    rows, tile = _rows(flat)
    return _scale_shift(rows, tile, rstd, -mean * rstd).view(flat.shape)


class _ChannelsLastInstanceNorm(torch.autograd.Function):
    """Instance norm (no affine) of a channels-last ``[B, C, *S]`` tensor, output in the same layout."""

    @staticmethod
    def forward(ctx, x, eps):
        flat = _to_last(x).reshape(x.shape[0], -1, x.shape[1])
        mean = _channel_mean(flat)
        result = torch.empty_like(x)  # channels-last like x, and not a view (in-place ops may follow)
        out = _to_last(result).view(flat.shape)
        rows, tile = _rows(flat)
        centred = out.view(rows.shape)
        torch.sub(rows, mean.repeat(1, 1, tile), out=centred)
        # the float32 GEMV's sum is off by ~sqrt(N) roundings of the total: the mean of the centred
        # values corrects it (float32 error then as F.instance_norm's, 10x smaller than without)
        residual = _channel_mean(out)
        rstd = torch.rsqrt(_channel_dot(out, out) - residual * residual + eps)
        _scale_shift(centred, tile, rstd, -residual * rstd, out=centred)
        ctx.save_for_backward(x, mean + residual, rstd)
        return result

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):
        # dx = rstd * (dy - mean(dy) - xhat * mean(dy * xhat)), per (batch, channel)
        x, mean, rstd = ctx.saved_tensors
        cl = torch.channels_last_3d if x.ndim == 5 else torch.channels_last
        shape = _to_last(x).shape
        flat = _to_last(x).reshape(x.shape[0], -1, x.shape[1])  # [B, N, C] view
        dy = _to_last(grad.contiguous(memory_format=cl)).reshape(flat.shape)
        xhat = _normalized(flat, mean, rstd)
        m1, m2 = _channel_mean(dy), _channel_dot(dy, xhat)
        rows, tile = _rows(dy)
        dx = _scale_shift(rows, tile, rstd, -m1 * rstd)
        dx.addcmul_(_rows(xhat)[0], (-m2 * rstd).repeat(1, 1, tile))
        return _to_first(dx.view(shape)), None


def channels_last(x: torch.Tensor) -> torch.Tensor:
    """``x`` in channels-last memory format (no copy when it already is; untouched when tracing)."""
    if torch.jit.is_tracing() or torch.jit.is_scripting() or torch.onnx.is_in_onnx_export():
        return x
    if x.ndim == 5:
        return x.contiguous(memory_format=torch.channels_last_3d)
    return x.contiguous(memory_format=torch.channels_last) if x.ndim == 4 else x


def _mkldnn_ok(conv: nn.Module, x: torch.Tensor) -> bool:
    # A conv with hooks (e.g. an attached adapter) must run through its own __call__.
    return (isinstance(conv, (nn.Conv2d, nn.Conv3d)) and not conv._forward_hooks and not conv._forward_pre_hooks
            and x.device.type == "cpu" and x.dtype == torch.float32
            and conv.weight.dtype == torch.float32 and conv.padding_mode == "zeros"
            and not isinstance(conv.padding, str) and torch.backends.mkldnn.is_available()
            and not torch.is_autocast_enabled("cpu") and not torch.jit.is_scripting()
            and not torch.jit.is_tracing() and not torch.onnx.is_in_onnx_export())


def _aten_prefers_mkldnn(x: torch.Tensor) -> bool:
    # PyTorch's own choice for fp32 CPU convs (ConvParams::use_mkldnn, non-1x1 kernels)
    return x.shape[0] > 1 or x.shape[0] * x.shape[1] * x.shape[2] * x.shape[3] > 20480


def _depth_split_conv(conv: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """A batch-1, stride-1 conv run as a batch of two depth halves, so oneDNN takes both directions.

    For batch-1 inputs PyTorch sends both directions of small convs to its slow im2col kernels
    (and copies channels-last gradients to contiguous for them). Splitting the first spatial
    dim into two halves, each with its ``k - 1`` halo rows (zeros past the ends, as the conv's
    padding), makes a batch of two: the same sums, no extra multiply-adds, and PyTorch's own
    oneDNN forward and backward. The halves' outputs, stacked, are the full output; in
    channels-last memory that is a view.
    """
    nd = x.ndim - 2
    k, p = conv.kernel_size[0], conv.padding[0]
    depth = x.shape[2]
    out_depth = depth + 2 * p - (k - 1)
    half = (out_depth + 1) // 2
    # rows needed: output rows 0 .. 2*half-1 read padded rows 0 .. 2*half-1 + k-1
    after = 2 * half + k - 1 - (depth + p)
    padded = F.pad(x, (0, 0) * (nd - 1) + (p, after))
    pair = torch.cat((padded[:, :, :half + k - 1], padded[:, :, half:]), dim=0)
    fn = F.conv3d if nd == 3 else F.conv2d
    out = fn(pair, conv.weight, conv.bias, 1, (0,) + tuple(conv.padding[1:]), 1, conv.groups)
    last = out.movedim(1, -1)                                  # [2, half, ..., C]: a view of channels-last
    whole = last.reshape(1, 2 * half, *last.shape[2:])[:, :out_depth]
    return whole.movedim(-1, 1)


def conv_forward(conv: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``conv(x)``, but always through oneDNN for fp32 CPU convs (forward and backward).

    PyTorch routes batch-1 convs whose first four dims are small (``N*C*D*H <= 20480``) to its
    im2col kernels, 2-8x slower than oneDNN for 3D kernels on CPU, in both directions. Same
    numerics (to float rounding); falls back to ``conv(x)`` when tracing/exporting.
    """
    if _mkldnn_ok(conv, x):
        if (torch.is_grad_enabled() and not _aten_prefers_mkldnn(x)
                and all(v == 1 for v in conv.stride) and all(v == 1 for v in conv.dilation)):
            return _depth_split_conv(conv, x)
        return torch.ops.aten.mkldnn_convolution(x, conv.weight, conv.bias, list(conv.padding),
                                                 list(conv.stride), list(conv.dilation), conv.groups)
    return conv(x)


class _Conv(nn.Module):
    """Holds a bare conv as ``.conv`` (MONAI ``Convolution(conv_only=True)`` naming).

    The weight is kept channels-last so that oneDNN runs the conv in channels-last (2-4x faster
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
        self.conv1 = _Conv(conv(in_channels, out_channels, kernel_size, padding=pad, bias=False))
        self.conv2 = _Conv(conv(out_channels, out_channels, kernel_size, padding=pad, bias=False))
        self.lrelu = nn.LeakyReLU(0.01, inplace=True)
        self.norm1 = _INORM[spatial_dims](out_channels)
        self.norm2 = _INORM[spatial_dims](out_channels)
        self.downsample = in_channels != out_channels
        if self.downsample:
            self.conv3 = _Conv(conv(in_channels, out_channels, 1, bias=False))
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
        return _to_first(x_last)

    def forward(self, x: torch.Tensor, normalize: bool = True) -> list[torch.Tensor]:
        x = self.pos_drop(self.patch_embed(x))  # channels-first
        x = _to_last(x).contiguous()
        hidden = [self._proj_out(x, normalize, self.embed_dim)]
        for i in range(4):
            if self.use_v2:
                conv = getattr(self, f"layers{i + 1}c")[0]
                x = _to_last(conv(_to_first(x))).contiguous()  # channels-last convs, no copy
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
