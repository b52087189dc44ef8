"""Older task contracts, kept working for one release: the only module that reads a task with getattr.

* **v1** (before :class:`~sigplex.core.task.Prepared`): recognised by what ``build_data`` returns
  (a :class:`DataSplits`), or, for a saved run, by ``run.json``'s ``contract``.
  :class:`V1TaskAdapter` presents it to the core with today's signatures.
* **v2** (before the Task declared its card, :class:`~sigplex.core.task.StepResult` and one
  ``output_files`` signature): :func:`upgrade_v2` gives such a task today's members and names the
  overrides v3 drops (``prepare_model``, ``move_batch``; still called for one release), and
  :func:`step_result` reads the tuples its ``training_step`` returns. One DeprecationWarning per
  task class names the replacements.
"""
from __future__ import annotations

import inspect
from pathlib import Path

from .datasplits import DataSplits
from .errors import notify
from .task import Prepared, StepResult, Task, TaskCard

CARD_FIELDS = ("intended_use", "limitations", "data_license")


def warn_v1(task) -> None:
    """Tell the user once per task class that it uses contract v1, naming the replacement."""
    plugin = type(task).__module__.split(".")[0]
    message = (f"plugin {plugin} uses the v1 task contract ({type(task).__name__}); it keeps working for one release. "
               "Return sigplex.core.task.Prepared from build_data and take `prepared` instead of `config` "
               "(see docs/plugin-authoring.md, 'Moving from contract v1')")
    notify(message, DeprecationWarning)


class V1TaskAdapter(Task):
    """Wraps a v1 task so the core can call it with v2 signatures."""

    contract = 1

    def __init__(self, task):
        self.v1 = task
        cls = type(task)
        for attr in ("name", "config_class", "presets", "monitor", "monitor_mode", "random_items"):
            setattr(self, attr, getattr(cls, attr, getattr(Task, attr, None)))
        self.defaults = dict(getattr(task, "defaults", {}) or {})
        self.output_suffixes = ()
        self.card = TaskCard(*(str(getattr(task, f, "") or "") for f in CARD_FIELDS))
        warn_v1(task)

    def __getattr__(self, name):  # load_weights, infer helpers, ...
        return getattr(self.__dict__["v1"], name)

    def _splits(self, prepared: Prepared) -> DataSplits:
        return DataSplits(prepared.train, prepared.val, prepared.test, info=prepared.state.get("info", {}))

    def build_data(self, config, data):
        splits = self.v1.build_data(config, data)
        return self.from_splits(config, splits)

    def from_splits(self, config, splits: DataSplits) -> Prepared:
        config = self.v1.configure(config, splits) if hasattr(self.v1, "configure") else config
        return Prepared(config=config, train=splits.train, val=splits.val, test=splits.test)

    def build_model(self, config):
        return self.v1.build_model(config)

    def collate(self, items):
        return self.v1.collate(items)

    def _overrides(self, name: str) -> bool:
        return getattr(type(self.v1), name, None) is not getattr(Task, name, None)

    def seed_item(self, seed, prepared):
        if self._overrides("seed_item"):
            self.v1.seed_item(seed)

    def training_step(self, model, batch, prepared):
        return self.v1.training_step(model, batch, prepared.config)

    def evaluate(self, model, dataset, prepared):
        return self.v1.evaluate(model, dataset, prepared.config)

    def predict(self, model, inputs, prepared):
        return self.v1.predict(model, inputs, prepared.config)

    def write_prediction(self, prediction, output: Path, prepared, source=None):
        return self.v1.write_prediction(prediction, Path(output), source=source, overwrite=True)

    def example_input(self, prepared):
        return self.v1.example_input(prepared.config)

    def plots(self, model, prepared, run_dir):
        if not self._overrides("plots"):
            return []
        return self.v1.plots(model, self._splits(prepared), prepared.config, run_dir)

    def move_batch(self, batch, device):
        return self.v1.move_batch(batch, device)

    def load_weights(self, model, weights, source):
        if self._overrides("load_weights"):
            return self.v1.load_weights(model, weights, source=source)
        return super().load_weights(model, weights, source)


def prepare(task, config, data):
    """Call ``task.build_data`` and return ``(task, prepared)``; a v1 task comes back wrapped in the adapter."""
    built = task.build_data(config, Path(data) if data is not None else None)
    if isinstance(built, DataSplits):
        task = task if isinstance(task, V1TaskAdapter) else V1TaskAdapter(task)
        return task, task.from_splits(config, built)
    if not isinstance(built, Prepared):
        raise TypeError(f"{type(task).__name__}.build_data returned {type(built).__name__}; expected sigplex Prepared")
    if built.config is None:
        built.config = config
    return task, built


def is_v1_run(info: dict) -> bool:
    """Runs record the contract they were trained with; runs from before v2 have none."""
    return int(info.get("contract", 1)) < 2


def upgrade_v2(task: Task) -> Task:
    """Give a task written against contract v2 today's members, with one DeprecationWarning naming them."""
    cls = type(task)
    found = []
    legacy_card = [f for f in CARD_FIELDS if isinstance(getattr(cls, f, None), str)]
    if legacy_card and cls.card == Task.card:
        task.card = TaskCard(*(getattr(cls, f, "") for f in CARD_FIELDS))
        found.append(f"{'/'.join(legacy_card)} attributes -> card = TaskCard(intended_use=..., limitations=..., "
                     "data_license=...)")
    if cls.prepare_model is not Task.prepare_model:
        found.append("prepare_model(model, prepared) -> complete the config from the data in build_data and read it "
                     "in build_model (state the model must carry belongs in its weights)")
    if cls.move_batch is not Task.move_batch:
        found.append("move_batch(batch, device) -> return tensors in nested dicts/lists/tuples from collate; "
                     "the core moves them")
    if "source" not in inspect.signature(task.output_files).parameters:
        two_arguments = task.output_files
        task.output_files = lambda output, prepared, source=None: two_arguments(output, prepared)
        found.append("output_files(output, prepared) -> output_files(output, prepared, source=None)")
    if found:
        _warn_v2(cls, found)
    return task


def step_result(out, task) -> StepResult:
    """What ``training_step`` returned as a :class:`StepResult`; v2's ``(loss, logs[, outputs])`` tuples warn once."""
    if isinstance(out, StepResult):
        return out
    if isinstance(out, tuple):
        _warn_v2(type(task), ["training_step returning (loss, logs[, outputs]) -> StepResult(loss, metrics, outputs)"])
        loss, metrics, outputs = tuple(out) + (None,) * (3 - len(out))
        return StepResult(loss, dict(metrics or {}), outputs)
    return StepResult(out)


def _warn_v2(cls, found: list[str]) -> None:
    plugin = cls.__module__.split(".")[0]
    notify(f"plugin {plugin} uses the v2 task contract ({cls.__name__}); it keeps working for one release. "
           f"Replace: {'; '.join(found)} (see docs/plugin-authoring.md)", DeprecationWarning)


def is_builtin(task) -> bool:
    """Whether ``task`` is one of sigplex's own (a v1 adapter is judged by the task it wraps)."""
    inner = task.v1 if isinstance(task, V1TaskAdapter) else task
    return type(inner).__module__.startswith("sigplex.")
