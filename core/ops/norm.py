"""Instance norm for channels-last CPU tensors: statistics by BLAS products, elementwise passes in rows, own backward.

:func:`instance_norm` equals ``F.instance_norm(x, eps=eps)`` (no affine, no running statistics)
and takes its fast path for ``channels_last`` / ``channels_last_3d`` float tensors on the CPU, leaving
every other input (other devices, tracing, scripting, ONNX export) to ``F.instance_norm``. Half and
bf16 inputs are normalised in float32 and returned in their own dtype, on every device.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..device import cpu_fast_path
from .layout import channels_to_first, channels_to_last

WIDE = 384  # row width of instance_norm's elementwise passes, a multiple of the usual channel counts (12 .. 384)


def instance_norm(x: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Instance norm without affine (as ``nn.InstanceNorm3d()``), fast for channels-last inputs.

    PyTorch's CPU instance norm copies a ``channels_last_3d`` tensor (the layout oneDNN convs are
    fastest in) to contiguous and back, forward and backward, and in a Swin UNETR training step
    those copies of full-size activations add up. Here the statistics and their gradients of the
    ``[B, S, C]`` view are BLAS products (a ones-vector GEMV for means, the diagonal of a
    ``C x C`` Gram matrix for the variance of the centred values, two passes so a large mean
    does not eat the variance's digits) and the elementwise passes run over rows of several
    voxels, all in the channels-last layout, with a hand-written backward.
    """
    if x.dtype in (torch.bfloat16, torch.float16):
        # statistics in float32, as autocast runs layer and group norms: PyTorch's CPU instance norm keeps
        # the mean in bf16, whose 8-bit mantissa loses the spread of near-constant channels (output
        # off by ~1 std, gradients exploding at a 2x2x2 bottleneck within a few bf16 steps)
        with torch.autocast(x.device.type, enabled=False):
            return instance_norm(x.float(), eps).to(x.dtype)
    cl = torch.channels_last_3d if x.ndim == 5 else torch.channels_last
    if (not cpu_fast_path(x, "instance_norm") or x.ndim not in (4, 5) or x.is_contiguous()
            or not x.is_contiguous(memory_format=cl)
            or x.dtype not in (torch.float32, torch.float64)
            or torch.jit.is_tracing() or torch.jit.is_scripting() or torch.onnx.is_in_onnx_export()):
        return F.instance_norm(x, eps=eps)
    return ChannelsLastInstanceNorm.apply(x, eps)


def _rows(flat: torch.Tensor) -> tuple[torch.Tensor, int]:
    """``[B, N, C]`` as ``[B, N / t, C t]`` rows of ``WIDE`` floats where the shape allows (else t = 1)."""
    b, n, c = flat.shape
    tile = WIDE // c if WIDE % c == 0 and n % (WIDE // c) == 0 else 1
    return flat.reshape(b, n // tile, c * tile), tile


def _channel_mean(flat: torch.Tensor) -> torch.Tensor:
    """``[B, N, C]`` -> ``[B, 1, C]``: a ones-vector GEMV, faster than ``sum(1)`` on this layout."""
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


class ChannelsLastInstanceNorm(torch.autograd.Function):
    """Instance norm (no affine) of a channels-last ``[B, C, *S]`` tensor, output in the same layout."""

    @staticmethod
    def forward(ctx, x, eps):
        flat = channels_to_last(x).reshape(x.shape[0], -1, x.shape[1])
        mean = _channel_mean(flat)
        result = torch.empty_like(x)  # channels-last like x, and not a view (in-place ops may follow)
        out = channels_to_last(result).view(flat.shape)
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
        shape = channels_to_last(x).shape
        flat = channels_to_last(x).reshape(x.shape[0], -1, x.shape[1])  # [B, N, C] view
        dy = channels_to_last(grad.contiguous(memory_format=cl)).reshape(flat.shape)
        xhat = _normalized(flat, mean, rstd)
        m1, m2 = _channel_mean(dy), _channel_dot(dy, xhat)
        rows, tile = _rows(dy)
        dx = _scale_shift(rows, tile, rstd, -m1 * rstd)
        dx.addcmul_(_rows(xhat)[0], (-m2 * rstd).repeat(1, 1, tile))
        return channels_to_first(dx.view(shape)), None


__all__ = ["ChannelsLastInstanceNorm", "WIDE", "instance_norm"]
