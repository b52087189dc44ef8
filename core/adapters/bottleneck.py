"""Bottleneck adapter (AdaptFormer): ``y = block(x) + scale · up(ReLU(down(x)))`` beside a block.

Targets a token block (typically the transformer MLP) working on channels-last inputs
``[..., C]``. The input size is the first ``nn.Linear``'s ``in_features`` inside the target
(in registration order, the target itself first) and the output size the last one's
``out_features``. ``up`` is zero-initialised, so the adapted block starts equal to the base.
Not mergeable: the ReLU branch cannot be folded into weights.
"""
from __future__ import annotations

from torch import nn

from ..errors import UserError
from .base import Adapter, factory_kwargs, first_last
from .registry import AdapterKind
from .spec import AdapterSpec, spec_field


class BottleneckSpec(AdapterSpec):
    """``bottleneck:dim=64,scale=0.1,targets=...``."""

    kind = "bottleneck"
    dim: int = spec_field(64, "a positive integer", gt=0)
    scale: float = spec_field(0.1, "a number")


class Bottleneck(Adapter):
    """down (Linear in→dim) → ReLU → up (Linear dim→out, zeros), scaled, added to the output."""

    kind = "bottleneck"

    def __init__(self, spec: BottleneckSpec, target_name: str, in_features: int, out_features: int, kw):
        super().__init__(spec, target_name)
        self.scale = spec.scale
        self.down = nn.Linear(in_features, spec.dim, **kw)
        self.act = nn.ReLU()
        self.up = nn.Linear(spec.dim, out_features, **kw)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, module, x, output):
        if x.shape[-1] != self.down.in_features:
            raise UserError(
                f"bottleneck adapter on {self.target_name!r}: input has {x.shape[-1]} features on the "
                f"last axis, expected {self.down.in_features} (channels-last [..., C]); "
                "use the conv adapter for [B, C, *spatial] feature maps"
            )
        return output + self.up(self.act(self.down(x))) * self.scale


class BottleneckKind(AdapterKind):
    """Built-in ``bottleneck`` kind."""

    Spec = BottleneckSpec
    wraps = "token blocks containing an nn.Linear (e.g. the transformer MLP)"

    def check(self, module):
        first, _ = first_last(module, (nn.Linear,))
        if first is None:
            return (f"a {type(module).__name__} with no nn.Linear inside (its feature size is unknown; "
                    "for conv feature maps use the conv adapter)")
        return None

    def build(self, module, spec, target_name):
        first, last = first_last(module, (nn.Linear,))
        return Bottleneck(spec, target_name, first.in_features, last.out_features, factory_kwargs(module))
