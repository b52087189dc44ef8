"""Fold LoRA adapters into the base weights (for export) and take them out again.

``merge_adapters(model)`` adds each LoRA update ``scale·B·A`` to its target's weight and
detaches the adapter, so ``model.state_dict()`` has exactly the base keys again (a merged
model loads strictly into the un-adapted class). Bottleneck and conv adapters add a nonlinear
branch and cannot be merged: with ``strict=True`` (default) their presence is an error, with
``strict=False`` they are left attached.

Unmerge semantics: with ``keep=True`` (default) the merged adapters are kept on the model
(outside its state_dict). ``unmerge_adapters(model)`` subtracts each kept update from the
current weight and re-attaches the adapter, returning the model to its pre-merge state
(weights equal within float rounding, the adapter trainable again). Any change made to the
merged weights in between is kept (the subtraction removes exactly the LoRA update).
``keep=False`` makes the merge permanent.
"""
from __future__ import annotations

from torch import nn

from ..errors import UserError
from .base import MERGED_ATTR, attach, detach, iter_adapters, merged_stash
from .inject import freeze_base
from .registry import get_kind


def merge_adapters(model: nn.Module, *, strict: bool = True, keep: bool = True) -> list[str]:
    """Merge every mergeable (LoRA) adapter into its target's weights; returns the targets."""
    found = list(iter_adapters(model))
    blocked = [(n, a.kind) for n, _, a in found if not get_kind(a.kind).mergeable]
    if blocked and strict:
        where = ", ".join(f"{k} on {n!r}" for n, k in blocked[:4]) + (" ..." if len(blocked) > 4 else "")
        raise UserError(f"cannot merge adapters into weights: {where} add a nonlinear branch; "
                        "only lora merges (pass strict=False to merge the LoRA adapters and keep the others, "
                        "or remove_adapters(model))")
    merged: list[str] = []
    stash = list(merged_stash(model))
    for name, module, adapter in found:
        if not get_kind(adapter.kind).mergeable:
            continue
        adapter.merge(module)
        detach(module, adapter.kind)
        if keep:
            stash.append((name, adapter))
        merged.append(name)
    if keep:
        model.__dict__[MERGED_ATTR] = stash
    else:
        model.__dict__.pop(MERGED_ATTR, None)
    return merged


def unmerge_adapters(model: nn.Module) -> list[str]:
    """Undo ``merge_adapters(model, keep=True)``: subtract the updates, re-attach the adapters."""
    stash = merged_stash(model)
    if not stash:
        raise UserError("no merged adapters to unmerge (merge_adapters(model) was not called, "
                        "or was called with keep=False)")
    for name, adapter in stash:
        module = model.get_submodule(name)
        if f"adapter_{adapter.kind}" in module._modules:
            raise UserError(f"cannot unmerge: {name!r} already has a {adapter.kind} adapter again")
    names = []
    for name, adapter in stash:
        module = model.get_submodule(name)
        adapter.to(device=module.weight.device, dtype=module.weight.dtype)
        adapter.unmerge(module)
        attach(module, adapter)
        names.append(name)
    model.__dict__.pop(MERGED_ATTR, None)
    freeze_base(model)
    return names
