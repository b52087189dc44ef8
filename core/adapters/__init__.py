"""Adapters for every model: LoRA, bottleneck (AdaptFormer) and conv adapters.

Train only adapters::

    report = apply_adapter(model, "lora:r=8,alpha=16")   # default targets: model.adapter_targets
    opt = torch.optim.AdamW(trainable_parameters(model))  # base is frozen
    save_adapter(model, "run/adapter.safetensors")        # adapter tensors + specs + base fingerprint
    load_adapter(plain_model, "run/adapter.safetensors")  # re-applies the specs, checks the base
    merge_adapters(model)                                 # LoRA folded into weights; base keys only

See docs/adapters.md for the spec grammar and each kind.
"""
from __future__ import annotations

from .base import Adapter, iter_adapters
from .bottleneck import Bottleneck, BottleneckSpec
from .conv import ConvAdapter, ConvSpec
from .inject import (
    AdapterReport,
    ParamSummary,
    adapter_specs,
    apply_adapter,
    declared_targets,
    freeze_base,
    has_adapters,
    remove_adapters,
    summary,
    trainable_parameters,
)
from .io import (
    adapter_checkpoint,
    adapter_state_dict,
    base_fingerprint,
    load_adapter,
    load_adapter_checkpoint,
    read_adapter_file,
    save_adapter,
)
from .lora import LoRA, LoRASpec
from .merge import merge_adapters, unmerge_adapters
from .registry import AdapterKind, adapter_kinds, get_kind, register_adapter_kind
from .spec import AdapterSpec, parse_specs, spec_field

__all__ = [
    "Adapter", "AdapterKind", "adapter_checkpoint", "load_adapter_checkpoint", "AdapterReport", "AdapterSpec",
    "Bottleneck", "BottleneckSpec",
    "ConvAdapter", "ConvSpec", "LoRA", "LoRASpec", "ParamSummary", "adapter_kinds", "adapter_specs",
    "adapter_state_dict", "apply_adapter", "base_fingerprint", "declared_targets", "freeze_base",
    "get_kind", "has_adapters", "iter_adapters", "load_adapter", "merge_adapters", "parse_specs",
    "read_adapter_file", "register_adapter_kind", "remove_adapters", "save_adapter", "spec_field",
    "summary", "trainable_parameters", "unmerge_adapters",
]
