"""The Python API: everything the CLI does, callable from a pipeline without files or a shell.

>>> import sigplex.core as sp                                   # doctest: +SKIP
>>> run = sp.fit("example", overrides={"trainer.max_steps": 20}) # doctest: +SKIP
>>> predictor = sp.load_run(run)                                 # doctest: +SKIP
>>> denoised = predictor.predict(noisy_array)                    # doctest: +SKIP
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable

from .config import as_overrides
from .errors import UserError
from .loading import (
    export_predictor,
    load_predictor,
    load_pretrained,
    load_run,
    load_task,
    load_weights,
)
from .outputs import check_outputs, check_suffix, output_files, write_outputs
from .plugins import PluginManager
from .predictor import Predictor
from .run import RunDir, default_run_dir, is_weights_file, load_base_weights
from .weights import load_state_strict

__all__ = ["RunDir", "fit", "load_task", "load_run", "load_pretrained", "load_weights", "load_predictor", "evaluate",
           "predict", "predict_with", "export", "export_predictor", "regenerate_card", "cross_validate", "as_overrides",
           "Predictor", "load_base_weights", "load_state_strict", "check_suffix", "check_outputs", "output_files",
           "write_outputs", "default_run_dir"]




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
    if not RunDir(run_path).reusable():
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



def evaluate(checkpoint: str | Path | None, *, data: str | Path | None = None, plugin: str | None = None,
             task: str | None = None, split: str = "test", overrides=None, device: str = "cpu",
             pm: PluginManager | None = None, config=None, engine: str = "torch") -> dict[str, float]:
    """Evaluate a run on its test split, or on all of ``data`` with the run's fitted state.

    ``checkpoint`` may also be a bare weights file (``config``: a preset or YAML for it) or None
    for the task's shipped weights (with ``plugin``), scored on ``data`` or the task's default data.
    ``engine``: as for ``platform predict --engine`` (:mod:`sigplex.core.engines`).
    """
    predictor = load_predictor(checkpoint, plugin=plugin, task=task, overrides=as_overrides(overrides), device=device,
                               pm=pm, config=config, engine=engine)
    return predictor.evaluate(data, split=split)



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



def export(checkpoint: str | Path, *, format: str, output: str | Path | None = None, plugin: str | None = None,
           task: str | None = None, overwrite: bool = False, check: bool = True, pm: PluginManager | None = None) -> dict:
    """Export a run's model to ONNX or TorchScript (default: ``RUN/export/model.onnx|.pt``).

    Returns ``{"path", "max_abs_diff", ...}``; the ONNX file carries the run's provenance in ``metadata_props``.
    """
    predictor = load_run(checkpoint, plugin=plugin, task=task, merge=True, pm=pm)
    if output is None:
        if predictor.run is None:
            raise UserError("export: --output is required for a checkpoint outside a run directory")
        output = predictor.run.export_file(format)
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


def regenerate_card(run_dir: str | Path) -> Path:
    """``platform card RUN``: rebuild the card from the run's files, with the task's text and model size."""
    from .card import write_card

    predictor = load_run(run_dir)
    return write_card(run_dir, task=predictor.task, model=predictor.model)
