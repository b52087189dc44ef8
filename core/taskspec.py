"""A task as a plugin registers it: names and import paths, nothing imported until it is loaded.

Registering a plugin builds :class:`TaskSpec` records only, so ``platform plugins list`` stays
fast and can say which extra is missing without importing torch or a domain library.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass

from .errors import UserError


@dataclass(frozen=True)
class TaskSpec:
    """A task as registered by a plugin (cheap: strings only, nothing imported).

    ``factory`` is ``"package.module:attribute"``; the attribute is a :class:`Task` subclass or
    a callable returning a Task instance. ``requires`` lists importable module names the task
    needs (checked with ``importlib.util.find_spec``). ``install`` is the pip command that
    provides them (a third-party plugin names its own package, e.g. ``"pip install my-plugin[gpu]"``);
    ``extra`` is the shorthand for a sigplex extra (``extra="brain"`` means
    ``pip install 'sigplex[brain]'``). ``models`` lists the modules whose import registers the
    task's models in :mod:`sigplex.core.models`; the core imports them when the task loads.
    """

    name: str
    description: str
    factory: str
    requires: tuple[str, ...] = ()
    extra: str | None = None
    models: tuple[str, ...] = ()
    install: str | None = None

    def missing_modules(self) -> list[str]:
        return missing_modules(self.requires)

    def install_hint(self) -> str:
        return install_hint(self.install, self.extra)

    def load(self):
        """Import the model modules and the factory, and build the task (torch and domain libraries load here).

        Whether it is a :class:`sigplex.core.task.Task` is checked where the core loads it
        (:func:`sigplex.core.loading.load_task`)."""
        factory = import_factory(self.factory, self.requires, self.extra, f"task {self.name!r}", self.install)
        for module in self.models:
            importlib.import_module(module)
        return factory()


def missing_modules(requires) -> list[str]:
    """The modules of ``requires`` that cannot be found (checked with ``find_spec``, nothing imported)."""
    from importlib.util import find_spec

    missing = []
    for module in requires:
        try:
            if find_spec(module) is None:
                missing.append(module)
        except (ImportError, ValueError):
            missing.append(module)
    return missing


def install_hint(install: str | None, extra: str | None) -> str:
    """The command that installs what a task or component needs ('' if unknown)."""
    if install:
        return install
    return f"pip install 'sigplex[{extra}]'" if extra else ""


def import_factory(factory: str, requires=(), extra: str | None = None, what: str = "it", install: str | None = None):
    """Import ``"module:attribute"`` after checking ``requires``; a missing module names the install command."""
    missing = missing_modules(requires)
    if missing:
        hint = install_hint(install, extra)
        raise UserError(f"{what} needs {', '.join(missing)}" + (f": {hint}" if hint else ""))
    module_name, _, attr = factory.partition(":")
    return getattr(importlib.import_module(module_name), attr)
