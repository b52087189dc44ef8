"""``platform plugins new NAME``: write a ready plugin package (a task, a model and a passing test).

The package trains straight away on embedded synthetic data (slow vs fast noisy waves), so
``pip install -e DIR/sigplex-NAME && platform train --plugin NAME --max-steps 20`` works before
any edit; the author then replaces the data, the model and the metrics with their own domain's.
See docs/plugin-authoring.md for what each Task member does.

>>> import tempfile
>>> root = new_plugin("my_signals", Path(tempfile.mkdtemp()))
>>> sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())  # doctest: +NORMALIZE_WHITESPACE
['README.md', 'pyproject.toml', 'sigplex_my_signals/__init__.py', 'sigplex_my_signals/model.py',
 'sigplex_my_signals/task.py', 'tests/test_my_signals.py']
"""
from __future__ import annotations

import keyword
import re
from pathlib import Path
from string import Template

from .errors import UserError

PYPROJECT = '''\
[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "$dist"
version = "0.1.0"
description = "A sigplex plugin: the $name task."
requires-python = ">=3.10"
# sigplex itself is needed at run time; add it (e.g. "sigplex>=0.1") once you publish the package.
dependencies = []

[project.entry-points."sigplex.plugins"]
$name = "$package"

[tool.setuptools]
packages = ["$package"]

[tool.pytest.ini_options]
testpaths = ["tests"]
'''

README = '''\
# $dist

A sigplex plugin written by `platform plugins new $name`. It trains on embedded synthetic
data (slow vs fast noisy waves) until you give it your own:

```bash
pip install -e .
platform train --plugin $name --max-steps 20
platform train --plugin $name --data my_signals.npz      # 'signals' [n, length], 'labels' [n]
platform predict --checkpoint runs/$name-* --input x.npy --output probabilities.csv
pytest
```

Edit `$package/task.py` (data, loss, metrics, prediction) and `$package/model.py`; the
sigplex plugin-authoring guide describes every member of a task.
'''

INIT = '''\
"""$dist: registers the ``$name`` task (cheap: nothing heavy is imported here)."""
from sigplex.core.plugins import hookimpl
from sigplex.core.task import TaskSpec


@hookimpl
def register_tasks(register):
    register(TaskSpec(
        name="$name",
        description="Classify 1-D signals with a small conv net (embedded synthetic data)",
        factory="$package.task:${cls}Task",
        requires=("numpy",),
        models=("$package.model",),  # imported by the core when the task loads
    ))
'''

MODEL = '''\
"""${cls}Net: a small 1-D conv net that classifies a signal ``[batch, 1, length] -> [batch, n_classes]``."""
import torch
from torch import nn

from sigplex.core.models import register_model


@register_model("$model", domain="$name", tiny={"width": 4, "depth": 1},
                example_input=lambda: torch.randn(2, 1, 64), default={"width": 16, "depth": 2})
class ${cls}Net(nn.Module):
    """Conv blocks, average pooling over time, a linear head (logits); LoRA attaches to the convs and the head."""

    adapter_targets = {"lora": ("blocks.*.conv", "head")}

    def __init__(self, n_classes: int = 2, width: int = 16, depth: int = 2, kernel: int = 7):
        super().__init__()
        self.blocks = nn.Sequential(*(ConvBlock(1 if i == 0 else width, width, kernel) for i in range(depth)))
        self.head = nn.Linear(width, n_classes)

    def forward(self, x):
        return self.head(self.blocks(x).mean(-1))


class ConvBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, kernel: int):
        super().__init__()
        self.conv = nn.Conv1d(c_in, c_out, kernel, padding=kernel // 2)
        # Under --adapter this BatchNorm keeps the base run's statistics (held in eval mode while the
        # adapters train); --set adapter.train_norms=true trains it too. Either way a reloaded run is
        # the model training scored: see the sigplex docs, adapters.md, "Norms and buffers".
        self.norm = nn.BatchNorm1d(c_out)

    def forward(self, x):
        return torch.relu(self.norm(self.conv(x)))
'''

TASK = '''\
"""The ``$name`` task: data, loss, evaluation, prediction and a plot. Replace the synthetic data with yours."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import torch
from pydantic import Field

from sigplex.core.config import ModelConfig, OptimConfig, Section, TaskConfig, TrainerConfig
from sigplex.core.errors import UserError
from sigplex.core.fileio import atomic_path
from sigplex.core.figures import figure
from sigplex.core.infer import run_batched
from sigplex.core.models import create_model
from sigplex.core.splits import seeded_split
from sigplex.core.task import Prepared, Task, TaskCard

CLASSES = ["slow", "fast"]


class ModelSection(ModelConfig):
    name: str = "$model"
    width: int = Field(16, ge=1)
    depth: int = Field(2, ge=1)


class DataSection(Section):
    n_signals: int = Field(1000, ge=10, description="synthetic signals when no --data is given")
    length: int = Field(128, ge=16, description="samples per synthetic signal")
    noise_std: float = Field(0.3, ge=0)
    seed: int = 0


class ${cls}Config(TaskConfig):
    model: ModelSection = Field(default_factory=ModelSection)
    data: DataSection = Field(default_factory=DataSection)
    trainer: TrainerConfig = Field(default_factory=lambda: TrainerConfig(max_steps=200, batch_size=32, val_every=50))
    optim: OptimConfig = Field(default_factory=lambda: OptimConfig(lr=3e-3))


def make_signals(n: int, length: int, noise_std: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` noisy sine waves ``[n, length]`` and their labels: 0 = 1-3 cycles per signal, 1 = 6-10 cycles."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    cycles = np.where(labels == 1, rng.uniform(6, 10, n), rng.uniform(1, 3, n))[:, None]
    t = np.arange(length) / length
    x = rng.uniform(0.5, 1.5, (n, 1)) * np.sin(2 * np.pi * cycles * t + rng.uniform(0, 2 * np.pi, (n, 1)))
    return (x + rng.normal(0, noise_std, x.shape)).astype(np.float32), labels.astype(np.int64)


def read_npz(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """``signals`` ``[n, length]`` and integer ``labels`` ``[n]`` from an .npz file."""
    try:
        with np.load(path, allow_pickle=False) as f:
            x, y = f["signals"].astype(np.float32), f["labels"].astype(np.int64)
    except (OSError, ValueError, KeyError) as exc:
        raise UserError(f"{path}: expected an .npz file with 'signals' [n, length] and 'labels' [n] ({exc})") from None
    if x.ndim != 2 or y.shape != (len(x),) or not np.isin(y, range(len(CLASSES))).all():
        raise UserError(f"{path}: expected 'signals' [n, length] and 'labels' [n] with values 0..{len(CLASSES) - 1}")
    return x, y


def read_signals(path: Path) -> np.ndarray:
    """Signals to predict from a .npy array or a CSV file (one signal per row)."""
    try:
        return np.loadtxt(path, delimiter=",", ndmin=2) if path.suffix == ".csv" else np.load(path)
    except (OSError, ValueError) as exc:
        raise UserError(f"{path}: expected a .npy array or a CSV file with one signal per row ({exc})") from None


def model_input(x, state: dict) -> torch.Tensor:
    """Signals ``[n, length]`` (or one ``[length]``) -> the model's ``[n, 1, length]``, scaled as in training."""
    x = np.atleast_2d(np.asarray(x, dtype=np.float32))
    if x.ndim != 2:
        raise UserError(f"input has shape {x.shape}; expected [length] or [n_signals, length]")
    return torch.from_numpy((x - state["mean"]) / state["std"]).float()[:, None]


def labelled(x, y, state: dict):
    return torch.utils.data.TensorDataset(model_input(x, state), torch.from_numpy(y))


class ${cls}Task(Task):
    name = "$name"
    config_class = ${cls}Config
    presets = {"long": {"trainer": {"max_steps": 2000, "val_every": 200}, "model": {"width": 32, "depth": 3}}}
    monitor, monitor_mode = "accuracy", "max"
    random_items = False  # reading an item uses no randomness: the core skips per-item seeding
    input_suffixes = (".npy", ".csv")
    output_suffixes = (".csv",)
    card = TaskCard(
        intended_use="A starting point for a sigplex plugin: classifying short 1-D signals. Replace this text.",
        limitations="Trained on synthetic sine waves; it says nothing about real data until trained and tested on it.",
        data_license="synthetic data generated by the plugin")

    def build_model(self, config):
        m = config.model
        return create_model(m.name, **m.arguments(), n_classes=len(CLASSES))  # the sizes the data decides

    def build_data(self, config, data):
        d = config.data
        x, y = read_npz(data) if data is not None else make_signals(d.n_signals, d.length, d.noise_std, d.seed)
        parts = seeded_split(len(x), (0.8, 0.1, 0.1), seed=d.seed, what=f"{data or 'synthetic'}: signals")
        train = x[parts[0]]  # fitted state: scaling from the training split, saved with the run
        state = {"classes": CLASSES, "mean": float(train.mean()), "std": float(train.std()) + 1e-6}
        return Prepared(config, *(labelled(x[i], y[i], state) for i in parts), state=state)

    def evaluation_data(self, data, prepared):
        return labelled(*read_npz(data), prepared.state)

    def training_step(self, model, batch, prepared):
        x, y = batch
        return torch.nn.functional.cross_entropy(model(x), y)

    def evaluate(self, model, dataset, prepared):
        x, y = dataset.tensors
        pred = run_batched(model, x, batch_size=prepared.config.trainer.eval_batch).argmax(1)
        f1 = [2 * float(((pred == k) & (y == k)).sum()) / max(float((pred == k).sum() + (y == k).sum()), 1.0)
              for k in range(len(CLASSES))]
        return {"accuracy": float((pred == y).float().mean()), "macro_f1": sum(f1) / len(f1)}

    def predict(self, model, inputs, prepared):
        if isinstance(inputs, (str, Path)):
            inputs = read_signals(Path(inputs))
        return torch.softmax(run_batched(model, model_input(inputs, prepared.state)), -1).numpy()

    def write_prediction(self, prediction, output, prepared):
        classes = prepared.state["classes"]
        with atomic_path(output) as tmp, open(tmp, "w", newline="") as fh:
            rows = csv.writer(fh)
            rows.writerow(["signal", "class", *(f"p_{c}" for c in classes)])
            for i, p in enumerate(prediction):
                rows.writerow([i, classes[int(p.argmax())], *(f"{v:.4f}" for v in p)])
        return [output]

    def example_input(self, prepared):
        return torch.randn(1, 1, prepared.config.data.length)

    def export_axes(self, prepared):
        return {0: {0: "batch", 2: "time"}}  # the net pools over time, so any length works

    def plots(self, model, prepared, run_dir):
        x, _ = prepared.test.tensors
        pred = run_batched(model, x).argmax(1)
        written = []
        with figure(Path(run_dir) / "plots" / "predicted.png", written=written) as fig:
            if fig is not None:
                for k, name in enumerate(prepared.state["classes"]):
                    ax = fig.add_subplot(1, len(CLASSES), k + 1)
                    ax.plot(x[pred == k][:8, 0].T.numpy(), lw=0.8)
                    ax.set_title(f"predicted {name}")
        return written
'''

TEST = '''\
"""The $name task end to end through the Python API: train a few steps, evaluate, predict in memory and to CSV."""
import csv

import numpy as np

import sigplex.core as sp

FAST = {"trainer.val_every": 30, "trainer.progress": "none", "trainer.tensorboard": False}


def test_train_evaluate_predict(tmp_path):
    run = sp.fit("$name", out=tmp_path / "run", max_steps=30, overrides=FAST)
    assert run.summary["val"]["accuracy"] > 0.8  # the synthetic problem is easy

    predictor = sp.load_run(run)
    metrics = predictor.evaluate()
    assert set(metrics) == {"accuracy", "macro_f1"} and metrics["accuracy"] > 0.8

    t = np.arange(128) / 128
    signals = np.stack([np.sin(2 * np.pi * 2 * t), np.sin(2 * np.pi * 8 * t)]).astype(np.float32)
    probabilities = predictor.predict(signals)
    assert probabilities.shape == (2, 2) and np.allclose(probabilities.sum(1), 1, atol=1e-5)

    np.save(tmp_path / "x.npy", signals)
    written = sp.predict(run, tmp_path / "x.npy", output=tmp_path / "y.csv")
    with open(written[0], newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["class"] for r in rows] == ["slow", "fast"]
'''

FILES = {
    "pyproject.toml": PYPROJECT,
    "README.md": README,
    "$package/__init__.py": INIT,
    "$package/model.py": MODEL,
    "$package/task.py": TASK,
    "tests/test_$name.py": TEST,
}

NAME_RE = re.compile(r"[a-z][a-z0-9_]*\Z")


def check_name(name: str) -> None:
    """A plugin name is a lowercase Python identifier (it becomes ``--plugin NAME`` and ``sigplex_NAME``)."""
    if not NAME_RE.match(name) or keyword.iskeyword(name):
        raise UserError(f"plugin name {name!r}: expected a lowercase Python identifier such as ecg_beats "
                        "(letters, digits and _, starting with a letter)")


def new_plugin(name: str, directory: Path) -> Path:
    """Write the package ``directory/sigplex-NAME`` (import name ``sigplex_NAME``) and return its folder.

    Refuses a bad name, a plugin name that is already installed, and an existing non-empty folder.
    """
    from importlib.metadata import entry_points

    from .fileio import atomic_write_text
    from .plugins import ENTRY_POINT_GROUP

    check_name(name)
    if any(ep.name == name for ep in entry_points(group=ENTRY_POINT_GROUP)):
        raise UserError(f"plugin name {name!r}: a plugin of that name is already installed; choose another")
    values = {"name": name, "package": f"sigplex_{name}", "dist": f"sigplex-{name.replace('_', '-')}",
              "model": f"{name}_net", "cls": "".join(part.capitalize() for part in name.split("_") if part)}
    root = Path(directory) / values["dist"]
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise UserError(f"{root}: already exists and is not empty; choose another --dir or name")
    for relative, text in FILES.items():
        atomic_write_text(root / Template(relative).substitute(values), Template(text).substitute(values))
    return root
