"""The adapter module base class and the forward hook that runs adapters beside their target.

Adapters never replace the module they adapt: the adapter is attached as an extra child
named ``adapter_<kind>`` of the target (so base keys such as ``attn.qkv.weight`` keep their
names and adapter keys read ``attn.qkv.adapter_lora.A``), and one forward hook on the target
adds every attached adapter's contribution to the target's output.
"""
from __future__ import annotations

import torch
from torch import nn

from ..errors import UserError

PREFIX = "adapter_"


class Adapter(nn.Module):
    """Base of every adapter module. ``forward(module, x, output)`` returns the new output."""

    kind: str = ""

    def __init__(self, spec, target_name: str):
        super().__init__()
        self.spec = spec  # the kind's pydantic spec (targets=None); plain attribute
        self.target_name = target_name  # for error messages only

    def forward(self, module: nn.Module, x: torch.Tensor, output: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def merge(self, module: nn.Module) -> None:
        """Fold this adapter into ``module``'s weights (mergeable kinds only)."""
        raise UserError(f"{self.kind} adapter on {self.target_name!r} cannot be merged into weights")

    def unmerge(self, module: nn.Module) -> None:
        """Undo :meth:`merge` on ``module``'s weights."""
        raise UserError(f"{self.kind} adapter on {self.target_name!r} cannot be unmerged")


class AdapterHook:
    """Forward hook (picklable, deep-copyable) adding each ``adapter_*`` child's output.

    It looks adapters up on the module at call time, so a deep-copied model uses its own
    adapters and a module without adapters passes its output through unchanged.
    """

    def __call__(self, module, args, kwargs, output):
        adapters = [m for n, m in module._modules.items() if n.startswith(PREFIX) and isinstance(m, Adapter)]
        if not adapters:
            return None
        if args:
            x = args[0]
        else:
            x = next((v for v in kwargs.values() if isinstance(v, torch.Tensor)), None)
        if not isinstance(x, torch.Tensor) or not isinstance(output, torch.Tensor):
            name = adapters[0].target_name
            raise UserError(
                f"adapter on {name!r}: the module must take a tensor as first input and return one "
                f"tensor (got {type(x).__name__} -> {type(output).__name__})"
            )
        for adapter in adapters:
            output = adapter(module, x, output)
        return output


class AdaptedSequential(nn.Sequential):
    """An ``nn.Sequential`` with adapters attached: iteration, ``len`` and indexing (and so its
    forward) see only its own layers, not the ``adapter_*`` children. Swapped in by
    :func:`attach` and back out by :func:`detach`; state_dict keys are unchanged."""

    def _layers(self) -> list[nn.Module]:
        return [m for n, m in self._modules.items() if not n.startswith(PREFIX)]

    def __iter__(self):
        return iter(self._layers())

    def __len__(self) -> int:
        return len(self._layers())

    def __getitem__(self, idx):
        if isinstance(idx, slice):
            return nn.Sequential(*self._layers()[idx])
        return self._layers()[idx]


def unsupported_container(module: nn.Module) -> str | None:
    """Why adapters cannot be attached to ``module`` as children (None if they can)."""
    if isinstance(module, (nn.ModuleList, nn.ModuleDict)):
        return f"a {type(module).__name__} (a container without forward; target its layers)"
    if isinstance(module, nn.Sequential) and type(module) not in (nn.Sequential, AdaptedSequential):
        return (f"a {type(module).__name__} (an nn.Sequential subclass iterates its children, "
                "adapters included; target its layers or its parent)")
    return None


def _has_hook(module: nn.Module) -> bool:
    return any(isinstance(h, AdapterHook) for h in module._forward_hooks.values())


def attach(module: nn.Module, adapter: Adapter) -> None:
    """Attach ``adapter`` as ``module.adapter_<kind>`` and make sure the hook is installed."""
    if type(module) is nn.Sequential:
        module.__class__ = AdaptedSequential
    module.add_module(PREFIX + adapter.kind, adapter)
    if not _has_hook(module):
        module.register_forward_hook(AdapterHook(), with_kwargs=True)


def detach(module: nn.Module, kind: str) -> Adapter:
    """Remove and return ``module.adapter_<kind>``; drop the hook when no adapter is left."""
    adapter = module._modules.pop(PREFIX + kind)
    if not any(n.startswith(PREFIX) for n in module._modules):
        for key, hook in list(module._forward_hooks.items()):
            if isinstance(hook, AdapterHook):
                del module._forward_hooks[key]
                getattr(module, "_forward_hooks_with_kwargs", {}).pop(key, None)
                getattr(module, "_forward_hooks_always_called", {}).pop(key, None)
        if type(module) is AdaptedSequential:
            module.__class__ = nn.Sequential
    return adapter


def iter_adapters(model: nn.Module):
    """Yield ``(target_name, target_module, adapter)`` for every attached adapter."""
    for name, module in model.named_modules():
        for child_name, child in module._modules.items():
            if child_name.startswith(PREFIX) and isinstance(child, Adapter):
                yield name, module, child


def adapter_module_names(model: nn.Module) -> set[str]:
    """Full module names of all adapter modules (``blocks.0.attn.qkv.adapter_lora`` ...)."""
    return {(f"{t}." if t else "") + PREFIX + a.kind for t, _, a in iter_adapters(model)}


def is_adapter_key(key: str, adapter_names: set[str]) -> bool:
    """Whether a parameter/state key lies under one of ``adapter_names``."""
    parts = key.split(".")
    return any(".".join(parts[:i]) in adapter_names for i in range(1, len(parts)))


def factory_kwargs(module: nn.Module) -> dict:
    """device/dtype of the module's first floating parameter (for building adapters beside it)."""
    for p in module.parameters():
        if p.is_floating_point():
            return {"device": p.device, "dtype": p.dtype}
    return {}


def first_last(module: nn.Module, types: tuple[type, ...]):
    """First and last submodule (in registration order, the module itself first) of ``types``,
    ignoring adapters; ``(None, None)`` if there is none."""
    found = []
    stack = [module]
    while stack:  # pre-order walk that skips adapter subtrees
        m = stack.pop()
        if isinstance(m, Adapter):
            continue
        if isinstance(m, types):
            found.append(m)
        stack.extend(reversed(list(m._modules.values())))
    return (found[0], found[-1]) if found else (None, None)


#: attribute (in the model's ``__dict__``, so not part of its state_dict) holding merged LoRA
#: adapters that ``unmerge_adapters`` can take out again
MERGED_ATTR = "_sigplex_merged_adapters"


def merged_stash(model: nn.Module) -> list:
    return model.__dict__.get(MERGED_ATTR) or []
