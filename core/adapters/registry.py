"""Registry of adapter kinds: the base classes every kind builds on, and name → kind lookup.

An adapter *kind* (``lora``, ``bottleneck``, ``conv``, or one a plugin adds) is an
:class:`AdapterKind`: a spec class (the keys its spec string accepts), a check saying
whether it can wrap a module, and a ``build`` that makes the :class:`Adapter` module
attached to that target. Built-in kinds register through :func:`register_adapter_kind`
exactly as plugins do (the ``register_adapters(register)`` hook hands plugins that function).

A kind may be registered lazily as an import path ``"package.module:ClassName"`` so that
registering a plugin imports no torch; it is resolved on first use.
"""
from __future__ import annotations

import importlib
import re
from typing import TYPE_CHECKING, Any, ClassVar

from ..errors import UserError

if TYPE_CHECKING:  # pragma: no cover
    from torch import nn

    from .spec import AdapterSpec

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_KINDS: dict[str, Any] = {}


class AdapterKind:
    """One kind of adapter. Subclass it, set ``Spec`` and implement ``check`` and ``build``.

    ``mergeable`` kinds implement ``Adapter.merge``/``Adapter.unmerge`` (folding the adapter
    into the target's weights); others are refused by ``merge_adapters``.
    """

    name: ClassVar[str] = ""
    Spec: ClassVar[type["AdapterSpec"]]
    mergeable: ClassVar[bool] = False
    #: what this kind wraps, for error messages (e.g. "nn.Linear and nn.Conv1d/2d/3d")
    wraps: ClassVar[str] = "modules"

    def check(self, module: "nn.Module") -> str | None:
        """Return ``None`` if this kind can wrap ``module``, else a short reason."""
        return None

    def build(self, module: "nn.Module", spec: "AdapterSpec", target_name: str) -> "nn.Module":
        """Make the adapter module (a :class:`sigplex.core.adapters.base.Adapter`) for ``module``."""
        raise NotImplementedError


def register_adapter_kind(name: str, kind: Any, *, overwrite: bool = False) -> None:
    """Register an adapter kind under ``name``.

    ``kind`` is an :class:`AdapterKind` subclass or instance, or an import path
    ``"package.module:ClassName"`` resolved on first use. Re-registering a name is an error
    unless ``overwrite=True`` (or it is the very same object).
    """
    if not isinstance(name, str) or not _NAME.match(name):
        raise UserError(f"adapter kind name {name!r}: expected lowercase letters, digits and '_'")
    if name in _KINDS and not overwrite and _KINDS[name] is not kind and _KINDS[name] != kind:
        raise UserError(f"adapter kind {name!r} is already registered ({_KINDS[name]!r})")
    _KINDS[name] = kind


def adapter_kinds() -> list[str]:
    """Names of the registered adapter kinds (the core's, plugins' and ones registered in code), sorted."""
    from ..plugins import CORE_ADAPTER_KINDS, get_plugin_manager

    try:
        names = set(get_plugin_manager().components("adapters"))
    except Exception:  # a broken plugin environment: the core's own kinds still work
        names = set(CORE_ADAPTER_KINDS)
    return sorted(names | set(_KINDS))


def get_kind(name: str) -> AdapterKind:
    """The registered kind ``name`` as an instance; a clear error listing the choices otherwise."""
    if name not in _KINDS:
        _from_plugins(name)
    try:
        kind = _KINDS[name]
    except KeyError:
        raise UserError(
            f"unknown adapter kind {name!r}; expected one of {', '.join(adapter_kinds())}"
        ) from None
    if isinstance(kind, str):
        module_name, _, attr = kind.partition(":")
        try:
            kind = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as exc:
            raise UserError(f"adapter kind {name!r}: cannot import {_KINDS[name]!r} ({exc})") from exc
        _KINDS[name] = kind
    if isinstance(kind, type):
        kind = kind()
        _KINDS[name] = kind
    if getattr(kind, "name", "") != name:
        kind.name = name
    spec = getattr(kind, "Spec", None)
    if spec is None:
        raise UserError(f"adapter kind {name!r}: {type(kind).__name__} has no Spec class")
    if spec.kind != name:  # the same kind registered under another name: its specs carry that name
        kind.Spec = type(spec.__name__, (spec,), {"__module__": spec.__module__, "kind": name})
    return kind


def _from_plugins(name: str) -> None:
    """Register kind ``name`` if an active plugin's ``register_adapters`` hook declared it."""
    from ..plugins import CORE_ADAPTER_KINDS, get_plugin_manager

    try:
        comp = get_plugin_manager().components("adapters").get(name)
    except Exception:  # a broken plugin environment: only the core's own kinds
        if name in CORE_ADAPTER_KINDS:
            register_adapter_kind(name, CORE_ADAPTER_KINDS[name][0])
        return
    if comp is not None:
        register_adapter_kind(name, comp.load())  # a missing dependency is a clear UserError
