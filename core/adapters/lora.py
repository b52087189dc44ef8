"""LoRA: a trainable low-rank update ``W + (alpha/r)·B·A`` beside nn.Linear and nn.Conv1d/2d/3d.

``A`` (``[r, in]``, or ``[r, in, *kernel]`` for convs, Kaiming-uniform) and ``B``
(``[out, r]``, zeros) live in ``<target>.adapter_lora``; with ``B = 0`` the adapted model
starts exactly equal to the base. For a conv, ``A`` is a conv with the target's kernel,
stride, padding, dilation and padding mode, and ``B`` a 1×1 conv, so the update merges into
the conv weight as ``ΔW[o, i, ...] = scale · Σ_r B[o, r] A[r, i, ...]``. Grouped convs are
not supported.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .base import Adapter, factory_kwargs
from .registry import AdapterKind
from .spec import AdapterSpec, spec_field

_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)


class LoRASpec(AdapterSpec):
    """``lora:r=8,alpha=8,dropout=0.0,targets=...`` — alpha defaults to r (scale 1)."""

    kind = "lora"
    r: int = spec_field(8, "a positive integer", gt=0)
    alpha: float | None = spec_field(None, "a positive number", gt=0)
    dropout: float = spec_field(0.0, "a number in [0, 1)", ge=0.0, lt=1.0)

    @property
    def scale(self) -> float:
        return (self.alpha if self.alpha is not None else self.r) / self.r

    def to_string(self) -> str:  # print the resolved alpha
        if self.alpha is None:
            return self.model_copy(update={"alpha": float(self.r)}).to_string()
        return super().to_string()


class LoRA(Adapter):
    """Low-rank update of one Linear/Conv target (parameters ``A``, ``B``)."""

    kind = "lora"

    def __init__(self, spec: LoRASpec, target_name: str, module: nn.Module):
        super().__init__(spec, target_name)
        kw = factory_kwargs(module)
        r = spec.r
        self.scale = spec.scale
        if isinstance(module, nn.Linear):
            self.ndim = 0
            self.A = nn.Parameter(torch.empty(r, module.in_features, **kw))
            self.B = nn.Parameter(torch.zeros(module.out_features, r, **kw))
        else:
            self.ndim = len(module.kernel_size)
            self.A = nn.Parameter(torch.empty(r, module.in_channels, *module.kernel_size, **kw))
            self.B = nn.Parameter(torch.zeros(module.out_channels, r, **kw))
        nn.init.kaiming_uniform_(self.A, a=math.sqrt(5))
        self.dropout = nn.Dropout(spec.dropout) if spec.dropout > 0 else nn.Identity()

    def delta_weight(self) -> torch.Tensor:
        """The update ``scale · B·A`` shaped like the target's weight."""
        if self.ndim == 0:
            return (self.B @ self.A) * self.scale
        return torch.einsum("or,ri...->oi...", self.B, self.A) * self.scale

    def forward(self, module, x, output):
        h = self.dropout(x)
        if self.ndim == 0:
            d = F.linear(F.linear(h, self.A), self.B)
        else:
            h = module._conv_forward(h, self.A, None)
            conv = (F.conv1d, F.conv2d, F.conv3d)[self.ndim - 1]
            d = conv(h, self.B.reshape(*self.B.shape, *([1] * self.ndim)))
        return output + d * self.scale

    @torch.no_grad()
    def merge(self, module):
        module.weight.add_(self.delta_weight().to(module.weight.dtype))

    @torch.no_grad()
    def unmerge(self, module):
        module.weight.sub_(self.delta_weight().to(module.weight.dtype))


class LoRAKind(AdapterKind):
    """Built-in ``lora`` kind."""

    Spec = LoRASpec
    mergeable = True
    wraps = "nn.Linear and nn.Conv1d/2d/3d (groups=1)"

    def check(self, module):
        if isinstance(module, nn.Linear):
            return None
        if isinstance(module, _CONVS):
            if module.groups != 1:
                return f"a grouped conv (groups={module.groups}); LoRA supports groups=1 only"
            return None
        return f"a {type(module).__name__}"

    def build(self, module, spec, target_name):
        return LoRA(spec, target_name, module)
