"""The ``denoise`` task: data, loss, evaluation, prediction and plots for the example plugin."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from pydantic import Field

from sigplex.core.arrays import load_npy, load_npz, require_numeric
from sigplex.core.config import Section, TaskConfig, TrainerConfig
from sigplex.core.errors import UserError
from sigplex.core.figures import figure
from sigplex.core.fileio import atomic_path
from sigplex.core.infer import run_batched
from sigplex.core.models import create_model
from sigplex.core.splits import seeded_split
from sigplex.core.task import Prepared, Task, TaskCard


class ModelSection(Section):
    name: str = "sine_denoiser"
    channels: int = Field(32, ge=1)
    depth: int = Field(4, ge=1)
    kernel: int = Field(9, ge=1)
    dropout: float = Field(0.1, ge=0, lt=1)


class DataSection(Section):
    length: int = Field(128, ge=16, description="samples per signal")
    n_train: int = Field(512, ge=1)
    n_val: int = Field(64, ge=1)
    n_test: int = Field(64, ge=1)
    noise_std: float = Field(0.5, ge=0)
    seed: int = 0


class DenoiseConfig(TaskConfig):
    model: ModelSection = Field(default_factory=ModelSection)
    data: DataSection = Field(default_factory=DataSection)
    trainer: TrainerConfig = Field(default_factory=lambda: TrainerConfig(max_steps=200, batch_size=32, val_every=50))


def make_signals(n: int, length: int, noise_std: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` clean sums of 1-3 sines and their noisy copies, float32 ``[n, length]``, deterministic."""
    rng = np.random.default_rng(seed)
    t = np.arange(length) / length
    k = rng.integers(1, 4, size=n)
    freq = rng.uniform(1, 8, size=(n, 3))
    phase = rng.uniform(0, 2 * np.pi, size=(n, 3))
    amp = rng.uniform(0.3, 1.0, size=(n, 3)) * (np.arange(3)[None] < k[:, None])
    clean = (amp[:, :, None] * np.sin(2 * np.pi * freq[:, :, None] * t + phase[:, :, None])).sum(1)
    noisy = clean + rng.normal(0, noise_std, size=clean.shape)
    return clean.astype(np.float32), noisy.astype(np.float32)


class SignalPairs(torch.utils.data.Dataset):
    """Clean/noisy signal pairs; with ``fresh_noise`` each access draws new noise (augmentation)."""

    def __init__(self, clean: np.ndarray, noisy: np.ndarray, fresh_noise: float = 0.0):
        self.clean = torch.from_numpy(clean)[:, None]
        self.noisy = torch.from_numpy(noisy)[:, None]
        self.fresh_noise = fresh_noise

    def __len__(self):
        return len(self.clean)

    def __getitem__(self, i):
        if self.fresh_noise:
            clean = self.clean[i]
            return {"noisy": clean + self.fresh_noise * torch.randn_like(clean), "clean": clean}
        return {"noisy": self.noisy[i], "clean": self.clean[i]}


def read_npz(path: Path, noise_std: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Read ``clean`` (and optionally ``noisy``) arrays ``[n, length]`` from an .npz file."""
    f = {k: require_numeric(v, path, f"field {k!r}").astype(np.float32) for k, v in load_npz(path).items()}
    if "clean" not in f:
        raise UserError(f"{path}: field 'clean' is missing; expected an array [n_signals, length]")
    clean, noisy = f["clean"], f.get("noisy")
    if clean.ndim != 2:
        raise UserError(f"{path}: field 'clean' has shape {clean.shape}; expected [n_signals, length]")
    if noisy is None:
        noisy = clean + np.random.default_rng(seed).normal(0, noise_std, clean.shape).astype(np.float32)
    elif noisy.shape != clean.shape:
        raise UserError(f"{path}: field 'noisy' has shape {noisy.shape}; expected {clean.shape} like 'clean'")
    if not np.isfinite(clean).all() or not np.isfinite(noisy).all():
        raise UserError(f"{path}: NaN or infinite values in 'clean'/'noisy'")
    return clean, noisy


def snr_db(reference: torch.Tensor, estimate: torch.Tensor) -> torch.Tensor:
    """Per-signal SNR in dB of ``estimate`` against ``reference`` (last dim = time)."""
    noise = (estimate - reference).pow(2).sum(-1)
    return 10 * torch.log10(reference.pow(2).sum(-1) / noise.clamp_min(1e-12))


class DenoiseTask(Task):
    name = "denoise"
    config_class = DenoiseConfig
    presets = {"long": {"trainer": {"max_steps": 2000, "val_every": 200}, "model": {"channels": 64}}}
    monitor, monitor_mode = "snr_improvement_db", "max"
    input_suffixes = (".npy", ".csv", ".txt")
    output_suffixes = (".npy",)
    distill_loss = "mse"
    card = TaskCard(intended_use="Demonstration of the sigplex plugin contract: denoising short 1-D signals.",
                    limitations="Trained on synthetic sums of sines with white Gaussian noise; not for real measurements.")

    def build_model(self, config):
        m = config.model
        return create_model(m.name, channels=m.channels, depth=m.depth, kernel=m.kernel, dropout=m.dropout)

    def build_data(self, config, data):
        d = config.data
        if data is not None:
            clean, noisy = read_npz(Path(data), d.noise_std, d.seed)
            parts = seeded_split(len(clean), (0.8, 0.1, 0.1), seed=d.seed, what=f"{data}: signals")
            sets = [SignalPairs(clean[idx], noisy[idx]) for idx in parts]
            return Prepared(config, *sets)
        parts = [make_signals(n, d.length, d.noise_std, d.seed * 3 + i) for i, n in enumerate((d.n_train, d.n_val, d.n_test))]
        (c0, x0), (c1, x1), (c2, x2) = parts
        # training items draw fresh noise each time (seeded per item by the core's sampler)
        return Prepared(config, SignalPairs(c0, x0, fresh_noise=d.noise_std), SignalPairs(c1, x1), SignalPairs(c2, x2))

    def evaluation_data(self, data, prepared):
        clean, noisy = read_npz(Path(data), prepared.config.data.noise_std, prepared.config.data.seed)
        return SignalPairs(clean, noisy)

    def training_step(self, model, batch, prepared):
        estimate = model(batch["noisy"])
        return torch.nn.functional.mse_loss(estimate.float(), batch["clean"].float())

    def distill_outputs(self, model, batch, prepared):
        return model(batch["noisy"])

    def evaluate(self, model, dataset, prepared):
        noisy, clean = dataset.noisy, dataset.clean
        est = run_batched(model, noisy, batch_size=prepared.config.trainer.eval_batch)
        gain = snr_db(clean, est) - snr_db(clean, noisy)
        return {"mse": float((est - clean).pow(2).mean()), "snr_improvement_db": float(gain.mean())}

    def predict(self, model, inputs, prepared):
        source = "input"
        if isinstance(inputs, (str, Path)):
            source = path = Path(inputs)
            if path.suffix not in (".npy", ".csv", ".txt"):
                raise UserError(f"{path}: expected a .npy, .csv or .txt file of samples")
            try:
                inputs = (load_npy(path) if path.suffix == ".npy" else
                          np.loadtxt(path, delimiter="," if path.suffix == ".csv" else None, ndmin=1))
            except (ValueError, OSError) as exc:
                raise UserError(f"{path}: not a readable {path.suffix} file of samples ({exc})") from None
        x = torch.as_tensor(require_numeric(inputs, source, "the samples").astype(np.float32))
        if x.ndim not in (1, 2) or x.shape[-1] == 0:
            raise UserError(f"{source}: shape {tuple(x.shape)}; expected [time] or [n_signals, time]")
        y = run_batched(model, x.reshape(-1, 1, x.shape[-1]))[:, 0].numpy()
        return y[0] if x.ndim == 1 else y

    def sample_inputs(self, prepared, folder):
        clean, noisy = make_signals(2, prepared.config.data.length, prepared.config.data.noise_std, seed=11)
        folder.mkdir(parents=True, exist_ok=True)
        np.save(folder / "signals.npy", noisy)
        np.savetxt(folder / "signal.csv", noisy[0], delimiter=",")
        return [folder / "signals.npy", folder / "signal.csv"]

    def write_prediction(self, prediction, output, prepared):
        with atomic_path(output) as tmp, open(tmp, "wb") as fh:
            np.save(fh, np.asarray(prediction))
        return [output]

    def example_input(self, prepared):
        return torch.randn(1, 1, prepared.config.data.length)

    def export_axes(self, prepared):
        return {0: {0: "batch", 2: "time"}}

    def plots(self, model, prepared, run_dir):
        item = (prepared.test or prepared.val)[0]
        est = run_batched(model, item["noisy"][None])[0, 0]
        written = []
        with figure(Path(run_dir) / "plots" / "denoise_example.png", written=written) as fig:
            if fig is not None:
                ax = fig.add_subplot()
                ax.plot(item["noisy"][0], lw=0.8, alpha=0.5, label="noisy")
                ax.plot(item["clean"][0], lw=1.5, label="clean")
                ax.plot(est, lw=1.2, ls="--", label="denoised")
                ax.set_xlabel("sample")
                ax.legend(loc="upper right")
        return written
