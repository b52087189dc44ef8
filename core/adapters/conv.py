"""Conv adapter: a parallel depthwise-conv bottleneck for conv and sequence models.

``y = block(x) + scale · up(GELU(dwconv(down(x))))`` where ``down``/``up`` are pointwise
(per-position Linear) projections ``C_in → dim → C_out`` and ``dwconv`` is a depthwise
``kernel``-wide conv (``groups=dim``, ``padding=kernel//2``) over the spatial/time axes;
``up`` is zero-initialised, so the adapted model starts equal to the base.

Layout is decided from the target, once, at apply time:

* the first Linear/Conv inside the target (the target itself first) is a **Conv1d/2d/3d** →
  channels-first input ``[B, C, *spatial]`` (conv feature maps); the depthwise conv has the
  same number of spatial axes, and the stride of the target when the target is itself a conv;
* it is an **nn.Linear** → channels-last tokens ``[B, *S, C]``; the depthwise conv runs over
  the ``spatial`` axes before C (default 1: the sequence axis of ``[B, T, C]``). With
  ``spatial=1``, inputs with several token axes (e.g. ``[B, H, W, C]``) are flattened into one
  sequence; pass ``spatial=2``/``3`` to convolve over a ``[B, H, W, C]``/``[B, D, H, W, C]`` grid.

The adapter's output must have the target's output shape (checked at run time).
Not mergeable (nonlinear branch).
"""
from __future__ import annotations

import torch
from pydantic import field_validator
from torch import nn

from ..errors import UserError
from .base import Adapter, factory_kwargs, first_last
from .registry import AdapterKind
from .spec import AdapterSpec, spec_field

_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)


class ConvSpec(AdapterSpec):
    """``conv:kernel=3,dim=16,scale=1.0,spatial=<auto>,targets=...``."""

    kind = "conv"
    kernel: int = spec_field(3, "an odd positive integer", gt=0)
    dim: int = spec_field(16, "a positive integer", gt=0)
    scale: float = spec_field(1.0, "a number")
    spatial: int | None = spec_field(None, "1, 2 or 3 (spatial axes of the depthwise conv)", ge=1, le=3)

    @field_validator("kernel")
    @classmethod
    def _odd(cls, value: int) -> int:
        if value % 2 == 0:
            raise ValueError("kernel must be odd")
        return value


class ConvAdapter(Adapter):
    """Pointwise down → depthwise conv → GELU → pointwise up (zeros), scaled, added to the output."""

    kind = "conv"

    def __init__(self, spec: ConvSpec, target_name: str, *, in_ch: int, out_ch: int,
                 channels_last: bool, spatial: int, stride, kw):
        super().__init__(spec, target_name)
        self.scale = spec.scale
        self.channels_last = channels_last
        self.spatial = spatial
        self.down = nn.Linear(in_ch, spec.dim, **kw)
        self.dw = _CONVS[spatial - 1](spec.dim, spec.dim, spec.kernel, stride=stride,
                                      padding=spec.kernel // 2, groups=spec.dim, **kw)
        self.act = nn.GELU()
        self.up = nn.Linear(spec.dim, out_ch, **kw)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def _fail(self, x, what):
        layout = "[B, *S, C] tokens" if self.channels_last else f"[B, C, *spatial] with {self.spatial} spatial axes"
        raise UserError(f"conv adapter on {self.target_name!r}: {what} (input {tuple(x.shape)}, expected {layout})")

    def forward(self, module, x, output):
        nd = self.spatial
        if self.channels_last:
            h = x.unsqueeze(0) if x.dim() == 2 else x
            if nd == 1 and h.dim() > 3:
                h = h.flatten(1, -2)
            if h.dim() != nd + 2 or h.shape[-1] != self.down.in_features:
                self._fail(x, "unexpected input shape")
            h = _channels_last(self.act(self.dw(_channels_first(self.down(h)))))
            d = self.up(h)
            if d.numel() == output.numel():
                d = d.reshape(output.shape)
        else:
            h = x.unsqueeze(0) if x.dim() == nd + 1 else x
            if h.dim() != nd + 2 or h.shape[1] != self.down.in_features:
                self._fail(x, "unexpected input shape")
            h = self.act(self.dw(_channels_first(self.down(_channels_last(h)))))
            d = _channels_first(self.up(_channels_last(h)))
            if x.dim() == nd + 1:
                d = d.squeeze(0)
        if d.shape != output.shape:
            self._fail(x, f"adapter output {tuple(d.shape)} differs from the module output {tuple(output.shape)}; "
                          "target a shape-preserving block or a conv with padding=kernel//2")
        return output + d * self.scale


def _channels_last(t: torch.Tensor) -> torch.Tensor:
    """``[B, C, *S] -> [B, *S, C]``, with non-negative dims (the ONNX exporter writes -1 into Transpose's perm)."""
    return t.movedim(1, t.dim() - 1)


def _channels_first(t: torch.Tensor) -> torch.Tensor:
    """``[B, *S, C] -> [B, C, *S]`` (see :func:`_channels_last`)."""
    return t.movedim(t.dim() - 1, 1)


class ConvAdapterKind(AdapterKind):
    """Built-in ``conv`` kind."""

    Spec = ConvSpec
    wraps = "blocks whose first layer is an nn.Conv1d/2d/3d or an nn.Linear"

    def check(self, module):
        first, _ = first_last(module, (nn.Linear, *_CONVS))
        if first is None:
            return f"a {type(module).__name__} with no nn.Linear or nn.Conv1d/2d/3d inside"
        return None

    def build(self, module, spec, target_name):
        first, last = first_last(module, (nn.Linear, *_CONVS))
        out_ch = last.out_features if isinstance(last, nn.Linear) else last.out_channels
        kw = factory_kwargs(module)
        if isinstance(first, nn.Linear):
            return ConvAdapter(spec, target_name, in_ch=first.in_features, out_ch=out_ch,
                               channels_last=True, spatial=spec.spatial or 1, stride=1, kw=kw)
        nd = len(first.kernel_size)
        if spec.spatial is not None and spec.spatial != nd:
            raise UserError(f"conv adapter on {target_name!r}: spatial={spec.spatial} but the target "
                            f"is a Conv{nd}d block ({nd} spatial axes)")
        stride = module.stride if isinstance(module, _CONVS) else 1
        return ConvAdapter(spec, target_name, in_ch=first.in_channels, out_ch=out_ch,
                           channels_last=False, spatial=nd, stride=stride, kw=kw)
