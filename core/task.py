"""The task contract (v2): what a plugin provides so the core can train, evaluate, predict and export.

Two levels, so registering stays cheap:

* :class:`TaskSpec` — what a plugin registers from ``register_tasks``: a name, a one-line
  description, the modules it needs and the ``"module:attribute"`` of a factory that returns
  the real :class:`Task`. Registering imports neither torch nor any domain library.
* :class:`Task` — the object that does the work, built only when a command needs it.

A task is **stateless**. :meth:`Task.build_data` returns a :class:`Prepared`: the splits, the
completed config and any fitted state (a scaler, class weights, a channel list) as tensors
plus JSON values. The core saves that state with the run (``prepared.json`` +
``prepared.safetensors``, never a pickle), so ``predict``, ``evaluate --data`` and ``serve``
get the same state without rebuilding the training set. Every other method receives that
``prepared`` object instead of the bare config.

The core owns the loop, devices, samplers, AMP, accumulation, clipping, optimizer, schedule,
checkpoints, logging, metric curves and model cards. It unwraps DDP, moves batches to the
device and sets train/eval mode and ``no_grad`` before calling the task. The task owns
``batch -> loss``, the full evaluation, prediction and its natural output, optional plots and
its embedded default data. See docs/plugin-authoring.md for a whole plugin.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar, Mapping, Sequence

from .datasplits import DataSplits  # noqa: F401 -- contract v1 plugins import it from here
from .errors import UserError
from .run import STATE_JSON, STATE_TENSORS
from .taskspec import TaskSpec, import_factory, install_hint, missing_modules  # noqa: F401 -- their public home was here

CONTRACT_VERSION = 3


# --- what build_data returns ------------------------------------------------------------
@dataclass
class Prepared:
    """Everything a task needs besides the model: the completed config, fitted state and the splits.

    ``state`` holds fitted values only — tensors/NumPy arrays and JSON values (numbers, strings,
    lists, dicts) — and is saved with the run; the datasets are not. After loading a run,
    ``train``/``val``/``test`` are None and ``state`` is exactly what training saw.

    >>> import torch
    >>> p = Prepared(config=None, state={"mean": torch.zeros(3), "columns": ["a", "b", "c"]})
    >>> sorted(p.state)
    ['columns', 'mean']
    """

    config: Any
    train: Any = None
    val: Any = None
    test: Any = None
    state: dict = field(default_factory=dict)

    def split(self, name: str):
        """The dataset of split ``name`` (train, val or test); None if the data has no such split."""
        if name not in ("train", "val", "test"):
            raise UserError(f"split {name!r}: expected train, val or test")
        return getattr(self, name)

    def without_data(self) -> "Prepared":
        return Prepared(config=self.config, state=dict(self.state))

    def held_out(self):
        """The split a trained model is judged on: test, else val (None when there is neither)."""
        return self.test if self.test is not None else self.val


def save_state(state: Mapping[str, Any], run_dir: str | Path) -> None:
    """Write fitted state as ``prepared.json`` (JSON values) + ``prepared.safetensors`` (arrays), atomically."""
    import numpy as np
    import torch
    from safetensors.torch import save as save_tensors

    from .fileio import atomic_write_bytes, atomic_write_text

    tensors, values, kinds = {}, {}, {}
    for key, value in state.items():
        if isinstance(value, torch.Tensor):
            tensors[key], kinds[key] = value.detach().cpu().contiguous(), "tensor"
        elif isinstance(value, np.ndarray):
            tensors[key], kinds[key] = torch.from_numpy(np.ascontiguousarray(value)), "numpy"
        else:
            try:
                json.dumps(value)
            except (TypeError, ValueError):
                raise TypeError(f"prepared.state[{key!r}] is a {type(value).__name__}; fitted state must be tensors, "
                                "arrays or JSON values (numbers, strings, lists, dicts)") from None
            values[key] = value
    run_dir = Path(run_dir)
    atomic_write_bytes(run_dir / STATE_TENSORS, save_tensors(tensors))
    atomic_write_text(run_dir / STATE_JSON, json.dumps({"contract": CONTRACT_VERSION, "values": values,
                                                        "arrays": kinds}, indent=1))


def load_state(run_dir: str | Path) -> dict:
    """Read the state written by :func:`save_state` ({} for a run that saved none)."""
    run_dir = Path(run_dir)
    meta_path = run_dir / STATE_JSON
    if not meta_path.is_file():
        return {}
    try:
        meta = json.loads(meta_path.read_text())
    except json.JSONDecodeError as exc:
        raise UserError(f"{meta_path}: not valid JSON ({exc})") from None
    state = dict(meta.get("values", {}))
    kinds = meta.get("arrays", {})
    if kinds:
        from safetensors.torch import load_file

        try:
            tensors = load_file(str(run_dir / STATE_TENSORS))
        except Exception as exc:
            raise UserError(f"{run_dir / STATE_TENSORS}: not a readable safetensors file ({exc})") from None
        for key, kind in kinds.items():
            if key not in tensors:
                raise UserError(f"{run_dir / STATE_TENSORS}: array {key!r} is missing")
            state[key] = tensors[key].numpy() if kind == "numpy" else tensors[key]
    return state


@dataclass(frozen=True)
class Pretrained:
    """Weights a task ships in its package, usable without ``--checkpoint``.

    ``weights`` is ``"package:relative/path.safetensors"`` (found with importlib.resources, so a
    wheel install finds it); ``preset`` is the config preset they were trained with, and
    ``overrides`` any further dotted config values. ``state``, if the task's predict needs fitted
    state, is ``"package:relative/folder"`` holding the ``prepared.json`` (+ ``prepared.safetensors``)
    that :func:`save_state` wrote for the run the weights come from.
    """

    weights: str
    preset: str | None = None
    overrides: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""
    license: str = ""
    state: str | None = None

    @staticmethod
    def _resource(spec: str) -> Path:
        from importlib.resources import files

        package, _, relative = spec.partition(":")
        return Path(str(files(package).joinpath(relative)))

    def path(self) -> Path:
        return self._resource(self.weights)

    def load_state(self) -> dict:
        return load_state(self._resource(self.state)) if self.state else {}


@dataclass(frozen=True)
class TaskCard:
    """The model-card text of a task, kept apart from its code (as MONAI bundles and Hugging Face cards do).

    >>> TaskCard(intended_use="Research on EEG decoding.", limitations="Not for diagnosis.").limitations
    'Not for diagnosis.'
    """

    intended_use: str = ""
    limitations: str = ""
    data_license: str = ""


@dataclass
class StepResult:
    """What :meth:`Task.training_step` returns when a bare loss tensor is not enough.

    ``metrics`` are scalars the core logs beside the loss (averaged over the logging window);
    ``outputs`` are the model outputs of the batch, which distillation matches against the
    teacher's instead of calling :meth:`Task.distill_outputs` again.
    """

    loss: Any
    metrics: Mapping[str, float] = field(default_factory=dict)
    outputs: Any = None


class Task:
    """Base class of every task (contract v3); subclass and override. Class attributes:

    * ``name`` — the task's name; the core sets it from the TaskSpec the task was registered with.
    * ``config_class`` — a :class:`~sigplex.core.config.TaskConfig` subclass; its field defaults are the task's defaults.
    * ``presets`` — named config overlays (nested dicts), usable as ``--config NAME``.
    * ``monitor`` / ``monitor_mode`` — the validation metric that picks the best checkpoint.
    * ``random_items`` — False when loading an item uses no randomness: the core then skips
      per-item seeding (~0.3 ms per item).
    * ``input_kind`` / ``input_suffixes`` — what one input of ``predict`` is: a ``"file"`` with one
      of the suffixes, or a ``"folder"`` (e.g. one case). Batch prediction expands folders with it.
    * ``output_suffixes`` — suffixes ``--output`` may have; the first names batch outputs.
    * ``combined_table`` — True for tasks whose outputs are CSV tables: batch prediction into a folder
      also writes every row into one table (``all_predictions.csv``) with the input first.
    * ``card`` — a :class:`TaskCard`: honest text for the model card (intended use, limitations, data licence).
    * ``pretrained`` — a :class:`Pretrained` the package ships, or None.
    * ``distill_loss`` — how a student matches a teacher: ``"kl"`` (logits) or ``"mse"`` (outputs).
    * ``defaults`` — config values beneath the config class's defaults (nested dict; rarely needed).
    * ``contract`` — the task contract the class is written against (the core records it with each run).
    * ``engine_tolerance`` — how far another engine's model outputs may lie from torch's, relative to their scale.
    """

    name: ClassVar[str] = "task"
    config_class: ClassVar[type] = None  # type: ignore[assignment]
    presets: ClassVar[Mapping[str, Mapping[str, Any]]] = {}
    monitor: ClassVar[str] = "loss"
    monitor_mode: ClassVar[str] = "min"
    random_items: ClassVar[bool] = True
    input_kind: ClassVar[str] = "file"
    input_suffixes: ClassVar[tuple[str, ...]] = ()
    output_suffixes: ClassVar[tuple[str, ...]] = ()
    combined_table: ClassVar[bool] = False
    card: ClassVar[TaskCard] = TaskCard()
    pretrained: ClassVar[Pretrained | None] = None
    distill_loss: ClassVar[str] = "kl"
    defaults: ClassVar[Mapping[str, Any]] = {}
    contract: ClassVar[int] = CONTRACT_VERSION
    engine_tolerance: ClassVar[float] = 1e-3

    # --- building -------------------------------------------------------------------
    def build_data(self, config, data: Path | None) -> Prepared:
        """Read ``data`` (None: the embedded default) and return a :class:`Prepared`.

        Complete the config from the data here (e.g. the number of channels) and return it as
        ``Prepared.config``; put fitted state in ``Prepared.state``.
        """
        raise NotImplementedError

    def build_model(self, config):
        """Return the ``nn.Module`` described by ``config.model`` (random weights), usually via ``create_model``."""
        raise NotImplementedError

    def prepare_model(self, model, prepared: Prepared) -> None:
        """Deprecated (contract v2; overriding it warns): called once after the model is built, before
        weights load or training starts. Complete the config in ``build_data`` and read it in ``build_model``."""

    def collate(self, items: Sequence[Any]):
        """Merge dataset items into a batch (default: ``torch.utils.data.default_collate``)."""
        from torch.utils.data import default_collate

        return default_collate(items)

    def seed_item(self, seed: int, prepared: Prepared) -> None:
        """Seed random sources that a dataset item's loading keeps for itself (called before each item).
        The core seeds Python, NumPy and torch; override only for transforms with their own
        generators (e.g. MONAI's ``Randomizable.set_random_state`` on ``prepared.train``)."""

    # --- training -------------------------------------------------------------------
    def training_step(self, model, batch, prepared: Prepared):
        """Return the loss tensor, or a :class:`StepResult` to log scalars or hand distillation the outputs.

        ``batch`` is on the device; the core has set train mode.
        """
        raise NotImplementedError

    def evaluate(self, model, dataset, prepared: Prepared) -> dict[str, float]:
        """Run full inference over ``dataset`` (model in eval mode, no_grad) and return named metrics."""
        raise NotImplementedError

    def calibrate(self, model, prepared: Prepared) -> dict[str, Any]:
        """Fitted state needing the trained model (e.g. conformal offsets), saved with the run before testing."""
        return {}

    def distill_outputs(self, model, batch, prepared: Prepared):
        """What a student matches of its teacher on ``batch`` (default: the model on the batch's first value)."""
        return model(first_tensor(batch))

    def evaluation_data(self, data: Path, prepared: Prepared):
        """All of ``data`` as one labelled dataset, read with the run's config and fitted state.

        Used by ``platform evaluate --data``: the given data is the test set, no training split is
        needed. Default: the test split (else val) that :meth:`build_data` makes of ``data``.
        """
        built = self.build_data(prepared.config, Path(data))
        if not isinstance(built, Prepared):
            raise TypeError(f"{type(self).__name__}.build_data returned {type(built).__name__}; expected sigplex Prepared")
        dataset = built.held_out()
        if dataset is None:
            raise UserError(f"{data}: holds no test data to evaluate on")
        return dataset

    def folds(self, config, data: Path | None) -> list[str]:
        """Names of the cross-validation folds that ``data.fold=k`` selects (default: none)."""
        return []

    # --- using ----------------------------------------------------------------------
    def predict(self, model, inputs, prepared: Prepared):
        """Return the domain's natural output for one input (a path or in-memory data).

        Call the model only as ``model(*tensors)`` and read fitted state from ``prepared.state``:
        the core may hand an ONNX Runtime session in its place.
        """
        raise NotImplementedError

    def output_files(self, output: Path, prepared: Prepared, source: Path | None = None) -> list[Path]:
        """The files :meth:`write_prediction` will write for ``output`` (default: just ``output``).

        ``source`` is the input they come from, when known (e.g. a DICOM study adds a SEG file).

        The core checks them all for overwrite before predicting and records provenance for each.
        """
        return [Path(output)]

    def write_prediction(self, prediction, output: Path, prepared: Prepared) -> list[Path]:
        """Write ``prediction`` to the files of :meth:`output_files`; return the paths written.

        The core has checked the suffix and that overwriting is allowed: write each file with
        ``sigplex.core.fileio.atomic_path(path)``.
        """
        raise NotImplementedError

    def example_input(self, prepared: Prepared):
        """A small input tensor (or tuple of tensors) that the model accepts, for export and checks.

        Default: the first tensor of one held-out item, collated (the first value of the batch, as
        :meth:`distill_outputs` takes it); override when the model takes something else.
        """
        dataset = prepared.held_out()
        if dataset is None or len(dataset) == 0:
            raise UserError(f"task {self.name!r}: no held-out data to take an example input from; "
                            "declare example_input(prepared)")
        return first_tensor(self.collate([dataset[0]]))

    def export_axes(self, prepared: Prepared) -> dict[int, dict[int, str]]:
        """Dynamic axes of each model input for ONNX export: ``{input_index: {axis: name}}`` (default: batch)."""
        example = self.example_input(prepared)
        n = len(example) if isinstance(example, (tuple, list)) else 1
        return {i: {0: "batch"} for i in range(n)}

    def plots(self, model, prepared: Prepared, run_dir: Path) -> list[Path]:
        """Optional: write PNG figures a person would look at (see ``sigplex.core.figures``); return their paths."""
        return []

    def is_input(self, path: Path) -> bool:
        """True if ``path`` is one input of :meth:`predict` (used to expand folders in batch prediction)."""
        path = Path(path)
        if self.input_kind == "folder":
            return path.is_dir()
        return path.is_file() and (not self.input_suffixes or path.name.lower().endswith(self.input_suffixes))

    def move_batch(self, batch, device):
        """Move a batch to ``device`` (tensors in nested dicts/lists/tuples). Deprecated as an override
        (contract v2; it warns): return such batches from ``collate``."""
        return move_to(batch, device)

    # --- weights and provenance -------------------------------------------------------
    def load_weights(self, model, weights: dict, source: str) -> None:
        """Put full base weights into ``model`` (default: strictly); override to map a foreign layout."""
        from .weights import load_state_strict

        load_state_strict(model, weights, source)

    def weights_config(self, weights: dict, source: str) -> dict[str, Any]:
        """Dotted config values a bare weights file implies (e.g. a foreign checkpoint's sizes; default: none)."""
        return {}

    def prediction_provenance(self, prediction) -> dict[str, Any]:
        """Choices a prediction records in its provenance sidecar (default: its ``provenance`` attribute, if any)."""
        return dict(getattr(prediction, "provenance", None) or {})

    def sample_inputs(self, prepared: Prepared, folder: Path) -> list[Path]:
        """Write one or more valid inputs of :meth:`predict` into ``folder``; return their paths (default: none).

        The core builds hostile-input variants, self-checks and probes from them.
        """
        return []

    def format_variants(self, sample: Path, folder: Path) -> list:
        """Hostile variants of one input file particular to its format (NIfTI, WAV, ...), written into ``folder``
        (default: none; the core makes the generic ones). See :mod:`sigplex.core.hostile`."""
        return []


def first_tensor(batch):
    """The first value of a batch (a tensor, or the first element of a tuple/list or a dict's first value)."""
    if isinstance(batch, (list, tuple)):
        return batch[0]
    if isinstance(batch, Mapping):
        return next(iter(batch.values()))
    return batch


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
