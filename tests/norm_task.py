"""A tiny classification plugin whose conv net has a chosen norm layer, for the adapter reload tests.

``model.norm`` picks BatchNorm, GroupNorm, LayerNorm or ``buffer`` (a layer that keeps a
running mean of its input in a registered buffer, updated in train mode). Register it with
``PluginManager(entry_points=False).add_plugin(norm_task, name="norms")``.
"""
from __future__ import annotations

import numpy as np
import torch
from pydantic import Field
from torch import nn

from sigplex.core.config import Section, TaskConfig, TrainerConfig
from sigplex.core.plugins import hookimpl
from sigplex.core.task import Prepared, Task, TaskSpec

LENGTH = 32


class RunningCentre(nn.Module):
    """Subtracts a running mean of its input; the mean (a buffer) moves in train mode only."""

    def __init__(self, channels: int, momentum: float = 0.2):
        super().__init__()
        self.momentum = momentum
        self.register_buffer("mean", torch.zeros(channels))

    def forward(self, x):
        if self.training:
            with torch.no_grad():
                self.mean.lerp_(x.mean((0, 2)), self.momentum)
        return x - self.mean[:, None]


def norm_layer(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm1d(channels)
    if kind == "group":
        return nn.GroupNorm(2, channels)
    if kind == "layer":
        return nn.LayerNorm(LENGTH)
    return RunningCentre(channels)


class NormNet(nn.Module):
    """conv → norm → ReLU (twice), mean over time, linear head: ``[B, 1, 32] -> [B, 2]``."""

    adapter_targets = {"lora": ("c1", "c2", "head"), "conv": ("c1", "c2"), "bottleneck": ("head",)}

    def __init__(self, norm: str, width: int = 8):
        super().__init__()
        self.c1 = nn.Conv1d(1, width, 5, padding=2)
        self.n1 = norm_layer(norm, width)
        self.c2 = nn.Conv1d(width, width, 5, padding=2)
        self.n2 = norm_layer(norm, width)
        self.drop = nn.Dropout(0.1)
        self.head = nn.Linear(width, 2)

    def forward(self, x):
        h = torch.relu(self.n1(self.c1(x)))
        h = torch.relu(self.n2(self.c2(h)))
        return self.head(self.drop(h.mean(-1)))


class ModelSection(Section):
    norm: str = Field("batch", pattern="^(batch|group|layer|buffer)$")
    width: int = 8


class DataSection(Section):
    n: int = 240
    seed: int = 0
    shift: float = Field(0.0, description="added to every signal: moves the statistics a norm sees")


class NormConfig(TaskConfig):
    model: ModelSection = Field(default_factory=ModelSection)
    data: DataSection = Field(default_factory=DataSection)
    trainer: TrainerConfig = Field(default_factory=lambda: TrainerConfig(
        max_steps=20, batch_size=16, val_every=5, checkpoint_every=5, log_every=5, progress="none",
        tensorboard=False))


def signals(n: int, seed: int, shift: float) -> tuple[np.ndarray, np.ndarray]:
    """Noisy sines: class 0 slow, class 1 fast; ``[n, 1, 32]`` float32 and labels."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    cycles = np.where(y == 1, rng.uniform(5, 8, n), rng.uniform(1, 2, n))[:, None]
    t = np.arange(LENGTH) / LENGTH
    x = np.sin(2 * np.pi * cycles * t + rng.uniform(0, 6.3, (n, 1))) + rng.normal(0, 0.5, (n, LENGTH)) + shift
    return x[:, None].astype(np.float32), y.astype(np.int64)


class NormTask(Task):
    name = "classify"
    config_class = NormConfig
    monitor = "loss"
    random_items = False
    input_suffixes = (".npy",)
    output_suffixes = (".npy",)

    def build_data(self, config, data):
        x, y = signals(config.data.n, config.data.seed, config.data.shift)
        sets = [torch.utils.data.TensorDataset(torch.from_numpy(x[i::3]), torch.from_numpy(y[i::3]))
                for i in range(3)]
        return Prepared(config=config, train=sets[0], val=sets[1], test=sets[2], state={})

    def build_model(self, config):
        return NormNet(config.model.norm, config.model.width)

    def training_step(self, model, batch, prepared):
        x, y = batch
        return nn.functional.cross_entropy(model(x), y)

    def evaluate(self, model, dataset, prepared):
        x, y = dataset.tensors
        logits = model(x)
        return {"loss": float(nn.functional.cross_entropy(logits, y)),
                "accuracy": float((logits.argmax(1) == y).float().mean()),
                "logit_sum": float(logits.double().sum())}

    def predict(self, model, inputs, prepared):
        x = torch.as_tensor(np.asarray(inputs, dtype=np.float32)).reshape(-1, 1, LENGTH)
        return model(x).numpy()

    def write_prediction(self, prediction, output, prepared):
        np.save(output, prediction)
        return [output]

    def example_input(self, prepared):
        return torch.from_numpy(signals(4, 99, 0.0)[0])


class DefaultsTask(NormTask):
    """The same task relying on the core's defaults: its name comes from its TaskSpec, its example input
    from a held-out item."""

    name = Task.name
    example_input = Task.example_input


@hookimpl
def register_tasks(register):
    register(TaskSpec(name="classify", description="classify sines with a chosen norm layer",
                      factory="norm_task:NormTask", requires=("numpy",)))
    register(TaskSpec(name="defaults", description="the same, on the core's defaults",
                      factory="norm_task:DefaultsTask", requires=("numpy",)))
