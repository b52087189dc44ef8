"""Model registry (timm-style): models register by decorator and are built by name.

Every model in every plugin registers here with a tiny config and an example-input
factory, so one integration test can run every model through the same checks (forward,
backward, output shape, adapters, export) and ``docs/models.md`` can list parameter counts.

Convention shared by all models: a class attribute ``adapter_targets`` maps an adapter kind
(``"lora"``, ``"bottleneck"``, ``"conv"``) to a tuple of module-name globs where that adapter
attaches by default, e.g. ``{"lora": ("*.qkv", "*.proj"), "bottleneck": ("*.mlp",)}``.

>>> import torch
>>> from torch import nn
>>> @register_model("doc_mlp", domain="doc", tiny={"width": 4},
...                 example_input=lambda: torch.randn(2, 3), overwrite=True)
... class DocMLP(nn.Module):
...     adapter_targets = {"lora": ("net",)}
...     def __init__(self, width=8):
...         super().__init__(); self.net = nn.Linear(3, width)
...     def forward(self, x):
...         return self.net(x)
>>> create_model("doc_mlp", width=5)(torch.randn(1, 3)).shape
torch.Size([1, 5])
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from .errors import UserError


@dataclass(frozen=True)
class ModelEntry:
    """A registered model: its class, its domain and what the shared checks need."""

    name: str
    cls: type
    domain: str
    tiny: dict[str, Any] = field(default_factory=dict)
    example_input: Callable[[], Any] | None = None
    default: dict[str, Any] = field(default_factory=dict)
    exportable: bool = True

    def build(self, **kwargs):
        return self.cls(**kwargs)

    def build_tiny(self):
        return self.cls(**self.tiny)


_MODELS: dict[str, ModelEntry] = {}


def register_model(
    name: str,
    *,
    domain: str,
    tiny: dict[str, Any] | None = None,
    example_input: Callable[[], Any] | None = None,
    default: dict[str, Any] | None = None,
    exportable: bool = True,
    overwrite: bool = False,
):
    """Class decorator: register ``cls`` under ``name``.

    ``tiny`` builds a small instance for tests; ``example_input()`` returns an input for
    that tiny instance; ``default`` holds the arguments of the size listed in docs/models.md.
    """

    def decorator(cls):
        if name in _MODELS and not overwrite and _MODELS[name].cls is not cls:
            raise ValueError(f"model {name!r} is already registered by {_MODELS[name].cls}")
        _MODELS[name] = ModelEntry(
            name, cls, domain, dict(tiny or {}), example_input, dict(default or {}), exportable
        )
        return cls

    return decorator


def list_models(domain: str | None = None) -> list[str]:
    """Names of the registered models, optionally for one domain."""
    return sorted(n for n, e in _MODELS.items() if domain is None or e.domain == domain)


def model_entry(name: str) -> ModelEntry:
    """The registry entry for ``name``; a clear error listing the choices otherwise."""
    try:
        return _MODELS[name]
    except KeyError:
        raise UserError(
            f"model.name: unknown model {name!r}; expected one of {', '.join(list_models()) or '(none)'}"
        ) from None


def create_model(name: str, **kwargs):
    """Build a registered model by name."""
    return model_entry(name).build(**kwargs)
