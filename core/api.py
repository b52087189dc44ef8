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

from .compat import V1TaskAdapter, is_v1_run, prepare
from .config import resolve_config
from .errors import UserError
from .plugins import PluginManager, get_plugin_manager
from .task import Prepared, load_state
from .weights import is_weights_file, load_base_weights, load_state_strict

__all__ = ["RunDir", "fit", "load_task", "load_run", "load_pretrained", "load_weights", "load_predictor", "evaluate",
           "predict", "export",
           "cross_validate", "as_overrides", "Predictor", "load_base_weights", "load_state_strict"]


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
        f = self.path / "config.yaml"
        if not f.is_file():
            raise UserError(f"{self.path}: config.yaml is missing; not a sigplex run directory")
        return yaml.safe_load(f.read_text()) or {}

    @property
    def metrics_csv(self) -> Path:
        return self.path / "metrics.csv"


def as_overrides(overrides) -> list[str]:
    """``{"a.b": 1}`` or ``["a.b=1"]`` or None -> ``["a.b=1"]``."""
    if overrides is None:
        return []
    if isinstance(overrides, dict):
        return [f"{k}={json.dumps(v) if not isinstance(v, str) else v}" for k, v in overrides.items()]
    return list(overrides)


def load_task(plugin: str, task: str | None = None, *, config=None, overrides=None, pm: PluginManager | None = None,
              override_label: str = "overrides", v1: bool = False, weights: str | Path | None = None,
              weights_state: dict | None = None):
    """``(spec, task, config)``: a plugin's task, built, and its resolved config.

    ``config`` is a YAML path, a preset name or a dict; ``overrides`` dotted ``key=value`` items.
    ``weights``, a bare weights file the model will load, adds the settings it implies (the task's
    ``weights_config`` hook) just above the task's defaults; ``weights_state`` is its state dict
    when the caller has read it already.
    """
    from .config import deep_merge
    from .weights import implied_settings

    pm = pm or get_plugin_manager()
    spec = pm.task(plugin, task)
    task_obj = spec.load()
    if v1 and not isinstance(task_obj, V1TaskAdapter):
        task_obj = V1TaskAdapter(task_obj)
    base = dict(getattr(task_obj, "defaults", {}) or {})
    if weights is not None:
        base = deep_merge(base, implied_settings(task_obj, weights, weights_state))
    cfg = resolve_config(task_obj.config_class, base=base, config=config,
                         presets=dict(task_obj.presets), overrides=as_overrides(overrides),
                         override_label=override_label)
    return spec, task_obj, cfg


def default_run_dir(plugin: str, task: str) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = Path("runs") / f"{plugin}-{task}-{stamp}"
    path, i = base, 1
    while path.exists():
        path = Path(f"{base}-{i}")
        i += 1
    return path


def _reusable(path: Path) -> bool:
    """An --out folder may be reused when empty, or when a failed run left it without checkpoints."""
    if not path.exists():
        return True
    names = {p.name for p in path.iterdir()}
    return not names or (names <= {"config.yaml", "run.json", "metrics.csv", "prepared.json", "prepared.safetensors"}
                         and "checkpoints" not in names)


def fit(plugin: str, *, task: str | None = None, data: str | Path | None = None, config=None,
        overrides: dict | list | None = None, adapter: str | None = None, init_from: str | Path | None = None,
        max_steps: int | None = None, out: str | Path | None = None, resume: str | Path | None = None,
        device: str | None = None, callbacks: Iterable = (), pm: PluginManager | None = None,
        override_label: str = "overrides", distill_from: str | Path | None = None) -> RunDir:
    """Train a task (``platform train``); returns the run directory.

    ``distill_from`` (a run directory or weights file) trains this model as the student of that
    teacher; see :mod:`sigplex.core.train.distill` and the ``distill`` config section.

    ``resume=RUN_DIR`` continues that run exactly, with its saved config (``max_steps``
    and ``overrides`` may extend it).
    """
    from .train import Trainer

    overrides = as_overrides(overrides)
    if max_steps is not None:
        overrides.append(f"trainer.max_steps={int(max_steps)}")
    if device is not None:
        overrides.append(f"trainer.device={device}")
    if resume is not None:
        run = RunDir(Path(resume))
        info = run.info
        if plugin is not None and info.get("plugin") != plugin:
            raise UserError(f"--resume {resume}: that run is of plugin {info.get('plugin')!r}, not {plugin!r}")
        spec, task_obj, cfg = load_task(info["plugin"], info.get("task"), config=run.config_dict,
                                        overrides=overrides, pm=pm, override_label=override_label)
        trainer = Trainer(task_obj, cfg, run.path, callbacks=callbacks, adapter=info.get("adapter"),
                          init_from=info.get("init_from"), run_info=info)
        trainer.fit(data=data if data is not None else info.get("data"), resume=True)
        return run
    if init_from is not None and not Path(init_from).exists():
        raise UserError(f"--init-from {init_from}: no such run directory or weights file")
    init_state = None
    if init_from is not None and is_weights_file(init_from):
        from .fileio import load_weights_file

        init_state = load_weights_file(init_from)  # read once: for the settings it implies and for the model
    spec, task_obj, cfg = load_task(plugin, task, config=config, overrides=overrides, pm=pm,
                                    override_label=override_label, weights=init_from, weights_state=init_state)
    run_path = Path(out) if out is not None else default_run_dir(plugin, spec.name)
    if not _reusable(run_path):
        raise UserError(f"--out {run_path}: already exists and is not empty; use --resume to continue it")
    if data is not None and not Path(data).exists():
        raise UserError(f"--data {data}: no such file or folder")
    if distill_from is not None and not Path(distill_from).exists():
        raise UserError(f"--distill-from {distill_from}: no such run directory or weights file")
    info = {"plugin": plugin, "task": spec.name, "data": str(Path(data).resolve()) if data else None,
            "distill_from": str(Path(distill_from).resolve()) if distill_from else None}
    trainer = Trainer(task_obj, cfg, run_path, callbacks=callbacks, adapter=adapter,
                      init_from=Path(init_from).resolve() if init_from else None, run_info=info,
                      init_weights=init_state)
    del init_state
    trainer.fit(data=data, resume=False)
    return RunDir(run_path)


class Predictor:
    """A trained model ready for use: ``predict(x)`` returns the task's natural output.

    ``prepared`` holds the run's completed config and fitted state; ``model`` is the torch module
    (or an ONNX Runtime stand-in); ``source`` says where the weights came from.
    """

    def __init__(self, task, prepared: Prepared, model, run: RunDir | None = None, checkpoint: Path | None = None,
                 plugin: str = "", source: str = ""):
        self.task, self.prepared, self.model, self.run, self.checkpoint = task, prepared, model, run, checkpoint
        self.plugin, self.source = plugin, source or (str(checkpoint) if checkpoint else "")
        self.engine = "torch"

    @property
    def config(self):
        return self.prepared.config

    def predict(self, inputs: Any):
        import torch

        if hasattr(self.model, "eval"):
            self.model.eval()
        with torch.no_grad():
            return self.task.predict(self.model, inputs, self.prepared)

    def predict_many(self, inputs, output_dir: str | Path, *, overwrite: bool = False, hash_paths: bool = False,
                     progress: bool | None = None):
        """Predict many inputs (files, folders, globs, manifests) into ``output_dir``; yields one result per input.

        Each result has ``input``, ``outputs``, ``status`` (ok, skipped, failed), ``error``, ``seconds``
        and ``sha256``; ``output_dir/manifest.jsonl`` records them all (see :mod:`sigplex.core.batch`).
        """
        from .batch import predict_many

        inputs = [inputs] if isinstance(inputs, (str, Path)) else list(inputs)
        yield from predict_many(self, inputs, output_dir, overwrite=overwrite, hash_paths=hash_paths, progress=progress)

    def evaluate(self, data: str | Path | None = None, split: str = "test", overrides=None) -> dict[str, float]:
        """Metrics on ``data`` (all of it, with the run's fitted state) or, without data, the run's ``split``."""
        import torch

        prepared = self.prepared
        if overrides:
            cfg = resolve_config(type(prepared.config), config=prepared.config.model_dump(mode="python"),
                                 overrides=as_overrides(overrides), override_label="--set")
            prepared = Prepared(config=cfg, state=dict(prepared.state))
        if data is not None:
            if not Path(data).exists():
                raise UserError(f"--data {data}: no such file or folder")
            dataset = self.task.evaluation_data(Path(data), prepared)
        else:
            _, rebuilt = prepare(self.task, prepared.config, self.run.info.get("data") if self.run else None)
            dataset = rebuilt.split(split) if rebuilt.split(split) is not None else rebuilt.val
            if dataset is None:
                raise UserError(f"no {split} split to evaluate on; pass --data")
            prepared = Prepared(config=prepared.config, state=dict(prepared.state) or rebuilt.state)
        if hasattr(self.model, "eval"):
            self.model.eval()
        with torch.no_grad():
            return {k: float(v) for k, v in self.task.evaluate(self.model, dataset, prepared).items()}


def load_run(checkpoint: str | Path, *, plugin: str | None = None, task: str | None = None,
             device: str = "cpu", merge: bool = False, pm: PluginManager | None = None, overrides=None,
             engine: str = "torch") -> Predictor:
    """Load a run's best (else last) checkpoint as a :class:`Predictor`.

    Adapter runs are rebuilt from their base weights (``init_from``) plus the adapter. With
    ``merge=True`` LoRA adapters are folded into the base weights (for export). ``overrides``
    may change ``data.*`` values (how inputs are read), nothing else.
    """

    from .train import checkpoint as ckpt
    from .train.trainer import resolve_device

    path = ckpt.pick_checkpoint(checkpoint)
    run_path = path.parent.parent if path.parent.name == ckpt.CHECKPOINTS else Path(checkpoint)
    run = RunDir(run_path)
    info = run.info
    if plugin is not None and info.get("plugin") != plugin:
        raise UserError(f"--checkpoint {checkpoint}: that run is of plugin {info.get('plugin')!r}, not {plugin!r}")
    if task is not None and info.get("task") != task:
        raise UserError(f"--checkpoint {checkpoint}: that run is of task {info.get('task')!r}, not {task!r}")
    overrides = as_overrides(overrides)
    bad = [o for o in overrides if not o.split("=", 1)[0].strip().startswith("data.")]
    if bad:
        raise UserError(f"--set {bad[0]}: only data.* values may change for a trained run (they say how inputs "
                        "are read); the model and trainer come from the run")
    spec, task_obj, cfg = load_task(info["plugin"], info.get("task"), config=run.config_dict, overrides=overrides,
                                    pm=pm, override_label="--set", v1=is_v1_run(info))
    prepared = Prepared(config=cfg, state=load_state(run.path))
    model = task_obj.build_model(cfg)
    task_obj.prepare_model(model, prepared)
    weights, meta = ckpt.load_checkpoint_weights(path)
    if info.get("adapter"):
        from .adapters import apply_adapter, load_adapter_checkpoint

        if info.get("init_from"):
            load_base_weights(task_obj, model, info["init_from"])
        apply_adapter(model, info["adapter"], train_norms=cfg.adapter.train_norms)
        load_adapter_checkpoint(model, weights, meta=meta, source=str(path))
        if merge:
            from .adapters import merge_adapters

            merge_adapters(model, strict=False)  # LoRA folds in; bottleneck/conv adapters stay attached
    else:
        load_state_strict(model, weights, path)
    model.to(resolve_device(device)).eval()
    predictor = Predictor(task_obj, prepared, model, run, path, plugin=info["plugin"])
    return _with_engine(predictor, engine)


def load_pretrained(plugin: str, task: str | None = None, *, device: str = "cpu", overrides=None,
                    pm: PluginManager | None = None, engine: str = "torch") -> Predictor:
    """A :class:`Predictor` on the weights a task ships (``Task.pretrained``); no run directory needed."""
    from .train.trainer import resolve_device

    pm = pm or get_plugin_manager()
    spec = pm.task(plugin, task)
    task_obj = spec.load()
    shipped = getattr(task_obj, "pretrained", None)
    if shipped is None:
        raise UserError(f"--plugin {plugin}: task {spec.name!r} ships no pretrained weights; pass --checkpoint RUN_DIR")
    overrides = as_overrides(overrides) + as_overrides(dict(shipped.overrides))
    _, task_obj, cfg = load_task(plugin, spec.name, config=shipped.preset, overrides=overrides, pm=pm,
                                 override_label="--set")
    prepared = Prepared(config=cfg, state=shipped.load_state())
    model = task_obj.build_model(cfg)
    task_obj.prepare_model(model, prepared)
    path = shipped.path()
    load_base_weights(task_obj, model, path, what="pretrained")
    model.to(resolve_device(device)).eval()
    predictor = Predictor(task_obj, prepared, model, None, path, plugin=plugin, source=f"pretrained:{shipped.weights}")
    return _with_engine(predictor, engine)


def load_weights(path: str | Path, plugin: str | None, task: str | None = None, *, config=None, overrides=None,
                 device: str = "cpu", pm: PluginManager | None = None, engine: str = "torch") -> Predictor:
    """A :class:`Predictor` on a bare weights file (``--checkpoint model.pt``), with no run directory.

    Its config is the task's defaults, plus what the file implies (the task's ``weights_config``
    hook: speech_sep recognises ClearerVoice-Studio checkpoints), plus ``config`` (a preset or YAML)
    and ``overrides`` (any ``model.*``/``data.*`` setting). No state was fitted: tasks whose
    predictions need a run's fitted state (scalers, channel lists) say so in their error.
    """
    from .fileio import load_weights_file
    from .train.trainer import resolve_device

    if plugin is None:
        raise UserError(f"--checkpoint {path}: a bare weights file does not name its plugin; add --plugin NAME")
    state = load_weights_file(path)  # read once: for the settings it implies and for the model
    spec, task_obj, cfg = load_task(plugin, task, config=config, overrides=overrides, pm=pm, override_label="--set",
                                    weights=path, weights_state=state)
    prepared = Prepared(config=cfg, state={})
    model = task_obj.build_model(cfg)
    task_obj.prepare_model(model, prepared)
    load_base_weights(task_obj, model, path, what="--checkpoint", weights=state)
    model.to(resolve_device(device)).eval()
    predictor = Predictor(task_obj, prepared, model, None, Path(path), plugin=plugin, source=f"weights:{Path(path).name}")
    return _with_engine(predictor, engine)


def _with_engine(predictor: Predictor, engine: str) -> Predictor:
    """Swap the torch module for an ONNX Runtime session (exporting ``RUN/export/model.onnx`` if needed)."""
    from .engines import ENGINES, OnnxModel

    if engine not in ENGINES:
        raise UserError(f"--engine {engine!r}: expected one of {', '.join(ENGINES)}")
    predictor.engine = engine
    if engine == "torch":
        return predictor
    if predictor.run is not None:
        path = predictor.run.path / "export" / "model.onnx"
        if not path.is_file():
            export_predictor(predictor, "onnx", path)
    else:  # shipped or bare weights: export to a private temporary folder, never into the package
        import tempfile

        path = Path(tempfile.mkdtemp(prefix="sigplex-ort-")) / "model.onnx"
        export_predictor(predictor, "onnx", path)
    predictor.torch_model = predictor.model
    predictor.model = OnnxModel(path)
    return predictor


def evaluate(checkpoint: str | Path | None, *, data: str | Path | None = None, plugin: str | None = None,
             task: str | None = None, split: str = "test", overrides=None, device: str = "cpu",
             pm: PluginManager | None = None, config=None) -> dict[str, float]:
    """Evaluate a run on its test split, or on all of ``data`` with the run's fitted state.

    ``checkpoint`` may also be a bare weights file (``config``: a preset or YAML for it) or None
    for the task's shipped weights (with ``plugin``), scored on ``data`` or the task's default data.
    """
    predictor = load_predictor(checkpoint, plugin=plugin, task=task, overrides=as_overrides(overrides), device=device,
                               pm=pm, config=config)
    return predictor.evaluate(data, split=split)


def load_predictor(checkpoint: str | Path | None, *, plugin: str | None = None, task: str | None = None,
                   overrides=None, device: str = "cpu", engine: str = "torch", pm: PluginManager | None = None,
                   config=None) -> Predictor:
    """A run's model (``checkpoint`` a run directory or checkpoint folder), a bare weights file's (see
    :func:`load_weights`; ``config`` applies to it only), or the task's shipped weights when ``checkpoint`` is None."""
    if checkpoint is not None and is_weights_file(checkpoint):
        return load_weights(checkpoint, plugin, task, config=config, overrides=overrides, device=device, pm=pm,
                            engine=engine)
    if config is not None:
        raise UserError(f"--config {config}: only a bare weights file takes a config; a run keeps its own")
    if checkpoint is not None:
        return load_run(checkpoint, plugin=plugin, task=task, overrides=overrides, device=device, engine=engine, pm=pm)
    if plugin is None:
        raise UserError("give --checkpoint RUN_DIR, or --plugin NAME to use the task's shipped weights")
    return load_pretrained(plugin, task, overrides=overrides, device=device, engine=engine, pm=pm)


def predict(checkpoint: str | Path | None, inputs: Any, *, output: str | Path | None = None, overwrite: bool = False,
            plugin: str | None = None, task: str | None = None, overrides=None, device: str = "cpu",
            hash_paths: bool = False, pm: PluginManager | None = None):
    """Predict one input; with ``output`` also write the result and its provenance sidecar ``<file>.json``.

    Returns the prediction, or the list of files written when ``output`` is given. An output that
    this model already wrote from the same input is left as it is (and returned); any other existing
    output is an error unless ``overwrite``.
    """

    predictor = load_predictor(checkpoint, plugin=plugin, task=task, overrides=overrides, device=device, pm=pm)
    if output is None:
        return predictor.predict(inputs)
    return predict_with(predictor, inputs, output, overwrite=overwrite, hash_paths=hash_paths)


def predict_with(predictor: Predictor, inputs, output: str | Path, *, overwrite: bool = False,
                 hash_paths: bool = False) -> list[Path]:
    """Predict one input with a loaded predictor and write the output files plus their provenance sidecars."""
    from .batch import predict_one

    if not isinstance(inputs, (str, Path)):
        files = check_outputs(predictor.task, Path(output), predictor.prepared, overwrite=overwrite)
        return write_outputs(predictor.task, predictor.predict(inputs), Path(output), predictor.prepared, files)
    result = predict_one(predictor, inputs, output, overwrite=overwrite, hash_paths=hash_paths)
    return [Path(p) for p in result.outputs]


def check_suffix(task, output: Path) -> None:
    """``output`` must end in one of the task's ``output_suffixes`` (when it declares any)."""
    suffixes = tuple(getattr(task, "output_suffixes", ()) or ())
    if suffixes and not Path(output).name.lower().endswith(suffixes):
        raise UserError(f"--output {output}: expected a file name ending in {' or '.join(suffixes)}")


def output_files(task, output: Path, prepared: Prepared, source=None) -> list[Path]:
    """``task.output_files``, passing ``source`` (the input path) when the task's method takes it."""
    import inspect

    method = task.output_files
    takes_source = "source" in inspect.signature(method).parameters
    files = method(output, prepared, source=source) if takes_source else method(output, prepared)
    return [Path(f) for f in files]


def check_outputs(task, output: Path, prepared: Prepared, *, overwrite: bool, source=None) -> list[Path]:
    """The files a prediction will write to ``output``, after checking the suffix and overwriting."""
    check_suffix(task, output)
    files = output_files(task, output, prepared, source if isinstance(source, (str, Path)) else None)
    if not overwrite:
        for f in files:
            if f.exists():
                raise UserError(f"--output {f}: already exists; choose another path or pass --overwrite")
    return files


def write_outputs(task, result, output: Path, prepared: Prepared, files: list[Path], source=None) -> list[Path]:
    """Call ``task.write_prediction`` and normalise what it returns to a list of paths."""
    if isinstance(task, V1TaskAdapter):
        written = task.write_prediction(result, output, prepared, source=source)
    else:
        written = task.write_prediction(result, output, prepared)
    if written is None:
        written = [f for f in files if f.exists()]
    elif isinstance(written, (str, Path)):
        written = [written]
    return [Path(p) for p in written]


def export_predictor(predictor: Predictor, format: str, output: Path, *, overwrite: bool = False,
                     check: bool = True) -> dict:
    """Export a loaded predictor's model with the task's example input, dynamic axes and provenance metadata."""
    from .batch import model_provenance
    from .exporter import export_model

    example = predictor.task.example_input(predictor.prepared)
    axes = predictor.task.export_axes(predictor.prepared) if hasattr(predictor.task, "export_axes") else None
    meta = {f"sigplex.{k}": v for k, v in model_provenance(predictor).items() if v is not None}
    return export_model(predictor.model, example, format=format, output=Path(output), overwrite=overwrite,
                        check=check, dynamic_axes=axes, metadata=meta)


def export(checkpoint: str | Path, *, format: str, output: str | Path | None = None, plugin: str | None = None,
           task: str | None = None, overwrite: bool = False, check: bool = True, pm: PluginManager | None = None) -> dict:
    """Export a run's model to ONNX or TorchScript (default: ``RUN/export/model.onnx|.pt``).

    Returns ``{"path", "max_abs_diff", ...}``; the ONNX file carries the run's provenance in ``metadata_props``.
    """
    predictor = load_run(checkpoint, plugin=plugin, task=task, merge=True, pm=pm)
    if output is None:
        if predictor.run is None:
            raise UserError("export: --output is required for a checkpoint outside a run directory")
        output = predictor.run.path / "export" / ("model.onnx" if format == "onnx" else "model.pt")
    return export_predictor(predictor, format, Path(output), overwrite=overwrite, check=check)


def cross_validate(plugin: str, *, task: str | None = None, out: str | Path, data: str | Path | None = None,
                   config=None, overrides=None, max_steps: int | None = None, pm: PluginManager | None = None) -> dict:
    """Train one run per cross-validation fold and summarise their test metrics.

    The task names its folds with ``Task.folds(config, data)`` (leave-one-group-out, k-fold or
    chronological groupings from :mod:`sigplex.core.splits`) and selects fold ``k`` with
    ``data.fold=k``. Runs go to ``out/fold-<name>``; ``out/cv_summary.json`` holds
    ``{"folds": {name: test metrics}, "mean": {...}}`` and is written atomically.
    """
    import math

    from .fileio import atomic_write_text

    out = Path(out)
    if (out / "cv_summary.json").exists():
        raise UserError(f"{out}: already holds cv_summary.json; choose another output folder")
    base = [o for o in as_overrides(overrides) if not o.startswith("data.fold=")]
    spec, task_obj, cfg = load_task(plugin, task, config=config, overrides=base, pm=pm)
    names = [str(n) for n in task_obj.folds(cfg, Path(data) if data else None)]
    if not names:
        raise UserError(f"task {spec.name!r} with this config has a single split; use platform train")
    folds = {}
    for k, name in enumerate(names):
        run = fit(plugin, task=spec.name, data=data, config=config, overrides=base + [f"data.fold={k}"],
                  max_steps=max_steps, out=out / f"fold-{name}", pm=pm)
        folds[name] = run.summary.get("test", {})
    keys = sorted({k for m in folds.values() for k in m if not any(k.endswith(f"_{n}") for n in names)})
    mean = {}
    for k in keys:
        vals = [m[k] for m in folds.values() if k in m and not math.isnan(m[k])]
        mean[k] = sum(vals) / len(vals) if vals else float("nan")
    result = {"plugin": plugin, "task": spec.name, "folds": folds, "mean": mean}
    atomic_write_text(out / "cv_summary.json", json.dumps(result, indent=1))
    return result
