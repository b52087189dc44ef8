"""Contract v1 compatibility: run a task written before :class:`~sigplex.core.task.Prepared` unchanged.

A v1 task is recognised by what its ``build_data`` returns (a :class:`DataSplits`), or, for a
saved run, by ``run.json``'s ``contract``. :class:`V1TaskAdapter` then presents it to the core
with the v2 signatures. It goes away one release after contract v2.
"""
from __future__ import annotations

from pathlib import Path

from .errors import notify
from .task import DataSplits, Prepared, Task


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
