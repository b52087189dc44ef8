"""What adapter training does to the base's norms and buffers: the reloaded model is the trained one.

The rule (docs/adapters.md, "Norms and buffers"):

* by default the frozen base keeps its norm statistics: every base norm with running
  statistics (BatchNorm, SyncBatchNorm, InstanceNorm with ``track_running_stats``) is held in
  eval mode while adapters train, so ``model.train()`` leaves it normalising with the
  pre-trained statistics and never updates them;
* with ``train_norms=True`` the base's norms (those above plus GroupNorm, LayerNorm, RMSNorm)
  train instead: their affine parameters become trainable and their statistics move;
* either way, every base tensor that training changed (trained norm parameters, moved
  statistics, any other buffer a module updates in training) is saved with the adapters and
  restored on load, so a reloaded adapter run is, bit for bit, the model training scored.

>>> import torch
>>> from torch import nn
>>> from sigplex.core.adapters import apply_adapter
>>> net = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4))
>>> _ = apply_adapter(net, "lora:r=2,targets=0")
>>> _ = net.train()
>>> net[1].training                      # held: the pre-trained statistics stay in use
False
>>> _ = net(torch.randn(8, 4))
>>> int(net[1].num_batches_tracked)      # and unchanged
0
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn.modules.batchnorm import _NormBase

from .base import Adapter, adapter_module_names, is_adapter_key

#: norms whose parameters train under ``train_norms=True``
NORM_TYPES: tuple[type[nn.Module], ...] = (_NormBase, nn.GroupNorm, nn.LayerNorm, nn.RMSNorm)
#: model attribute (outside its state_dict) holding the base's state_dict tensors as adapters were applied
SNAPSHOT_ATTR = "_sigplex_base_snapshot"
#: model attribute holding the norm rule in force: "eval" (held) or "train"
RULE_ATTR = "_sigplex_norm_rule"


class HeldInEval:
    """Mixin that keeps a norm in eval mode whatever ``train()`` asks (swapped in by :func:`hold_norms`)."""

    def train(self, mode: bool = True):
        return super().train(False)

    def extra_repr(self) -> str:
        return super().extra_repr() + ", held in eval while adapters train"


_HELD: dict[type, type] = {}


def _held_class(cls: type) -> type:
    if cls not in _HELD:
        _HELD[cls] = type(cls.__name__, (HeldInEval, cls), {"__module__": cls.__module__,
                                                             "__qualname__": cls.__qualname__})
    return _HELD[cls]


def base_modules(model: nn.Module):
    """``(name, module)`` of every module outside the adapters (pre-order, each module once)."""
    seen: set[int] = set()
    stack: list[tuple[str, nn.Module]] = [("", model)]
    while stack:
        name, module = stack.pop()
        if isinstance(module, Adapter) or id(module) in seen:
            continue
        seen.add(id(module))
        yield name, module
        children = [(f"{name}.{n}" if name else n, c) for n, c in module._modules.items() if c is not None]
        stack.extend(reversed(children))


def tracks_statistics(module: nn.Module) -> bool:
    """Whether ``module`` is a norm whose running statistics move in train mode."""
    return isinstance(module, _NormBase) and module.track_running_stats


def hold_norms(model: nn.Module) -> None:
    """Hold every base norm with running statistics in eval mode."""
    for _, module in base_modules(model):
        if tracks_statistics(module) and not isinstance(module, HeldInEval):
            module.__class__ = _held_class(type(module))
            module.train(False)


def release_norms(model: nn.Module) -> None:
    """Undo :func:`hold_norms` (the modules follow ``train()``/``eval()`` again)."""
    for _, module in model.named_modules():
        if isinstance(module, HeldInEval):
            module.__class__ = type(module).__mro__[2]  # (held class, HeldInEval, original, ...)


def norm_parameters(model: nn.Module) -> list[tuple[str, nn.Parameter]]:
    """``(name, parameter)`` of the base's norm layers (the ones ``train_norms`` trains)."""
    out = []
    for name, module in base_modules(model):
        if isinstance(module, NORM_TYPES):
            out += [(f"{name}.{n}" if name else n, p) for n, p in module.named_parameters(recurse=False)]
    return out


def set_norm_rule(model: nn.Module, train_norms: bool) -> None:
    """Put the rule in force: hold the norms, or let them follow ``train()`` (which parameters train is
    :func:`~sigplex.core.adapters.inject.freeze_base`'s, which reads the rule)."""
    if train_norms:
        release_norms(model)
    else:
        hold_norms(model)
    model.__dict__[RULE_ATTR] = "train" if train_norms else "eval"


def norm_rule(model: nn.Module) -> str:
    """``"train"`` or ``"eval"``: the rule :func:`set_norm_rule` put in force (``"eval"`` if none)."""
    return model.__dict__.get(RULE_ATTR, "eval")


def _base_buffers(model: nn.Module) -> dict[str, torch.Tensor]:
    """The base's buffers as they appear in its state_dict (persistent buffers only)."""
    names = adapter_module_names(model)
    buffers = {n for n, _ in model.named_buffers()}
    return {k: v for k, v in model.state_dict().items() if k in buffers and not is_adapter_key(k, names)}


def snapshot_base(model: nn.Module) -> None:
    """Remember the base's buffers as they are now (CPU copies), once per model; parameters are frozen."""
    if SNAPSHOT_ATTR not in model.__dict__:
        model.__dict__[SNAPSHOT_ATTR] = {k: v.detach().to("cpu", copy=True) for k, v in _base_buffers(model).items()}


def clear_norm_rule(model: nn.Module) -> None:
    """Forget the rule and the snapshot (adapters removed): held norms follow ``train()`` again."""
    release_norms(model)
    model.__dict__.pop(RULE_ATTR, None)
    model.__dict__.pop(SNAPSHOT_ATTR, None)


def changed_base_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """Every trainable base parameter, and every base buffer that differs from the snapshot."""
    snapshot = model.__dict__.get(SNAPSHOT_ATTR, {})
    names = adapter_module_names(model)
    out = {n: p for n, p in model.named_parameters() if p.requires_grad and not is_adapter_key(n, names)}
    out.update({k: v for k, v in _base_buffers(model).items() if k not in snapshot or not _same(snapshot[k], v)})
    return {k: v.detach().to("cpu").contiguous().clone() for k, v in out.items()}


def restore_base_state(model: nn.Module, saved: dict[str, torch.Tensor]) -> None:
    """Load ``saved`` base tensors and put every other base buffer back to the snapshot."""
    snapshot = model.__dict__.get(SNAPSHOT_ATTR, {})
    back = {k: snapshot[k] for k, v in _base_buffers(model).items()
            if k not in saved and k in snapshot and not _same(snapshot[k], v)}
    if saved or back:
        model.load_state_dict({**back, **saved}, strict=False)


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.shape == b.shape and a.dtype == b.dtype and torch.equal(a, b.detach().to(a.device))
