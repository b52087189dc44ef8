"""Typed run configuration: one pydantic model per task with sections model/data/trainer/optim.

A task subclasses :class:`TaskConfig`, replacing ``model`` and ``data`` with its own
sections (and, if it likes, other defaults for ``trainer``/``optim``). Configs load from
YAML, take dotted overrides (``trainer.max_steps=50``) and reject unknown keys.

>>> cfg = resolve_config(TaskConfig, overrides=["trainer.max_steps=5", "optim.lr=0.01"])
>>> cfg.trainer.max_steps, cfg.optim.lr
(5, 0.01)
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal, Optional, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import UserError


class Section(BaseModel):
    """Base of every config section: unknown keys are errors, assignments are validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, protected_namespaces=())


class TrainerConfig(Section):
    """How the core trains: length, batches, precision, checkpoints, validation, logging."""

    max_steps: int = Field(100, ge=1, description="optimizer steps to run")
    max_epochs: Optional[int] = Field(None, ge=1, description="stop after this many epochs too")
    batch_size: int = Field(8, ge=1, description="samples per micro-batch, over all processes")
    eval_batch_size: Optional[int] = Field(None, ge=1)
    accumulate: int = Field(1, ge=1, description="micro-batches per optimizer step")
    clip_grad_norm: Optional[float] = Field(None, gt=0)
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    compile: Union[bool, Literal["default", "reduce-overhead", "max-autotune"]] = Field(
        False, description="torch.compile the model for training (true, or an Inductor mode)")
    seed: int = 0
    val_every: int = Field(50, ge=1, description="validate every N optimizer steps (and at the end)")
    log_every: int = Field(10, ge=1)
    checkpoint_every: int = Field(50, ge=1)
    keep_last: int = Field(2, ge=1, description="checkpoints kept besides the best one")
    early_stopping_patience: Optional[int] = Field(None, ge=1, description="validations without improvement")
    monitor: Optional[str] = Field(None, description="validation metric to track; the task's default if unset")
    monitor_mode: Optional[Literal["min", "max"]] = None
    num_workers: int = Field(0, ge=0)
    drop_last: bool = True
    device: str = "auto"
    progress: Literal["auto", "bar", "lines", "none"] = "auto"
    tensorboard: bool = True
    mlflow: bool = False

    @property
    def eval_batch(self) -> int:
        """Batch size for evaluation: ``eval_batch_size`` if set, else ``batch_size``."""
        return self.eval_batch_size or self.batch_size


class OptimConfig(Section):
    """Optimizer and learning-rate schedule."""

    name: Literal["adamw", "adam", "sgd"] = "adamw"
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    betas: tuple[float, float] = (0.9, 0.999)
    momentum: float = Field(0.9, ge=0)
    schedule: Literal["constant", "cosine", "step", "plateau"] = "constant"
    warmup_steps: int = Field(0, ge=0)
    min_lr_ratio: float = Field(0.0, ge=0, le=1, description="cosine floor as a fraction of lr")
    step_size: int = Field(1000, ge=1, description="steps between decays for 'step'")
    gamma: float = Field(0.1, gt=0, description="decay factor for 'step' and 'plateau'")
    plateau_patience: int = Field(2, ge=0, description="validations without improvement for 'plateau'")


class DistillConfig(Section):
    """Knowledge distillation, used when training with ``--distill-from RUN_OR_WEIGHTS``.

    The loss is ``(1 - alpha) * task_loss + alpha * match(student, teacher)`` where ``match`` is
    KL divergence of temperature-softened logits (times ``temperature**2``) for ``kind="kl"``, or
    the mean squared error of outputs for ``kind="mse"``; ``"auto"`` takes the task's ``distill_loss``.
    """

    alpha: float = Field(0.5, ge=0, le=1, description="weight of the teacher-matching term")
    temperature: float = Field(4.0, gt=0, description="softmax temperature for kind=kl")
    kind: Literal["auto", "kl", "mse"] = "auto"
    teacher_model: Optional[str] = Field(None, description="registered model name of a bare teacher weights file")


class AdapterConfig(Section):
    """How adapter training (``--adapter SPEC``) treats the frozen base's norm layers.

    By default the base's norms with running statistics (BatchNorm, InstanceNorm) stay in eval
    mode and keep the pre-trained statistics; ``train_norms`` trains every base norm instead
    (affine parameters and statistics), saved with the adapters. See docs/adapters.md.
    """

    train_norms: bool = Field(False, description="train the base's norm layers with the adapters")


class ModelConfig(Section):
    """Base of a task's ``model`` section: ``name`` picks a registered model, :meth:`arguments` gives the
    constructor arguments the config sets. Every plugin builds its model the same way::

        m = config.model
        return create_model(m.name, **m.arguments(), **sizes_the_data_decides)   # in Task.build_model

    The default is every field but ``name``; override ``arguments`` when field names differ from the
    constructor's or depend on ``name``.
    """

    name: str

    def arguments(self) -> dict[str, Any]:
        """Constructor arguments of the registered model ``name`` that the config sets."""
        return self.model_dump(exclude={"name"})


class EmptySection(Section):
    """A section with no fields (tasks replace it)."""


class TaskConfig(Section):
    """The whole config of a run. Tasks subclass it and replace ``model`` and ``data``."""

    model: EmptySection = Field(default_factory=EmptySection)
    data: EmptySection = Field(default_factory=EmptySection)
    trainer: TrainerConfig = Field(default_factory=TrainerConfig)
    optim: OptimConfig = Field(default_factory=OptimConfig)
    distill: DistillConfig = Field(default_factory=DistillConfig)
    adapter: AdapterConfig = Field(default_factory=AdapterConfig)



def parse_override(item: str, label: str = "--set") -> tuple[list[str], Any]:
    """``"a.b=3"`` -> ``(["a", "b"], 3)``; the value is parsed as YAML (numbers, lists, null)."""
    if "=" not in item:
        raise UserError(f"{label} {item!r}: expected KEY=VALUE, e.g. trainer.max_steps=100")
    key, raw = item.split("=", 1)
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise UserError(f"{label} {item!r}: expected a dotted key such as optim.lr")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key.split("."), value


def set_dotted(tree: dict, path: list[str], value: Any) -> None:
    node = tree
    for part in path[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[path[-1]] = value


def deep_merge(base: dict, update: dict) -> dict:
    out = dict(base)
    for k, v in update.items():
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def load_yaml(path: str | Path) -> dict:
    """Read a YAML mapping with a clear error for a missing file or bad syntax."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: config file not found")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark else ""
        raise UserError(f"{path}{where}: not valid YAML: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a mapping of config sections, got {type(data).__name__}")
    return data


def format_validation_error(exc: ValidationError, source: str) -> str:
    """One line per problem: ``source: dotted.key: message``."""
    lines = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"]) or "(root)"
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        else:
            msg = err["msg"]
            if "input" in err and err["type"] != "missing" and not isinstance(err["input"], dict):
                msg += f", got {err['input']!r}"
        lines.append(f"{source}: {key}: {msg}")
    return "; ".join(lines)


def resolve_config(
    config_class: type[TaskConfig],
    *,
    base: dict | None = None,
    config: str | Path | dict | None = None,
    presets: dict[str, dict] | None = None,
    overrides: list[str] | dict | None = None,
    override_label: str = "overrides",
) -> TaskConfig:
    """Build a validated config: class defaults <- task ``base`` <- preset/YAML <- overrides.

    Errors name where a bad value came from: the preset or YAML file, and ``override_label``
    (the CLI passes ``"--set"``).
    """
    # Start from the class's own defaults (including section default factories), so that a
    # partial override of a section keeps the task's other defaults for that section.
    tree: dict = deep_merge(config_class().model_dump(mode="python"), dict(base or {}))
    sources = []
    if isinstance(config, dict):
        tree = deep_merge(tree, config)
    elif config is not None:
        name = str(config)
        if presets and name in presets:
            tree = deep_merge(tree, presets[name])
            sources.append(f"preset {name!r}")
        elif name.endswith((".yaml", ".yml")) or Path(name).exists():
            tree = deep_merge(tree, load_yaml(name))
            sources.append(name)
        else:
            choices = ", ".join(sorted(presets or {})) or "none"
            raise UserError(f"--config {name!r}: not a YAML file nor a preset of this task (presets: {choices})")
    if isinstance(overrides, dict):
        overrides = [f"{k}={yaml.safe_dump(v, default_flow_style=True).strip().removesuffix('...').strip()}"
                     for k, v in overrides.items()]
    for item in overrides or []:
        path, value = parse_override(item, label=override_label)
        set_dotted(tree, path, value)
    if overrides:
        sources.append(override_label)
    try:
        return config_class.model_validate(tree)
    except ValidationError as exc:
        raise UserError(format_validation_error(exc, " + ".join(sources) or "config")) from None


def config_to_yaml(config: BaseModel) -> str:
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)


def config_differences(old: dict, new: dict, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two config dicts (nested sections compared key by key)."""
    diffs = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        name = f"{prefix}{key}"
        if isinstance(a, dict) and isinstance(b, dict):
            diffs += config_differences(a, b, name + ".")
        elif a != b:
            diffs.append(name)
    return diffs


def as_overrides(overrides) -> list[str]:
    """``{"a.b": 1}`` or ``["a.b=1"]`` or None -> ``["a.b=1"]``."""
    if overrides is None:
        return []
    if isinstance(overrides, dict):
        return [f"{k}={json.dumps(v) if not isinstance(v, str) else v}" for k, v in overrides.items()]
    return list(overrides)
