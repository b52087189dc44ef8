"""The plugin system: pluggy hook specifications, entry-point loading and the PluginManager.

Plugins are found through the ``sigplex.plugins`` entry-point group (built-ins too). A plugin
is a module (or object) with hook implementations marked by :data:`hookimpl`. Every hook has
the ``register_*(register)`` form: the core hands the plugin a callback and the plugin calls it
once per thing it contributes. Registration must stay cheap: register names and
``"module:attribute"`` strings, never import torch or a domain library at module level.

Environment variables: ``SIGPLEX_PLUGINS`` (comma-separated allow-list of plugin names) and
``SIGPLEX_DISABLE_PLUGINS`` (comma-separated block-list).

>>> class Hello:
...     @hookimpl
...     def register_tasks(self, register):
...         register(TaskSpec("hello", "says hello", "mymodule:HelloTask"))
>>> pm = PluginManager(entry_points=False)
>>> record = pm.add_plugin(Hello(), name="hello")
>>> [t.name for t in pm.tasks("hello")]
['hello']
"""
from __future__ import annotations

import os
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable

import pluggy

from .errors import UserError, notify
from .taskspec import TaskSpec, import_factory

PROJECT = "sigplex"
ENTRY_POINT_GROUP = "sigplex.plugins"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


class HookSpecs:
    """The hooks a plugin may implement. Each receives a ``register`` callback."""

    @hookspec
    def register_tasks(self, register: Callable[..., None]) -> None:
        """Register tasks: ``register(TaskSpec(name, description, factory, requires, extra))``.

        The first task a plugin registers is its default (``--plugin NAME`` runs it).
        ``register`` also accepts the TaskSpec fields as keyword arguments.
        """

    @hookspec
    def register_adapters(self, register: Callable[..., None]) -> None:
        """Register adapter kinds: ``register(kind, "module:factory", requires=(), extra=None)``.

        The factory follows the protocol of :mod:`sigplex.core.adapters`; the kind is then usable
        in ``--adapter KIND:key=value,...``. The core's own kinds (lora, bottleneck, conv)
        register through this hook too.
        """

    @hookspec
    def register_backbones(self, register: Callable[..., None]) -> None:
        """Deprecated (nothing consumed it): models reach the core through ``TaskSpec.models``. Ignored."""

    @hookspec
    def register_datasets(self, register: Callable[..., None]) -> None:
        """Deprecated (nothing consumed it): readers live in ``sigplex.datasets`` or the plugin. Ignored."""


HOOK_NAMES = ("register_tasks", "register_adapters", "register_backbones", "register_datasets")
DEPRECATED_HOOKS = {"register_backbones": "register models through TaskSpec.models",
                    "register_datasets": "read data in the task's build_data"}


@dataclass(frozen=True)
class ComponentSpec:
    """A lazily importable component (backbone, adapter kind, dataset reader)."""

    name: str
    factory: str
    plugin: str
    description: str = ""
    requires: tuple[str, ...] = ()
    extra: str | None = None

    def load(self) -> Any:
        return import_factory(self.factory, self.requires, self.extra, f"{self.name!r} from plugin {self.plugin!r}")


@dataclass
class PluginRecord:
    """What ``platform plugins list`` shows about one plugin."""

    name: str
    module: str = ""
    distribution: str = ""
    version: str = ""
    status: str = "ok"  # ok | unavailable | broken | disabled
    reason: str = ""
    traceback: str = field(default="", repr=False)
    tasks: list[TaskSpec] = field(default_factory=list)
    backbones: list[ComponentSpec] = field(default_factory=list)
    adapters: list[ComponentSpec] = field(default_factory=list)
    datasets: list[ComponentSpec] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "module": self.module,
            "distribution": self.distribution,
            "version": self.version,
            "status": self.status,
            "reason": self.reason,
            "tasks": [{"name": t.name, "description": t.description} for t in self.tasks],
            "backbones": [c.name for c in self.backbones],
            "adapters": [c.name for c in self.adapters],
            "datasets": [c.name for c in self.datasets],
        }


def _name_list(variable: str) -> set[str] | None:
    raw = os.environ.get(variable)
    if raw is None or not raw.strip():
        return None
    return {part.strip() for part in raw.split(",") if part.strip()}


class PluginManager:
    """Loads plugins, calls their hooks one plugin at a time, and keeps what they registered.

    A plugin that fails to import or whose hook raises is recorded as ``broken`` with the
    reason; it never stops the other plugins from loading.
    """

    def __init__(self, entry_points: bool = True):
        self._pm = pluggy.PluginManager(PROJECT)
        self._pm.add_hookspecs(HookSpecs)
        self.records: dict[str, PluginRecord] = {}
        self.core = PluginRecord(name="sigplex-core", module=__name__, distribution="sigplex")
        self._pm.register(_CoreComponents(), name=self.core.name)
        self._call_hooks(self.core)
        if entry_points:
            self.load_entry_points()

    # --- loading --------------------------------------------------------------------
    def load_entry_points(self) -> None:
        from importlib.metadata import entry_points

        allow = _name_list("SIGPLEX_PLUGINS")
        block = _name_list("SIGPLEX_DISABLE_PLUGINS") or set()
        seen = set()
        for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            if ep.name in seen:
                continue
            seen.add(ep.name)
            dist = getattr(ep, "dist", None)
            record = PluginRecord(
                name=ep.name,
                module=ep.value,
                distribution=getattr(dist, "name", "") or "",
                version=getattr(dist, "version", "") or "",
            )
            self.records[ep.name] = record
            if (allow is not None and ep.name not in allow) or ep.name in block:
                record.status, record.reason = "disabled", "disabled by SIGPLEX_PLUGINS/SIGPLEX_DISABLE_PLUGINS"
                continue
            try:
                plugin = ep.load()
            except Exception as exc:  # a broken plugin must not break the CLI
                record.status = "broken"
                record.reason = f"import failed: {type(exc).__name__}: {exc}"
                record.traceback = traceback.format_exc()
                continue
            self._register(plugin, record)

    def add_plugin(self, plugin: Any, name: str, *, distribution: str = "", version: str = "") -> PluginRecord:
        """Register a plugin object directly (for tests and embedding); returns its record."""
        record = PluginRecord(name=name, module=getattr(plugin, "__name__", type(plugin).__name__),
                              distribution=distribution, version=version)
        self.records[name] = record
        self._register(plugin, record)
        return record

    def _register(self, plugin: Any, record: PluginRecord) -> None:
        try:
            self._pm.register(plugin, name=record.name)
        except Exception as exc:
            record.status, record.reason = "broken", f"registration failed: {type(exc).__name__}: {exc}"
            return
        unknown = [
            impl.function.__name__
            for hook_name, hook in vars(self._pm.hook).items()
            if hook_name not in HOOK_NAMES and not hook_name.startswith("_")
            for impl in getattr(hook, "get_hookimpls", lambda: [])()
            if impl.plugin_name == record.name
        ]
        for name in unknown:
            notify(f"plugin {record.name!r} implements unknown hook {name!r}; it is ignored")
        try:
            self._call_hooks(record)
        except Exception as exc:
            record.status = "broken"
            record.reason = f"hook failed: {type(exc).__name__}: {exc}"
            record.traceback = traceback.format_exc()
            return
        missing = sorted({m for t in record.tasks for m in t.missing_modules()})
        if missing:
            fixes = []
            for t in record.tasks:
                if t.missing_modules():
                    hint = t.install
                    if not hint and record.distribution not in ("", "sigplex"):
                        hint = f"pip install '{record.distribution}[{t.extra}]'" if t.extra else ""
                    hint = hint or t.install_hint()
                    if hint and hint not in fixes:
                        fixes.append(hint)
            fix = " or ".join(fixes) or "install the missing modules"
            record.status = "unavailable"
            record.reason = f"missing {', '.join(missing)}: {fix}"

    def _call_hooks(self, record: PluginRecord) -> None:
        def impls(hook_name):
            hook = getattr(self._pm.hook, hook_name)
            return [i for i in hook.get_hookimpls() if i.plugin_name == record.name]

        def register_task(spec: TaskSpec | None = None, **kwargs):
            if spec is None:
                kwargs["requires"] = tuple(kwargs.get("requires", ()))
                spec = TaskSpec(**kwargs)
            if not isinstance(spec, TaskSpec):
                raise TypeError(f"register_tasks: expected a TaskSpec, got {type(spec).__name__}")
            record.tasks.append(spec)

        def component_register(target: list):
            def register(name: str, factory: str, description: str = "", requires=(), extra=None):
                target.append(ComponentSpec(name, factory, record.name, description, tuple(requires), extra))

            return register

        callbacks = {
            "register_tasks": register_task,
            "register_backbones": component_register(record.backbones),
            "register_adapters": component_register(record.adapters),
            "register_datasets": component_register(record.datasets),
        }
        for hook_name in HOOK_NAMES:
            for impl in impls(hook_name):
                if hook_name in DEPRECATED_HOOKS:
                    notify(f"plugin {record.name!r} implements {hook_name}, which is deprecated and ignored: "
                           f"{DEPRECATED_HOOKS[hook_name]}", DeprecationWarning)
                    continue
                impl.function(**{a: callbacks[hook_name] for a in impl.argnames})

    # --- queries --------------------------------------------------------------------
    def plugin(self, name: str) -> PluginRecord:
        """The record of an active plugin; a clear error for unknown, broken or unavailable ones."""
        record = self.records.get(name)
        if record is None:
            known = ", ".join(sorted(self.records)) or "none installed"
            raise UserError(f"--plugin {name!r}: no such plugin (installed: {known})")
        if record.status != "ok":
            raise UserError(f"--plugin {name!r} is {record.status}: {record.reason}")
        return record

    def tasks(self, plugin: str) -> list[TaskSpec]:
        return list(self.plugin(plugin).tasks)

    def task(self, plugin: str, task: str | None = None) -> TaskSpec:
        """The named task of a plugin, or its default (first registered) task."""
        specs = self.tasks(plugin)
        if not specs:
            raise UserError(f"--plugin {plugin!r} registers no tasks")
        if task is None:
            return specs[0]
        for spec in specs:
            if spec.name == task:
                return spec
        raise UserError(f"--task {task!r}: plugin {plugin!r} has tasks {', '.join(s.name for s in specs)}")

    def components(self, kind: str) -> dict[str, ComponentSpec]:
        """All registered components of ``kind`` ("adapters") of the core and active plugins, by name."""
        out: dict[str, ComponentSpec] = {}
        for record in [self.core, *self.records.values()]:
            if record.status in ("ok", "unavailable"):
                for comp in getattr(record, kind):
                    out.setdefault(comp.name, comp)
        return out


#: the core's own adapter kinds: name -> (factory, description); the one table of them
CORE_ADAPTER_KINDS = {
    "lora": ("sigplex.core.adapters.lora:LoRAKind", "low-rank update of Linear/Conv weights"),
    "bottleneck": ("sigplex.core.adapters.bottleneck:BottleneckKind", "AdaptFormer bottleneck beside a block"),
    "conv": ("sigplex.core.adapters.conv:ConvAdapterKind", "depthwise-conv adapter"),
}


class _CoreComponents:
    """The core's own adapter kinds, registered through the same hook as a plugin's."""

    @hookimpl
    def register_adapters(self, register):
        for name, (factory, description) in CORE_ADAPTER_KINDS.items():
            register(name, factory, description=description)


_DEFAULT: PluginManager | None = None


def get_plugin_manager(reload: bool = False) -> PluginManager:
    """The process-wide PluginManager, loading entry points on first use."""
    global _DEFAULT
    if _DEFAULT is None or reload:
        _DEFAULT = PluginManager()
    return _DEFAULT
