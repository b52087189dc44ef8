"""The run folder: the one module that names its files, reads and writes them, picks a checkpoint
and builds a ready model from a run.

A run directory holds::

    run.json              what was run: plugin, task, data, adapter, init_from, machine, created
    config.yaml           the resolved config
    prepared.json         fitted state (JSON values), prepared.safetensors its arrays
    metrics.csv, plots/   the metric log and the figures a person looks at (tensorboard/ when enabled)
    summary.json          steps, best value, last validation and test metrics
    best.json             which checkpoint validated best
    MODEL_CARD.md         the model card, card.json its facts
    checkpoints/          step-NNNNNNNN/ folders (their inside: sigplex.core.train.checkpoint)
    export/               model.onnx or model.pt written by ``platform export``

>>> import tempfile
>>> run = RunDir(Path(tempfile.mkdtemp()))
>>> run.write_info({"plugin": "example", "task": "denoise"})
>>> run.info["plugin"], run.config_file.name
('example', 'config.yaml')
"""
from __future__ import annotations

import json
import shutil
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

from .errors import UserError
from .fileio import atomic_write_text
from .train import checkpoint as ckpt

RUN_INFO = "run.json"
CONFIG = "config.yaml"
STATE_JSON = "prepared.json"
STATE_TENSORS = "prepared.safetensors"
METRICS = "metrics.csv"
PLOTS = "plots"
TENSORBOARD = "tensorboard"
SUMMARY = "summary.json"
BEST = "best.json"
CARD_MD = "MODEL_CARD.md"
CARD_JSON = "card.json"
CHECKPOINTS = "checkpoints"
EXPORT = "export"
#: what a run that failed before its first checkpoint may leave: such a folder may be reused by --out
EARLY_FILES = frozenset({CONFIG, RUN_INFO, METRICS, STATE_JSON, STATE_TENSORS})


@dataclass
class RunDir:
    """A finished (or interrupted) run: its folder and what it recorded."""

    path: Path

    def __post_init__(self):
        self.path = Path(self.path)

    def __fspath__(self) -> str:
        return str(self.path)

    def __str__(self) -> str:
        return str(self.path)

    # --- the files ------------------------------------------------------------------
    @property
    def info_file(self) -> Path:
        return self.path / RUN_INFO

    @property
    def config_file(self) -> Path:
        return self.path / CONFIG

    @property
    def summary_file(self) -> Path:
        return self.path / SUMMARY

    @property
    def metrics_csv(self) -> Path:
        return self.path / METRICS

    @property
    def plots(self) -> Path:
        return self.path / PLOTS

    @property
    def tensorboard(self) -> Path:
        return self.path / TENSORBOARD

    @property
    def card_json(self) -> Path:
        return self.path / CARD_JSON

    @property
    def card_markdown(self) -> Path:
        return self.path / CARD_MD

    @property
    def checkpoints(self) -> Path:
        return self.path / CHECKPOINTS

    def export_file(self, format: str) -> Path:
        """Where ``platform export`` writes a run's model by default (``export/model.onnx`` or ``.pt``)."""
        return self.path / EXPORT / ("model.onnx" if format == "onnx" else "model.pt")

    def is_run(self) -> bool:
        return self.info_file.is_file()

    def require(self) -> "RunDir":
        """This run, or a one-line error when the folder is not a sigplex run directory."""
        if not self.is_run():
            raise UserError(f"{self.path}: {RUN_INFO} is missing; not a sigplex run directory")
        return self

    # --- reading --------------------------------------------------------------------
    @property
    def info(self) -> dict:
        return json.loads(self.require().info_file.read_text())

    @property
    def summary(self) -> dict:
        return json.loads(self.summary_file.read_text()) if self.summary_file.is_file() else {}

    @property
    def config_dict(self) -> dict:
        import yaml

        if not self.config_file.is_file():
            raise UserError(f"{self.path}: {CONFIG} is missing; not a sigplex run directory")
        return yaml.safe_load(self.config_file.read_text()) or {}

    @property
    def card(self) -> dict | None:
        """The facts of the run's model card (``card.json``), or None before one was written."""
        return json.loads(self.card_json.read_text()) if self.card_json.is_file() else None

    # --- writing (atomic) -----------------------------------------------------------
    def write_info(self, info: dict) -> None:
        atomic_write_text(self.info_file, json.dumps(info, indent=1))

    def write_config(self, text: str) -> None:
        atomic_write_text(self.config_file, text)

    def write_summary(self, summary: dict) -> None:
        atomic_write_text(self.summary_file, json.dumps(summary, indent=1, default=float))

    def write_card(self, card: dict, markdown: str) -> None:
        atomic_write_text(self.card_json, json.dumps(card, indent=1, default=str))
        atomic_write_text(self.card_markdown, markdown)

    def reusable(self) -> bool:
        """An --out folder may be reused when empty, or when a failed run left it without checkpoints."""
        if not self.path.exists():
            return True
        names = {p.name for p in self.path.iterdir()}
        return names <= EARLY_FILES


def default_run_dir(plugin: str, task: str) -> Path:
    """``runs/<plugin>-<task>-<time>`` (with ``-N`` when that exists)."""
    base = Path("runs") / f"{plugin}-{task}-{time.strftime('%Y%m%d-%H%M%S')}"
    path, i = base, 1
    while path.exists():
        path = Path(f"{base}-{i}")
        i += 1
    return path


# --- checkpoints of a run ---------------------------------------------------------------
def save_checkpoint(run_dir: str | Path, step: int, weights: dict, state: dict, *, metadata: dict | None = None) -> Path:
    """Write checkpoint ``step`` of a run atomically; returns its folder."""
    return ckpt.write_checkpoint(Path(run_dir) / CHECKPOINTS, step, weights, state, metadata=metadata)


def list_checkpoints(run_dir: str | Path) -> list[Path]:
    """A run's checkpoint folders, oldest first (temporary folders ignored)."""
    return ckpt.checkpoints_in(Path(run_dir) / CHECKPOINTS)


def latest_valid_checkpoint(run_dir: str | Path) -> Path | None:
    """The newest checkpoint that verifies; warns about each corrupt newer one it skips."""
    for path in reversed(list_checkpoints(run_dir)):
        problem = ckpt.verify_checkpoint(path)
        if problem is None:
            return path
        warnings.warn(f"{path}: {problem}; falling back to the previous checkpoint", stacklevel=2)
    return None


def read_best(run_dir: str | Path) -> dict | None:
    f = Path(run_dir) / BEST
    if not f.is_file():
        return None
    try:
        return json.loads(f.read_text())
    except ValueError:
        return None


def write_best(run_dir: str | Path, step: int, metric: str, value: float) -> None:
    atomic_write_text(Path(run_dir) / BEST, json.dumps({"step": step, "checkpoint": ckpt.checkpoint_name(step),
                                                        "metric": metric, "value": value}))


def apply_retention(run_dir: str | Path, keep_last: int) -> None:
    """Delete all but the newest ``keep_last`` checkpoints, always keeping the best one."""
    best = read_best(run_dir)
    best_name = best.get("checkpoint") if best else None
    found = list_checkpoints(run_dir)
    for path in found[:-keep_last] if keep_last > 0 else found:
        if path.name != best_name:
            shutil.rmtree(path, ignore_errors=True)


def pick_checkpoint(run_or_file: str | Path) -> Path:
    """``--checkpoint``: a run dir means its best checkpoint if it validated, else its last."""
    p = Path(run_or_file)
    if ckpt.is_checkpoint(p):
        return p
    if p.is_file() and p.name == ckpt.WEIGHTS:
        return p.parent
    if not p.exists():
        raise UserError(f"{p}: no such run directory or checkpoint")
    if not p.is_dir():
        raise UserError(f"{p}: expected a run directory or a checkpoint folder")
    best = read_best(p)
    if best:
        candidate = p / CHECKPOINTS / best["checkpoint"]
        if candidate.is_dir() and ckpt.verify_checkpoint(candidate) is None:
            return candidate
        warnings.warn(f"{candidate}: best checkpoint missing or corrupt; using the last one", stacklevel=2)
    last = latest_valid_checkpoint(p)
    if last is None:
        raise UserError(f"{p}: no valid checkpoint in {p / CHECKPOINTS}")
    return last


def run_of(checkpoint: Path, given: str | Path) -> RunDir:
    """The run a picked checkpoint folder belongs to (``given``: what the user named)."""
    checkpoint = Path(checkpoint)
    return RunDir(checkpoint.parent.parent if checkpoint.parent.name == CHECKPOINTS else Path(given))


def find_run(source: str | Path) -> RunDir:
    """The run of a run directory or of a checkpoint folder inside one."""
    source = Path(source)
    return RunDir(source) if (source / RUN_INFO).is_file() else run_of(pick_checkpoint(source), source)


def is_weights_file(path: str | Path) -> bool:
    """Whether ``path`` is a bare weights file, not a run directory or a file inside a run's checkpoint folder."""
    p = Path(path)
    if not p.is_file():
        return False
    in_run = p.parent.parent.name == CHECKPOINTS and (p.parent.parent.parent / RUN_INFO).is_file()
    return not in_run and not (p.name == ckpt.WEIGHTS and (p.parent / ckpt.META).is_file())


# --- a ready model ----------------------------------------------------------------------
def read_base_weights(source: str | Path, what: str = "--init-from") -> dict:
    """Full base weights from a run directory (its best checkpoint), a checkpoint folder or a weights file."""
    from .fileio import load_weights_file

    source = Path(source)
    if not source.is_dir():
        return load_weights_file(source)
    weights, meta = ckpt.load_checkpoint_weights(pick_checkpoint(source))
    if meta.get("adapter"):
        raise UserError(f"{what} {source}: holds adapter weights only; give the base model's run or weights")
    return weights


def load_base_weights(task, model, source: str | Path, what: str = "--init-from", weights: dict | None = None) -> None:
    """Load full base weights into ``model`` from a run dir, a checkpoint folder or a weights file.

    ``weights``: the state dict of the weights file ``source``, when the caller has read it already.
    """
    try:
        task.load_weights(model, read_base_weights(source, what) if weights is None else weights, source=str(source))
    except UserError as exc:
        if what != "--init-from":
            raise
        raise UserError(f"{str(exc).rstrip('.')}; --init-from carries the weights only: give this run the model "
                        "settings they were trained with (the same --config, or --set model.KEY=VALUE as in that "
                        "run's config.yaml)") from None


def ready_model(task, prepared, source: str | Path, *, device: str = "cpu", merge: bool = False,
                weights: dict | None = None, what: str = "--checkpoint"):
    """The model ``task`` builds from ``prepared.config``: prepared, loaded, in eval mode on ``device``.

    ``source`` is a checkpoint folder of a run (an adapter run is rebuilt from its base, the run's
    ``init_from``, plus its adapter; ``merge`` folds LoRA into the weights) or base weights: a run
    directory or a weights file (``weights``: its state dict when the caller has read it already).
    """
    from .device import resolve_device

    model = task.build_model(prepared.config)
    task.prepare_model(model, prepared)
    source = Path(source)
    if ckpt.is_checkpoint(source):
        _load_checkpoint(task, model, source, prepared.config, merge)
    else:
        load_base_weights(task, model, source, what=what, weights=weights)
    return model.to(resolve_device(device)).eval()


def _load_checkpoint(task, model, path: Path, config, merge: bool) -> None:
    from .weights import load_state_strict

    weights, meta = ckpt.load_checkpoint_weights(path)
    info = run_of(path, path).info
    if not info.get("adapter"):
        load_state_strict(model, weights, path)
        return
    from .adapters import apply_adapter, load_adapter_checkpoint, merge_adapters

    if info.get("init_from"):
        load_base_weights(task, model, info["init_from"])
    apply_adapter(model, info["adapter"], train_norms=config.adapter.train_norms)
    load_adapter_checkpoint(model, weights, meta=meta, source=str(path))
    if merge:
        merge_adapters(model, strict=False)  # LoRA folds in; bottleneck/conv adapters stay attached
