"""Attach adapters to a model: resolve targets, freeze the base, report the trainable share.

``apply_adapter(model, "lora:r=8")`` resolves targets (the spec's ``targets`` globs, else the
globs the model declares in ``adapter_targets``), checks every matched module can be wrapped,
builds all adapters first (so an error leaves the model untouched), attaches them, and
freezes every non-adapter parameter.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

from torch import nn

from ..errors import UserError
from .base import (
    PREFIX,
    Adapter,
    adapter_module_names,
    attach,
    detach,
    is_adapter_key,
    iter_adapters,
    merged_stash,
    unsupported_container,
)
from .norms import clear_norm_rule, norm_parameters, norm_rule, set_norm_rule, snapshot_base
from .registry import AdapterKind, get_kind
from .spec import AdapterSpec, parse_specs


@dataclass
class ParamSummary:
    """Trainable vs total parameter counts of a model (shared parameters counted once)."""

    trainable: int
    total: int
    adapters: dict[str, int] = field(default_factory=dict)  # kind -> number of adapted modules

    @property
    def share(self) -> float:
        return self.trainable / self.total if self.total else 0.0

    def line(self) -> str:
        where = ", ".join(f"{k}×{n}" for k, n in self.adapters.items()) or "no adapters"
        return (f"trainable {self.trainable:,} / {self.total:,} parameters "
                f"({100 * self.share:.2f}%); adapters: {where}")

    def __str__(self) -> str:
        return self.line()


@dataclass
class AdapterReport(ParamSummary):
    """What ``apply_adapter``/``load_adapter`` did: specs (with resolved globs) and targets."""

    specs: list[str] = field(default_factory=list)
    targets: dict[str, list[str]] = field(default_factory=dict)  # spec string -> module names

    def line(self) -> str:
        done = "; ".join(f"{s} on {len(self.targets.get(s, []))} modules" for s in self.specs)
        return f"{done} | {super().line()}" if done else super().line()


def summary(model: nn.Module) -> ParamSummary:
    """Trainable / total parameters of ``model`` and the adapters attached to it."""
    trainable = total = 0
    for p in model.parameters():
        total += p.numel()
        if p.requires_grad:
            trainable += p.numel()
    kinds: dict[str, int] = {}
    for _, _, adapter in iter_adapters(model):
        kinds[adapter.kind] = kinds.get(adapter.kind, 0) + 1
    return ParamSummary(trainable, total, kinds)


def freeze_base(model: nn.Module) -> None:
    """requires_grad False on every non-adapter parameter, True on every adapter parameter
    (and on the base's norm parameters when the model's norm rule is ``train``)."""
    names = adapter_module_names(model)
    for name, p in model.named_parameters():
        p.requires_grad_(is_adapter_key(name, names))
    if norm_rule(model) == "train":
        for _, p in norm_parameters(model):
            p.requires_grad_(True)


def trainable_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The parameters to hand the optimizer (the adapters' after ``apply_adapter``)."""
    return [p for p in model.parameters() if p.requires_grad]


def has_adapters(model: nn.Module) -> bool:
    return next(iter_adapters(model), None) is not None


def adapter_specs(model: nn.Module) -> list[str]:
    """Spec strings reproducing the attached adapters, targets listed as exact module names."""
    groups: dict[tuple[str, str], tuple[AdapterSpec, list[str]]] = {}
    for name, _, adapter in iter_adapters(model):
        key = (adapter.kind, adapter.spec.to_string())
        groups.setdefault(key, (adapter.spec, []))[1].append(name)
    return [spec.with_targets(names).to_string() for spec, names in groups.values()]


def declared_targets(model: nn.Module, kind: str) -> list[tuple[str, str]]:
    """``(prefix, glob)`` pairs from ``adapter_targets`` declarations; the outermost declaring
    module wins (its submodules' declarations for the same kind are ignored)."""
    out: list[tuple[str, str]] = []
    taken: list[str] = []
    for name, module in model.named_modules():
        if isinstance(module, Adapter):
            continue
        if any(t == "" or name == t or name.startswith(t + ".") for t in taken):
            continue
        decl = getattr(module, "adapter_targets", None)
        if isinstance(decl, Mapping) and decl.get(kind):
            globs = decl[kind]
            globs = (globs,) if isinstance(globs, str) else tuple(globs)
            out.extend((name, g) for g in globs)
            taken.append(name)
    return out


def _display(prefix: str, glob: str) -> str:
    return f"{prefix}.{glob}" if prefix else glob


def _match(rel: str, glob: str) -> bool:
    # '*.qkv' also matches a direct child 'qkv' (so declared globs work at any depth)
    return fnmatchcase(rel, glob) or fnmatchcase("." + rel, glob)


def _candidates(model: nn.Module) -> list[tuple[str, nn.Module]]:
    skip = adapter_module_names(model)
    return [(n, m) for n, m in model.named_modules()
            if n and not any(n == s or n.startswith(s + ".") for s in skip)]


def resolve_targets(model: nn.Module, kind: AdapterKind, pairs: list[tuple[str, str]],
                    declared: bool = False) -> list[str]:
    """Module names matched by ``(prefix, glob)`` pairs; errors for unwrappable matches and for
    a glob matching nothing (for ``declared`` defaults: only when no glob matches anything, since
    a model may declare points that exist only in some configurations)."""
    cands = _candidates(model)
    parents = dict(cands)
    names: list[str] = []
    for prefix, glob in pairs:
        shown = _display(prefix, glob)
        matched = []
        for name, module in cands:
            if prefix and not name.startswith(prefix + "."):
                continue
            rel = name[len(prefix) + 1:] if prefix else name
            if _match(rel, glob):
                matched.append((name, module))
        if not matched and declared:
            continue
        if not matched:
            examples = ", ".join(n for n, _ in cands[:8]) or "(none)"
            raise UserError(f"{kind.name} adapter: target {shown!r} matches no module in "
                            f"{type(model).__name__}; module names look like: {examples}")
        for name, module in matched:
            reason = unsupported_container(module) or kind.check(module)
            parent = parents.get(name.rpartition(".")[0]) if "." in name else model
            if reason is None and isinstance(parent, nn.MultiheadAttention):
                reason = ("inside nn.MultiheadAttention, which uses its weights directly "
                          "(no forward call to hook)")
            if reason is not None:
                raise UserError(f"{kind.name} adapter: target {shown!r} matches {name!r}, {reason}; "
                                f"{kind.name} wraps {kind.wraps} — narrow the glob")
            if name not in names:
                names.append(name)
    if not names:
        shown = "|".join(_display(p, g) for p, g in pairs)
        raise UserError(f"{kind.name} adapter: the declared default targets {shown!r} match no module in "
                        f"{type(model).__name__}; give targets=<glob>")
    order = {n: i for i, (n, _) in enumerate(cands)}
    return sorted(names, key=order.__getitem__)  # model order


def apply_adapter(model: nn.Module, spec: Any, *, train_norms: bool = False) -> AdapterReport:
    """Attach adapters described by ``spec`` to ``model`` in place and freeze the base.

    ``spec``: a string (``"lora:r=8,alpha=16,targets=*.qkv|*.proj"``, several joined by
    ``;``), a typed spec (``LoRASpec(r=8)``), or a list of them. Without ``targets`` the
    model's declared ``adapter_targets`` for that kind are used.

    The base's norms with running statistics are held in eval mode, keeping the pre-trained
    statistics; ``train_norms=True`` trains the base's norms instead (parameters and
    statistics, saved with the adapters). See :mod:`sigplex.core.adapters.norms`.
    """
    if merged_stash(model):
        raise UserError("the model has merged LoRA adapters; call unmerge_adapters(model) first, "
                        "or merge_adapters(model, keep=False) to make the merge permanent")
    specs = parse_specs(spec)
    plan: list[tuple[nn.Module, Adapter]] = []
    taken: set[tuple[str, str]] = {(n, a.kind) for n, _, a in iter_adapters(model)}
    applied: list[str] = []
    targets: dict[str, list[str]] = {}
    for s in specs:
        kind = get_kind(s.kind)
        if s.targets:
            pairs = [("", g) for g in s.targets]
        else:
            pairs = declared_targets(model, kind.name)
            if not pairs:
                raise UserError(
                    f"adapter spec {s.to_string()!r}: no targets given and {type(model).__name__} declares "
                    f"no default {kind.name!r} targets (class attribute adapter_targets); "
                    "add targets=<glob>, e.g. targets=*.qkv|*.proj")
        names = resolve_targets(model, kind, pairs, declared=not s.targets)
        base_spec = s.without_targets()
        for name in names:
            if (name, kind.name) in taken:
                raise UserError(f"{kind.name} adapter: module {name!r} already has a {kind.name} adapter; "
                                "call remove_adapters(model) first")
            taken.add((name, kind.name))
            module = model.get_submodule(name)
            adapter = kind.build(module, base_spec, name)
            adapter.kind = kind.name
            plan.append((module, adapter))
        shown = s.with_targets(_display(p, g) for p, g in pairs).to_string()
        applied.append(shown)
        targets[shown] = names
    snapshot_base(model)
    for module, adapter in plan:
        attach(module, adapter)
    set_norm_rule(model, train_norms)
    freeze_base(model)
    info = summary(model)
    return AdapterReport(info.trainable, info.total, info.adapters, applied, targets)


def remove_adapters(model: nn.Module) -> int:
    """Detach every adapter without merging (the base stays frozen, its norms follow
    ``train()`` again); returns how many."""
    found = list(iter_adapters(model))
    for _, module, adapter in found:
        detach(module, adapter.kind)
    clear_norm_rule(model)
    return len(found)


__all__ = ["AdapterReport", "ParamSummary", "adapter_specs", "apply_adapter", "declared_targets",
           "freeze_base", "has_adapters", "remove_adapters", "resolve_targets", "summary",
           "trainable_parameters", "PREFIX"]
