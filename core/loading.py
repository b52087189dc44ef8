"""Loading a model for use: a run's, a task's shipped weights or a bare weights file's, as a Predictor.

:func:`load_task` builds a plugin's task and resolves its config; the ``load_*`` functions build a
ready model (:func:`sigplex.core.run.ready_model`) and wrap it, on the torch engine or ONNX Runtime.
"""
from __future__ import annotations

import time
from pathlib import Path

from .compat import V1TaskAdapter, is_v1_run, prepare, upgrade_v2
from .config import as_overrides, deep_merge, resolve_config, set_dotted
from .errors import UserError
from .plugins import PluginManager, get_plugin_manager
from .predictor import Predictor
from .run import is_weights_file, pick_checkpoint, ready_model, run_of
from .task import Prepared, Task, load_state
from .taskspec import TaskSpec


def built_task(spec: TaskSpec) -> Task:
    """``spec.load()``, checked to be a sigplex :class:`~sigplex.core.task.Task`, named after its spec
    (a v2 task upgraded)."""
    task = spec.load()
    if not isinstance(task, Task):
        raise TypeError(f"{spec.factory} returned {type(task).__name__}, expected a sigplex Task")
    if type(task).name == Task.name:
        task.name = spec.name
    return upgrade_v2(task)


def load_task(plugin: str, task: str | None = None, *, config=None, overrides=None, pm: PluginManager | None = None,
              override_label: str = "overrides", v1: bool = False, weights: str | Path | None = None,
              weights_state: dict | None = None):
    """``(spec, task, config)``: a plugin's task, built, and its resolved config.

    ``config`` is a YAML path, a preset name or a dict; ``overrides`` dotted ``key=value`` items.
    ``weights``, a bare weights file the model will load, adds the settings it implies (the task's
    ``weights_config`` hook) just above the task's defaults; ``weights_state`` is its state dict
    when the caller has read it already.
    """
    pm = pm or get_plugin_manager()
    spec = pm.task(plugin, task)
    task_obj = built_task(spec)
    if v1 and not isinstance(task_obj, V1TaskAdapter):
        task_obj = V1TaskAdapter(task_obj)
    base = dict(task_obj.defaults)
    if weights is not None:
        base = deep_merge(base, implied_settings(task_obj, weights, weights_state))
    cfg = resolve_config(task_obj.config_class, base=base, config=config,
                         presets=dict(task_obj.presets), overrides=as_overrides(overrides),
                         override_label=override_label)
    return spec, task_obj, cfg


def implied_settings(task, source: str | Path, weights: dict | None = None) -> dict:
    """The config a bare weights file implies (a nested dict), from the task's ``weights_config`` hook.

    ``weights``: the file's state dict, when the caller has read it already (else it is read here).

    A task that recognises foreign checkpoint layouts (speech_sep: ClearerVoice-Studio's MossFormer2_SS)
    returns the model settings that fit them, so ``--init-from``/``--checkpoint FILE`` need no
    ``--set model.*``. It sits just above the task's defaults: the user's ``--config`` and ``--set``
    still win.
    """
    from .fileio import load_weights_file

    if type(task).weights_config is Task.weights_config or not is_weights_file(source):
        return {}  # the task reads no settings from weights files: do not read the file for nothing
    tree: dict = {}
    if weights is None:
        weights = load_weights_file(source)
    for key, value in task.weights_config(weights, source=str(source)).items():
        set_dotted(tree, key.split("."), value)
    return tree


def load_run(checkpoint: str | Path, *, plugin: str | None = None, task: str | None = None,
             device: str = "cpu", merge: bool = False, pm: PluginManager | None = None, overrides=None,
             engine: str = "torch") -> Predictor:
    """Load a run's best (else last) checkpoint as a :class:`Predictor`.

    Adapter runs are rebuilt from their base weights (``init_from``) plus the adapter. With
    ``merge=True`` LoRA adapters are folded into the base weights (for export). ``overrides``
    may change ``data.*`` values (how inputs are read), nothing else.
    """

    path = pick_checkpoint(checkpoint)
    run = run_of(path, checkpoint)
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
    model = ready_model(task_obj, prepared, path, device=device, merge=merge)
    predictor = Predictor(task_obj, prepared, model, run, path, plugin=info["plugin"])
    return with_engine(predictor, engine)


def load_pretrained(plugin: str, task: str | None = None, *, device: str = "cpu", overrides=None,
                    pm: PluginManager | None = None, engine: str = "torch") -> Predictor:
    """A :class:`Predictor` on the weights a task ships (``Task.pretrained``); no run directory needed."""
    pm = pm or get_plugin_manager()
    spec = pm.task(plugin, task)
    task_obj = built_task(spec)
    shipped = task_obj.pretrained
    if shipped is None:
        raise UserError(f"--plugin {plugin}: task {spec.name!r} ships no pretrained weights; pass --checkpoint RUN_DIR")
    overrides = as_overrides(overrides) + as_overrides(dict(shipped.overrides))
    _, task_obj, cfg = load_task(plugin, spec.name, config=shipped.preset, overrides=overrides, pm=pm,
                                 override_label="--set")
    prepared = Prepared(config=cfg, state=shipped.load_state())
    path = shipped.path()
    model = ready_model(task_obj, prepared, path, device=device, what="pretrained")
    predictor = Predictor(task_obj, prepared, model, None, path, plugin=plugin, source=f"pretrained:{shipped.weights}")
    return with_engine(predictor, engine)


def load_weights(path: str | Path, plugin: str | None, task: str | None = None, *, config=None, overrides=None,
                 device: str = "cpu", pm: PluginManager | None = None, engine: str = "torch") -> Predictor:
    """A :class:`Predictor` on a bare weights file (``--checkpoint model.pt``), with no run directory.

    Its config is the task's defaults, plus what the file implies (the task's ``weights_config``
    hook: speech_sep recognises ClearerVoice-Studio checkpoints), plus ``config`` (a preset or YAML)
    and ``overrides`` (any ``model.*``/``data.*`` setting). No state was fitted: tasks whose
    predictions need a run's fitted state (scalers, channel lists) say so in their error.
    """
    from .fileio import load_weights_file

    if plugin is None:
        raise UserError(f"--checkpoint {path}: a bare weights file does not name its plugin; add --plugin NAME")
    state = load_weights_file(path)  # read once: for the settings it implies and for the model
    spec, task_obj, cfg = load_task(plugin, task, config=config, overrides=overrides, pm=pm, override_label="--set",
                                    weights=path, weights_state=state)
    prepared = Prepared(config=cfg, state={})
    model = ready_model(task_obj, prepared, path, device=device, weights=state)
    predictor = Predictor(task_obj, prepared, model, None, Path(path), plugin=plugin, source=f"weights:{Path(path).name}")
    return with_engine(predictor, engine)


def with_engine(predictor: Predictor, engine: str, *, probing: bool = False) -> Predictor:
    """Run ``predictor``'s model on ``engine`` (see :mod:`sigplex.core.engines`): ``torch`` leaves it as it
    is, ``compiled`` wraps it in ``torch.compile``, ``onnxruntime`` swaps in a session on
    ``RUN/export/model.onnx`` (exported if needed; while ``probing``, into the machine cache instead),
    ``auto`` picks one of them by a measured probe."""
    from .compiling import compile_module
    from .engines import CHOICES, OnnxModel

    if engine not in CHOICES:
        raise UserError(f"--engine {engine!r}: expected one of {', '.join(CHOICES)}")
    if engine == "auto":
        return _auto_engine(predictor)
    predictor.engine = engine
    if engine == "torch":
        return predictor
    predictor.torch_model = predictor.model
    if engine == "compiled":
        predictor.model = compile_module(predictor.model, True, what="--engine compiled")
    else:
        predictor.model = OnnxModel(_onnx_file(predictor, probing))
    return predictor


def _onnx_file(predictor: Predictor, probing: bool = False) -> Path:
    """The run's ``export/model.onnx`` (exported if missing); for shipped or bare weights, and for a probe
    of a run not exported yet, one in the machine cache keyed by the weights (never into a package)."""
    path = predictor.run.export_file("onnx") if predictor.run is not None else None
    if path is None or (probing and not path.is_file()):
        from .batch import model_provenance
        from .cache import cache_root

        path = cache_root() / "onnx" / model_provenance(predictor)["checkpoint_sha256"][:24] / "model.onnx"
    if not path.is_file():
        export_predictor(predictor, "onnx", path, overwrite=True)
    return path


def _auto_engine(predictor: Predictor) -> Predictor:
    """``--engine auto``: this machine's choice for this checkpoint (cached), measured when there is none."""
    from .batch import model_provenance
    from .cache import read_record, write_record

    base = model_provenance(predictor)
    key = {k: base[k] for k in ("plugin", "task", "checkpoint_sha256", "config_sha256", "device")}
    record = read_record("engine", key) if key["checkpoint_sha256"] else None
    if record is None:
        record = _probe_engines(predictor)
        if key["checkpoint_sha256"]:
            write_record("engine", key, record)
    else:
        record = {**record, "cached": True}
    with_engine(predictor, record["engine"], probing=True)
    predictor.engine_choice = {"requested": "auto", **record}
    return predictor


def _probe_engines(predictor: Predictor) -> dict:
    """Measure ``predict`` on the task's sample input with each engine; the choice and what decided it."""
    import copy
    import tempfile

    from .engines import ENGINES, PROBE_BUDGET_S, choose_engine, outputs_agree, steady_latency
    from .errors import first_line

    task = predictor.task
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="sigplex-probe-") as folder:
        samples = task.sample_inputs(predictor.prepared, Path(folder))
        if not samples:
            return {"engine": "torch", "reason": f"task {task.name!r} has no sample input to measure"}
        example = task.example_input(predictor.prepared)
        example = example if isinstance(example, tuple) else (example,)
        reference = _model_outputs(predictor.model, example)
        latency, notes, deviation = {}, {}, {}
        for name in ENGINES:
            try:
                candidate = with_engine(copy.copy(predictor), name, probing=True) if name != "torch" else predictor
                if name != "torch":
                    deviation[name] = outputs_agree(reference, _model_outputs(candidate.model, example),
                                                    task.engine_tolerance)
                    if deviation[name] is None:
                        notes[name] = f"outputs differ from torch's by more than {task.engine_tolerance:g}"
                        continue
                timing = steady_latency(lambda c=candidate: c.predict(samples[0]), PROBE_BUDGET_S / len(ENGINES))
                latency[name] = timing["latency_s"]
            except Exception as err:  # noqa: BLE001 -- an engine that cannot run this model is not chosen
                notes[name] = f"{type(err).__name__}: {first_line(err)}"
    return {"engine": choose_engine(latency), "latency_s": latency, "deviation": deviation, "notes": notes,
            "probe_s": round(time.perf_counter() - started, 2)}


def _model_outputs(model, example: tuple):
    import torch

    if hasattr(model, "eval"):
        model.eval()
    with torch.no_grad():
        return model(*example)


def load_predictor(checkpoint: str | Path | None, *, plugin: str | None = None, task: str | None = None,
                   overrides=None, device: str = "cpu", engine: str = "torch", pm: PluginManager | None = None,
                   config=None) -> Predictor:
    """A run's model (``checkpoint`` a run directory or checkpoint folder), a bare weights file's (see
    :func:`load_weights`; ``config`` applies to it only), or the task's shipped weights when ``checkpoint`` is None."""
    if checkpoint is not None and is_weights_file(checkpoint):
        predictor = load_weights(checkpoint, plugin, task, config=config, overrides=overrides, device=device, pm=pm,
                                 engine=engine)
    elif config is not None:
        raise UserError(f"--config {config}: only a bare weights file takes a config; a run keeps its own")
    elif checkpoint is not None:
        predictor = load_run(checkpoint, plugin=plugin, task=task, overrides=overrides, device=device, engine=engine,
                             pm=pm)
    elif plugin is None:
        raise UserError("give --checkpoint RUN_DIR, or --plugin NAME to use the task's shipped weights")
    else:
        predictor = load_pretrained(plugin, task, overrides=overrides, device=device, engine=engine, pm=pm)
    # how to load the same model elsewhere (a cluster's workers)
    predictor.load_spec = {"loader": load_predictor,
                           "checkpoint": None if checkpoint is None else str(Path(checkpoint).resolve()),
                           "plugin": plugin, "task": task, "overrides": overrides, "device": device, "config": config}
    return predictor


def export_predictor(predictor: Predictor, format: str, output: Path, *, overwrite: bool = False,
                     check: bool = True) -> dict:
    """Export a loaded predictor's model with the task's example input, dynamic axes and provenance metadata."""
    from .batch import model_provenance
    from .exporter import export_model

    task, prepared = predictor.task, predictor.prepared
    if type(task).example_input is Task.example_input and prepared.held_out() is None:
        # the default example is a held-out item: a loaded run keeps no data, so build it again
        data = predictor.run.info.get("data") if predictor.run is not None else None
        _, prepared = prepare(task, prepared.config, data)
    example = task.example_input(prepared)
    axes = task.export_axes(prepared)
    meta = {f"sigplex.{k}": v for k, v in model_provenance(predictor).items() if v is not None}
    return export_model(predictor.model, example, format=format, output=Path(output), overwrite=overwrite,
                        check=check, dynamic_axes=axes, metadata=meta)
