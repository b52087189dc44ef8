"""oneDNN convolution on CPU: ``conv_forward`` runs fp32 ``Conv2d`` / ``Conv3d`` through oneDNN in both directions.

PyTorch sends batch-1 convs with small leading dims to its im2col kernels; :func:`conv_forward`
calls oneDNN directly instead, and when a gradient is needed runs such a conv as a batch of two
depth halves, so PyTorch's own oneDNN forward and backward take it. Same numerics (to float
rounding); anything else (other conv types, devices or dtypes, convs with hooks, autocast,
tracing and export) goes through ``conv(x)``.

Reduced precision on the CPU: PyTorch 2.14's bf16 CPU conv3d computes wrong weight gradients (inf,
NaN or values off by 100 %) on its im2col route for some small inputs -- depth 2 with a 3x3x3 kernel,
as at Swin UNETR's 2x2x2 bottleneck, or a stride-2 conv of a 1x1x1 input -- so a bf16 run diverged
within a few steps. :func:`conv_forward` runs such convs (training, on that route) in float32 and
returns the reduced dtype; they are the smallest convs of a network, so the cost is negligible.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..device import cpu_fast_path


def _mkldnn_ok(conv: nn.Module, x: torch.Tensor) -> bool:
    # A conv with hooks (e.g. an attached adapter) must run through its own __call__.
    return (isinstance(conv, (nn.Conv2d, nn.Conv3d)) and not conv._forward_hooks and not conv._forward_pre_hooks
            and cpu_fast_path(x, "depth_split_conv") and x.dtype == torch.float32
            and conv.weight.dtype == torch.float32 and conv.padding_mode == "zeros"
            and not isinstance(conv.padding, str) and torch.backends.mkldnn.is_available()
            and not torch.is_autocast_enabled("cpu") and not torch.jit.is_scripting()
            and not torch.jit.is_tracing() and not torch.onnx.is_in_onnx_export())


def aten_prefers_mkldnn(x: torch.Tensor) -> bool:
    """Whether PyTorch itself sends an fp32 CPU conv of ``x`` to oneDNN (``ConvParams::use_mkldnn``, non-1x1 kernels)."""
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


def _reduced_cpu_dtype(conv: nn.Module, x: torch.Tensor) -> torch.dtype | None:
    """The bf16/fp16 dtype a training 3D conv of ``x`` would compute in on PyTorch's CPU im2col route, else None."""
    if (x.device.type != "cpu" or not isinstance(conv, nn.Conv3d) or not torch.is_grad_enabled()
            or conv.weight.dtype != torch.float32):  # float32 weights: autocast (the trainer's bf16/fp16)
        return None
    dtype = torch.get_autocast_dtype("cpu") if torch.is_autocast_enabled("cpu") else x.dtype
    if dtype not in (torch.bfloat16, torch.float16) or aten_prefers_mkldnn(x) or torch.onnx.is_in_onnx_export():
        return None
    return dtype


def conv_forward(conv: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``conv(x)``, but always through oneDNN for fp32 CPU convs (forward and backward).

    PyTorch routes batch-1 convs whose first four dims are small (``N*C*D*H <= 20480``) to its
    im2col kernels, much slower than oneDNN for 3D kernels on CPU, in both directions. Same
    numerics (to float rounding); falls back to ``conv(x)`` when tracing/exporting. Training convs
    in bf16/fp16 on that route run in float32 (see the module docstring).
    """
    reduced = _reduced_cpu_dtype(conv, x)
    if reduced is not None:
        with torch.autocast("cpu", enabled=False):
            return conv_forward(conv, x.float()).to(reduced)
    if _mkldnn_ok(conv, x):
        if (torch.is_grad_enabled() and not aten_prefers_mkldnn(x)
                and all(v == 1 for v in conv.stride) and all(v == 1 for v in conv.dilation)):
            return _depth_split_conv(conv, x)
        return torch.ops.aten.mkldnn_convolution(x, conv.weight, conv.bias, list(conv.padding),
                                                 list(conv.stride), list(conv.dilation), conv.groups)
    return conv(x)


__all__ = ["aten_prefers_mkldnn", "conv_forward"]
