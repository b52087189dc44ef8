"""MossFormer2 (Zhao et al., 2024): MossFormer blocks each followed by a gated dilated FSMN.

``MossFormer2(num_spks=2)`` is the paper-size model (N=512, 24 layers, ~55.8M parameters);
pass smaller ``dim`` / ``num_layers`` / ``group_size`` for CPU. ``[B, T] -> [B, spks, T]``.
``variant="clearvoice"`` is ClearerVoice-Studio's form of the same network (see :mod:`.clearvoice`),
the one their published MossFormer2_SS checkpoints need.
"""
from __future__ import annotations

import torch

from sigplex.core.models import register_model

from .clearvoice import ClearVoiceFSMNBlock, SkipNormMaskNet, unpadded_forward
from .fsmn import GatedFSMNBlock
from .mossformer import TINY, MaskingSeparator, MaskNet, MossFormerLayer, _attn

VARIANTS = ("sigplex", "clearvoice")


@register_model("mossformer2", domain="audio", tiny={**TINY, "fsmn_inner": 8, "fsmn_kernel": 5},
                example_input=lambda: torch.randn(2, 400), default={"num_spks": 2})
class MossFormer2(MaskingSeparator):
    """MossFormer2 separator: gated attention + RNN-free recurrent (dilated FSMN) per layer."""

    adapter_targets = {
        "lora": ("*.attn.to_hidden.linear", "*.attn.to_qk.linear", "*.attn.to_out.linear",
                 "*.fsmn.in_proj", "*.fsmn.out_proj"),
        "bottleneck": ("*.attn", "*.fsmn"),
        "conv": ("*.attn",),
    }

    def __init__(self, num_spks: int = 2, dim: int = 512, num_layers: int = 24, kernel_size: int = 16,
                 stride: int = 8, group_size: int = 256, query_key_dim: int = 128, expansion_factor: float = 2.0,
                 rotary_dim: int = 32, fsmn_inner: int = 256, fsmn_kernel: int = 39,
                 fsmn_dilations: tuple[int, ...] = (1, 2), dropout: float = 0.1, attn_dropout: float = 0.1,
                 variant: str = "sigplex"):
        super().__init__(num_spks, dim, kernel_size, stride)
        if variant not in VARIANTS:
            raise ValueError(f"variant={variant!r}: expected one of {', '.join(VARIANTS)}")
        self.variant = variant
        block = ClearVoiceFSMNBlock if variant == "clearvoice" else GatedFSMNBlock
        layers = [
            MossFormerLayer(
                _attn(dim, group_size, query_key_dim, expansion_factor, rotary_dim, dropout, attn_dropout),
                block(dim, fsmn_inner, fsmn_kernel, tuple(fsmn_dilations), dropout=dropout),
            )
            for _ in range(num_layers)
        ]
        self.masknet = (SkipNormMaskNet if variant == "clearvoice" else MaskNet)(dim, num_spks, layers)

    def forward(self, x):
        return unpadded_forward(self, x) if self.variant == "clearvoice" else super().forward(x)


__all__ = ["MossFormer2", "VARIANTS"]
