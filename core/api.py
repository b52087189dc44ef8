"""The Python API: everything the CLI does, callable from a pipeline without files or a shell.

>>> import sigplex.core as sp                                   # doctest: +SKIP
>>> run = sp.fit("example", overrides={"trainer.max_steps": 20}) # doctest: +SKIP
>>> predictor = sp.load_run(run)                                 # doctest: +SKIP
>>> denoised = predictor.predict(noisy_array)                    # doctest: +SKIP
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import yaml

from .config import resolve_config
from .errors import UserError
from .plugins import PluginManager, get_plugin_manager


@dataclass
class RunDir:
    """A finished (or interrupted) run: its folder and what it recorded."""

    path: Path

    def __fspath__(self) -> str:
        return str(self.path)

    def __str__(self) -> str:
        return str(self.path)

    @property
    def info(self) -> dict:
        f = self.path / "run.json"
        if not f.is_file():
            raise UserError(f"{self.path}: run.json is missing; not a sigplex run directory")
        return json.loads(f.read_text())

    @property
    def summary(self) -> dict:
        f = self.path / "summary.json"
        return json.loads(f.read_text()) if f.is_file() else {}

    @property
    def config_dict(self) -> dict:
        return yaml.safe_load((self.path / "config.yaml").read_text()) or {}

    @property
    def metrics_csv(self) -> Path:
        return self.path / "metrics.csv"


def _task_and_config(plugin: str, task: str | None, config=None, overrides=None, pm: PluginManager | None = None):
    pm = pm or get_plugin_manager()
    spec = pm.task(plugin, task)
    task_obj = spec.load()
    cfg = resolve_config(task_obj.config_class, base=dict(task_obj.defaults), config=config,
                         presets=dict(task_obj.presets), overrides=overrides)
    return spec, task_obj, cfg


def default_run_dir(plugin: str, task: str) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = Path("runs") / f"{plugin}-{task}-{stamp}"
    path, i = base, 1
    while path.exists():
        path = Path(f"{base}-{i}")
        i += 1
    return path


def fit(plugin: str, *, task: str | None = None, data: str | Path | None = None, config=None,
        overrides: dict | list | None = None, adapter: str | None = None, init_from: str | Path | None = None,
        max_steps: int | None = None, out: str | Path | None = None, resume: str | Path | None = None,
        device: str | None = None, callbacks: Iterable = (), pm: PluginManager | None = None) -> RunDir:
    """Train a task (``platform train``); returns the run directory.

    ``resume=RUN_DIR`` continues that run exactly, with its saved config (``max_steps``
    and ``overrides`` may extend it).
    """
    from .train import Trainer

    overrides = _as_list(overrides)
    if max_steps is not None:
        overrides.append(f"trainer.max_steps={int(max_steps)}")
    if device is not None:
        overrides.append(f"trainer.device={device}")
    if resume is not None:
        run = RunDir(Path(resume))
        info = run.info
        if info.get("plugin") != plugin:
            raise UserError(f"--resume {resume}: that run is of plugin {info.get('plugin')!r}, not {plugin!r}")
        spec, task_obj, cfg = _task_and_config(plugin, info.get("task"), config=run.config_dict,
                                               overrides=overrides, pm=pm)
        trainer = Trainer(task_obj, cfg, run.path, callbacks=callbacks, adapter=info.get("adapter"),
                          init_from=info.get("init_from"), run_info=info)
        trainer.fit(data=data if data is not None else info.get("data"), resume=True)
        return run
    spec, task_obj, cfg = _task_and_config(plugin, task, config=config, overrides=overrides, pm=pm)
    run_path = Path(out) if out is not None else default_run_dir(plugin, spec.name)
    if run_path.exists() and any(run_path.iterdir()):
        raise UserError(f"--out {run_path}: already exists and is not empty; use --resume to continue it")
    if data is not None and not Path(data).exists():
        raise UserError(f"--data {data}: no such file or folder")
    if init_from is not None and not Path(init_from).exists():
        raise UserError(f"--init-from {init_from}: no such run directory or weights file")
    info = {"plugin": plugin, "task": spec.name, "data": str(Path(data).resolve()) if data else None}
    trainer = Trainer(task_obj, cfg, run_path, callbacks=callbacks, adapter=adapter,
                      init_from=Path(init_from).resolve() if init_from else None, run_info=info)
    trainer.fit(data=data, resume=False)
    return RunDir(run_path)


def _as_list(overrides) -> list[str]:
    if overrides is None:
        return []
    if isinstance(overrides, dict):
        return [f"{k}={json.dumps(v) if not isinstance(v, str) else v}" for k, v in overrides.items()]
    return list(overrides)


def load_base_weights(task, model, source: str | Path) -> None:
    """Load full base weights into ``model`` from a run dir, a checkpoint folder or a weights file."""
    from .fileio import load_weights_file
    from .train import checkpoint as ckpt

    source = Path(source)
    if source.is_dir():
        path = ckpt.pick_checkpoint(source)
        weights, meta = ckpt.load_checkpoint_weights(path)
        if meta.get("adapter"):
            raise UserError(f"--init-from {source}: holds adapter weights only; give the base model's run or weights")
    else:
        weights = load_weights_file(source)
    loader = getattr(task, "load_weights", None)
    if loader is not None:
        loader(model, weights, source=str(source))
        return
    load_state_strict(model, weights, source)


def load_state_strict(model, weights: dict, source, what: str = "the model") -> None:
    """``model.load_state_dict(weights, strict=True)`` with one-line errors naming ``source`` and the keys."""
    missing, unexpected = _diff_keys(model.state_dict(), weights)
    if missing or unexpected:
        raise UserError(f"{source}: weights do not fit {what} (missing {_few(missing)}; unexpected {_few(unexpected)})")
    try:
        model.load_state_dict(weights, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        raise UserError(f"{source}: weights do not fit {what}: {first[-1].strip() if first else exc}") from None


def _diff_keys(expected: dict, given: dict) -> tuple[list, list]:
    return sorted(set(expected) - set(given)), sorted(set(given) - set(expected))


def _few(keys: list, n: int = 3) -> str:
    if not keys:
        return "none"
    more = f" and {len(keys) - n} more" if len(keys) > n else ""
    return ", ".join(keys[:n]) + more


class Predictor:
    """A trained model ready for use: ``predict(x)`` returns the task's natural output."""

    def __init__(self, task, config, model, run: RunDir | None = None, checkpoint: Path | None = None):
        self.task, self.config, self.model, self.run, self.checkpoint = task, config, model, run, checkpoint

    def predict(self, inputs: Any):
        import torch

        self.model.eval()
        with torch.no_grad():
            return self.task.predict(self.model, inputs, self.config)

    def evaluate(self, data: str | Path | None = None, split: str = "test") -> dict[str, float]:
        import torch

        splits = self.task.build_data(self.config, Path(data) if data else None)
        dataset = splits.get(split) if splits.get(split) is not None else splits.val
        if dataset is None:
            raise UserError(f"no {split} data to evaluate on")
        self.model.eval()
        with torch.no_grad():
            return {k: float(v) for k, v in self.task.evaluate(self.model, dataset, self.config).items()}


def load_run(checkpoint: str | Path, *, plugin: str | None = None, task: str | None = None,
             device: str = "cpu", merge: bool = False, pm: PluginManager | None = None) -> Predictor:
    """Load a run's best (else last) checkpoint as a :class:`Predictor`.

    Adapter runs are rebuilt from their base weights (``init_from``) plus the adapter. With
    ``merge=True`` LoRA adapters are folded into the base weights (for export).
    """
    import torch

    from .train import checkpoint as ckpt

    path = ckpt.pick_checkpoint(checkpoint)
    run_path = path.parent.parent if path.parent.name == ckpt.CHECKPOINTS else Path(checkpoint)
    run = RunDir(run_path)
    info = run.info
    if plugin is not None and info.get("plugin") != plugin:
        raise UserError(f"--checkpoint {checkpoint}: that run is of plugin {info.get('plugin')!r}, not {plugin!r}")
    if task is not None and info.get("task") != task:
        raise UserError(f"--checkpoint {checkpoint}: that run is of task {info.get('task')!r}, not {task!r}")
    spec, task_obj, cfg = _task_and_config(info["plugin"], info.get("task"), config=run.config_dict, pm=pm)
    model = task_obj.build_model(cfg)
    weights, meta = ckpt.load_checkpoint_weights(path)
    if info.get("adapter"):
        from .adapters import apply_adapter, load_adapter_checkpoint

        if info.get("init_from"):
            load_base_weights(task_obj, model, info["init_from"])
        apply_adapter(model, info["adapter"])
        load_adapter_checkpoint(model, weights, meta=meta, source=str(path))
        if merge:
            from .adapters import merge_adapters

            merge_adapters(model, strict=False)  # LoRA folds in; bottleneck/conv adapters stay attached
    else:
        model.load_state_dict(weights, strict=True)
    model.to(torch.device(device)).eval()
    return Predictor(task_obj, cfg, model, run, path)


def evaluate(checkpoint: str | Path, *, data: str | Path | None = None, plugin: str | None = None,
             task: str | None = None, split: str = "test") -> dict[str, float]:
    """Evaluate a run on its test split (or ``data``); returns named metrics."""
    return load_run(checkpoint, plugin=plugin, task=task).evaluate(data, split=split)


def predict(checkpoint: str | Path, inputs: Any, *, output: str | Path | None = None, overwrite: bool = False,
            plugin: str | None = None, task: str | None = None):
    """Predict; with ``output`` also write the result (never over an existing file unless ``overwrite``)."""
    predictor = load_run(checkpoint, plugin=plugin, task=task)
    if output is not None and Path(output).is_file() and not overwrite:
        raise UserError(f"--output {output}: already exists; choose another path or pass --overwrite")
    result = predictor.predict(inputs)
    if output is not None:
        return predictor.task.write_prediction(result, Path(output), source=inputs, overwrite=overwrite)
    return result


def export(checkpoint: str | Path, *, format: str, output: str | Path, plugin: str | None = None,
           task: str | None = None, overwrite: bool = False, check: bool = True) -> dict:
    """Export a run's model to ONNX or TorchScript; returns {"path", "max_abs_diff"}."""
    from .export import export_model

    predictor = load_run(checkpoint, plugin=plugin, task=task, merge=True)
    example = predictor.task.example_input(predictor.config)
    return export_model(predictor.model, example, format=format, output=Path(output), overwrite=overwrite, check=check)
