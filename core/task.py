"""The task contract: what a plugin provides so the core can train, evaluate, predict and export.

Two levels, so registering stays cheap:

* :class:`TaskSpec` — what a plugin registers from ``register_tasks``: a name, a one-line
  description, the modules it needs and the ``"module:attribute"`` of a factory that returns
  the real :class:`Task`. Registering imports neither torch nor any domain library.
* :class:`Task` — the object that does the work, built only when a command needs it.
  Subclass :class:`Task` and override what your domain needs; see docs/plugin-authoring.md.

Ownership: the core owns the loop, devices, samplers, AMP, accumulation, clipping,
optimizer, schedule, checkpoints and logging. The task owns ``batch -> loss``, the full
evaluation, prediction and its natural output, plots, and the embedded default data.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar, Mapping, Sequence

from .errors import UserError


@dataclass(frozen=True)
class TaskSpec:
    """A task as registered by a plugin (cheap: strings only, nothing imported).

    ``factory`` is ``"package.module:attribute"``; the attribute is a :class:`Task` subclass or
    a callable returning a Task instance. ``requires`` lists importable module names the task
    needs (checked with ``importlib.util.find_spec``); ``extra`` is the pip extra providing them.
    ``models`` lists modules whose import registers the task's models in
    :mod:`sigplex.core.models` (the shared model checks and docs/models.md import them).
    """

    name: str
    description: str
    factory: str
    requires: tuple[str, ...] = ()
    extra: str | None = None
    models: tuple[str, ...] = ()  # modules whose import registers the task's models

    def missing_modules(self) -> list[str]:
        return missing_modules(self.requires)

    def load(self) -> "Task":
        """Import the factory and build the Task (this is where torch and domain libraries load)."""
        task = import_factory(self.factory, self.requires, self.extra, f"task {self.name!r}")()
        if not isinstance(task, Task):
            raise TypeError(f"{self.factory} returned {type(task).__name__}, expected a sigplex Task")
        return task


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


def import_factory(factory: str, requires=(), extra: str | None = None, what: str = "it"):
    """Import ``"module:attribute"`` after checking ``requires``; a missing module names the pip extra."""
    missing = missing_modules(requires)
    if missing:
        fix = f": pip install 'sigplex[{extra}]'" if extra else ""
        raise UserError(f"{what} needs {', '.join(missing)}{fix}")
    module_name, _, attr = factory.partition(":")
    return getattr(importlib.import_module(module_name), attr)


@dataclass
class DataSplits:
    """Map-style datasets for one run; ``val``/``test`` may be None."""

    train: Any
    val: Any = None
    test: Any = None
    info: dict = field(default_factory=dict)

    def get(self, split: str):
        if split not in ("train", "val", "test"):
            raise UserError(f"split {split!r}: expected train, val or test")
        return getattr(self, split)


class Task:
    """Base class of every task; subclass and override. Attributes:

    * ``name`` — the task's name (matches its TaskSpec).
    * ``config_class`` — a :class:`~sigplex.core.config.TaskConfig` subclass.
    * ``defaults`` — overrides of the config class's defaults (e.g. a CPU-sized trainer).
    * ``presets`` — named config overlays, usable as ``--config NAME``.
    * ``monitor`` / ``monitor_mode`` — the validation metric that picks the best checkpoint.
    * ``output_kind`` — ``"file"`` or ``"folder"``: what ``predict --output`` names.
    * ``random_items`` — False when loading an item uses no randomness (no augmentation):
      the core then skips per-item seeding, which costs ~0.3 ms per item.
    """

    name: ClassVar[str] = "task"
    config_class: ClassVar[type] = None  # type: ignore[assignment]
    defaults: ClassVar[Mapping[str, Any]] = {}
    presets: ClassVar[Mapping[str, Mapping[str, Any]]] = {}
    monitor: ClassVar[str] = "loss"
    monitor_mode: ClassVar[str] = "min"
    output_kind: ClassVar[str] = "file"
    random_items: ClassVar[bool] = True

    # --- building -------------------------------------------------------------------
    def configure(self, config, data: "DataSplits"):
        """Return ``config`` completed from the data (e.g. the number of channels or series).

        Called after :meth:`build_data` and before :meth:`build_model`; the returned config is
        the one saved with the run, so prediction rebuilds the same model. Default: unchanged.
        """
        return config

    def build_model(self, config):
        """Return the ``nn.Module`` described by ``config.model`` (weights random)."""
        raise NotImplementedError

    def build_data(self, config, data: Path | None) -> DataSplits:
        """Map-style datasets for train/val/test; ``data=None`` means the embedded default data."""
        raise NotImplementedError

    def collate(self, items: Sequence[Any]):
        """Merge dataset items into a batch (default: ``torch.utils.data.default_collate``)."""
        from torch.utils.data import default_collate

        return default_collate(items)

    def seed_item(self, seed: int) -> None:
        """Seed every random source a dataset item's loading uses (called before each item).

        The core seeds Python, NumPy and torch itself; override if your transforms keep their
        own generators (e.g. MONAI's ``Randomizable.set_random_state``).
        """

    # --- training -------------------------------------------------------------------
    def training_step(self, model, batch, config):
        """Return the loss tensor, or ``(loss, {name: float})`` to log extra scalars."""
        raise NotImplementedError

    def evaluate(self, model, dataset, config) -> dict[str, float]:
        """Run full inference over ``dataset`` and return named scalar metrics."""
        raise NotImplementedError

    # --- using ----------------------------------------------------------------------
    def predict(self, model, inputs, config):
        """Return the domain's natural output for in-memory inputs or a path."""
        raise NotImplementedError

    def write_prediction(self, prediction, output: Path, *, source=None, overwrite: bool = False) -> list[Path]:
        """Write ``prediction`` to ``output``; return the paths written (never overwrite unless asked)."""
        raise NotImplementedError

    def example_input(self, config):
        """A small input tensor (or tuple of tensors) that the model accepts, for export."""
        raise NotImplementedError

    def plots(self, model, data: DataSplits, config, run_dir: Path) -> list[Path]:
        """Optional: write PNG plots a person would look at into ``run_dir``."""
        return []

    def move_batch(self, batch, device):
        """Move a batch to ``device`` (tensors in nested dicts/lists/tuples)."""
        return move_to(batch, device)


def move_to(obj, device):
    import torch

    if isinstance(obj, torch.Tensor):
        return obj.to(device, non_blocking=True)
    if isinstance(obj, Mapping):
        return {k: move_to(v, device) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(move_to(v, device) for v in obj)
    return obj


RegisterTask = Callable[[TaskSpec], None]
