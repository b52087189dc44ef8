"""The eeg_conformer tasks: ``motor_imagery`` (epochs after class events) and ``seizure`` (sliding windows).

Both read recordings through MNE (:mod:`sigplex.datasets.eeg`), preprocess them as ``data`` says,
align each subject (Euclidean alignment), split them by ``data.protocol`` and train a DBConformer
with cross-entropy. With no ``--data`` they train on simulated recordings written under
``$SIGPLEX_CACHE/eeg_conformer/``. Prediction takes a recording path, an ``mne.io.Raw``, an
``mne.Epochs`` or an array ``[n, C, T]`` and returns one row per window with class probabilities;
channels are matched by name to ``data.channels`` (the training montage saved in the run's config).
"""
from __future__ import annotations

import json
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch

from sigplex.core.errors import UserError
from sigplex.core.fileio import atomic_path
from sigplex.core.task import DataSplits, Task

from . import metrics as M
from .config import MotorImageryConfig, SeizureConfig
from .data import (
    WindowDataset,
    load_subjects,
    mi_epochs_from_raw,
    seizure_windows_from_raw,
    split,
)

_SPLIT_FIELDS = {"protocol", "test_subject", "val_subject", "fold", "n_folds", "test_fraction", "val_fraction",
                 "threshold"}
_CACHE: OrderedDict[str, list] = OrderedDict()


class _EEGTask(Task):
    """What both tasks share: model, data loading and caching, training step, batched inference, plots."""

    kind = "mi"
    monitor, monitor_mode = "loss", "min"
    output_kind = "file"

    def __init__(self):
        self.class_weights = None

    # --- building -------------------------------------------------------------------
    def build_model(self, config):
        from .dbconformer import DBConformer

        d, m = config.data, config.model.model_dump()
        if d.channels is None:
            raise UserError("data.channels: not resolved; build the data first (Task.configure fills it in)")
        m.pop("name")
        return DBConformer(len(d.channels), len(d.classes), d.n_times, d.sfreq, **m)

    def default_root(self, config) -> Path:
        raise NotImplementedError

    def subjects(self, config, data: Path | None):
        """Per-subject windows of ``data`` (or the simulated default), cached per data settings."""
        root = Path(data) if data is not None else self.default_root(config)
        fields = {k: v for k, v in config.data.model_dump(mode="json").items() if k not in _SPLIT_FIELDS}
        key = json.dumps([self.kind, str(root.resolve()), fields], sort_keys=True)
        if key not in _CACHE:
            _CACHE[key] = load_subjects(config.data, root, self.kind)  # (subjects, channels)
            while len(_CACHE) > 2:
                _CACHE.popitem(last=False)
        return _CACHE[key]

    def build_data(self, config, data):
        subjects, channels = self.subjects(config, data)
        train, val, test = split(subjects, config.data)
        stride = getattr(config.data, "stride_s", None)
        splits = [WindowDataset(p, stride_s=stride) for p in (train, val, test)]
        y = splits[0].y.numpy()
        counts = np.bincount(y, minlength=len(config.data.classes)).astype(float)
        self.class_weights = torch.tensor(len(y) / (len(counts) * np.maximum(counts, 1)), dtype=torch.float32)
        return DataSplits(splits[0], splits[1] if len(splits[1]) else None, splits[2] if len(splits[2]) else None,
                          info={"subjects": [s.subject for s in subjects], "channels": channels,
                                "train": splits[0].subjects, "val": splits[1].subjects, "test": splits[2].subjects})

    def configure(self, config, data):
        """Fill ``data.channels`` from the data when unset, so the montage is saved with the run."""
        if config.data.channels is not None:
            return config
        config = config.model_copy(deep=True)
        config.data.channels = list(data.info["channels"])
        return config

    # --- training -------------------------------------------------------------------
    def loss_weights(self, device):
        return None

    def training_step(self, model, batch, config):
        logits = model(batch["x"])
        w = self.loss_weights(logits.device)
        return torch.nn.functional.cross_entropy(logits.float(), batch["y"], weight=w)

    @staticmethod
    def infer(model, x: torch.Tensor, batch_size: int = 64) -> np.ndarray:
        """Class probabilities ``[n, K]`` of windows ``x`` ``[n, C, T]`` (batched)."""
        device = next(model.parameters()).device
        was_training = model.training
        model.eval()
        out = []
        with torch.no_grad():
            for i in range(0, len(x), batch_size):
                out.append(model(x[i:i + batch_size].to(device)).float().softmax(-1).cpu())
        model.train(was_training)
        return torch.cat(out).numpy() if out else np.zeros((0, model.n_outputs), dtype=np.float32)

    def example_input(self, config):
        return torch.randn(1, len(config.data.channels), config.data.n_times)

    # --- prediction -----------------------------------------------------------------
    def _windows_from_input(self, inputs, config):
        """``(x [n, C, T] volts, onsets, events or None, source)`` from a path, Raw, Epochs or array."""
        import mne

        from sigplex.datasets.eeg import read_raw
        from sigplex.datasets.eeg.preprocess import check_channels, check_signal

        d = config.data
        if isinstance(inputs, (str, Path)):
            source, raw = str(inputs), read_raw(inputs)
            return (*self._windows_from_raw(raw, config, source), source)
        if isinstance(inputs, mne.io.BaseRaw):
            source = str(inputs.filenames[0]) if inputs.filenames and inputs.filenames[0] else "<mne.io.Raw>"
            return (*self._windows_from_raw(inputs.copy().load_data(), config, source), source)
        if isinstance(inputs, mne.BaseEpochs):
            source = "<mne.Epochs>"
            ep = inputs.copy().load_data()
            check_channels(ep, d.channels, source)
            ep.pick(list(d.channels))
            if abs(ep.info["sfreq"] - d.sfreq) > 1e-6:
                if not d.resample:
                    raise UserError(f"{source}: sampling rate {ep.info['sfreq']:g} Hz differs from data.sfreq="
                                    f"{d.sfreq:g} Hz; resample the epochs or set data.resample=true")
                ep.resample(d.sfreq, verbose="error")
            data = ep.get_data(copy=True)
            start = int(np.argmin(np.abs(ep.times - getattr(d, "tmin", 0.0))))
            if data.shape[2] - start < d.n_times:
                start = 0
            if data.shape[2] < d.n_times:
                raise UserError(f"{source}: epochs have {data.shape[2]} samples; the model needs {d.n_times} "
                                f"(data.window_s={d.window_s} at {d.sfreq:g} Hz)")
            x = data[:, :, start:start + d.n_times]
            check_signal(x.transpose(1, 0, 2).reshape(len(d.channels), -1), d.channels, source)
            inv = {v: k for k, v in ep.event_id.items()}
            events = [inv.get(c, str(c)) for c in ep.events[:, 2]]
            return x.astype(np.float32), ep.events[:, 0] / d.sfreq + ep.times[start], events, source
        arr = np.asarray(inputs, dtype=np.float32)
        if arr.ndim == 2:
            arr = arr[None]
        if arr.ndim != 3 or arr.shape[1:] != (len(d.channels), d.n_times):
            raise UserError(f"input array has shape {tuple(np.shape(inputs))}; expected [n, {len(d.channels)}, "
                            f"{d.n_times}] (channels {', '.join(d.channels[:4])}... preprocessed, in volts)")
        return arr, np.arange(len(arr)) * d.window_s, None, "<array>"

    def _windows_from_raw(self, raw, config, source):
        raise NotImplementedError

    def _aligned(self, x, config) -> torch.Tensor:
        from sigplex.datasets.eeg.alignment import euclidean_alignment

        x = x * np.float32(config.data.scale)
        if config.data.euclidean_alignment and len(x):
            x, _ = euclidean_alignment(x)
        return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))

    def predict(self, model, inputs, config):
        """One row per window/epoch: ``{"onset_s", "event", "probabilities" [n, K], "classes", "predicted"}``."""
        x, onsets, events, source = self._windows_from_input(inputs, config)
        probs = self.infer(model, self._aligned(x, config), config.trainer.eval_batch_size or config.trainer.batch_size)
        classes = list(config.data.classes)
        return {"source": source, "classes": classes, "onset_s": np.asarray(onsets, float), "event": events,
                "probabilities": probs, "predicted": [classes[k] for k in probs.argmax(1)]}

    def write_prediction(self, prediction, output, *, source=None, overwrite=False):
        output = Path(output)
        if output.suffix.lower() != ".csv":
            raise UserError(f"--output {output}: expected a .csv file name")
        classes = prediction["classes"]
        header = ["window", "onset_s"] + (["event"] if prediction["event"] is not None else []) + \
            [f"prob_{c}" for c in classes] + ["predicted"]
        lines = [",".join(header)]
        for i, (onset, p, pred) in enumerate(zip(prediction["onset_s"], prediction["probabilities"],
                                                 prediction["predicted"])):
            row = [str(i), f"{onset:.4f}"]
            if prediction["event"] is not None:
                row.append(str(prediction["event"][i]))
            row += [f"{v:.6f}" for v in p] + [pred]
            lines.append(",".join(row))
        with atomic_path(output, overwrite=overwrite) as tmp:
            tmp.write_text("\n".join(lines) + "\n")
        return [output]

    # --- plots ----------------------------------------------------------------------
    def channel_weights(self, model, dataset, batch_size: int = 64) -> np.ndarray:
        """Mean channel-attention weights ``[C]`` over ``dataset`` (eval mode)."""
        device = next(model.parameters()).device
        model.eval()
        total = torch.zeros(model.n_chans)
        with torch.no_grad():
            for i in range(0, len(dataset), batch_size):
                total += model.channel_weights(dataset.x[i:i + batch_size].to(device)).sum(0).cpu()
        return (total / max(len(dataset), 1)).numpy()

    def plots(self, model, data, config, run_dir):
        """``plots/channel_attention_topomap.png`` (+ ``channel_attention.csv``) of the learned weights."""
        dataset = data.test if data.test is not None else (data.val if data.val is not None else data.train)
        weights = self.channel_weights(model, dataset)
        from .plots import write_channel_attention

        return write_channel_attention(weights, list(config.data.channels), config.data.sfreq, Path(run_dir) / "plots")


class MotorImageryTask(_EEGTask):
    """Motor-imagery decoding: accuracy, balanced accuracy and Cohen's kappa, overall and per subject."""

    name = "motor_imagery"
    kind = "mi"
    config_class = MotorImageryConfig
    monitor, monitor_mode = "accuracy", "max"
    presets = {
        # the paper's protocol: 100 epochs of Adam 1e-3, batch 32
        "paper": {"trainer": {"max_steps": 1_000_000, "max_epochs": 100, "val_every": 100}},
        "quick": {"trainer": {"max_steps": 60, "val_every": 30, "checkpoint_every": 30},
                  "data": {"sim_subjects": 3, "sim_trials": 20}},
    }

    def default_root(self, config):
        from sigplex.datasets.eeg.simulate import simulate_motor_imagery

        d = config.data
        return simulate_motor_imagery(n_subjects=d.sim_subjects, n_trials=d.sim_trials, sfreq=250.0, seed=d.sim_seed)

    def evaluate(self, model, dataset, config):
        probs = self.infer(model, dataset.x, config.trainer.eval_batch_size or config.trainer.batch_size)
        y = dataset.y.numpy()
        k = len(config.data.classes)
        pred = probs.argmax(1)
        out = {"loss": float(-np.log(np.clip(probs[np.arange(len(y)), y], 1e-12, None)).mean()),
               "accuracy": M.accuracy(y, pred), "balanced_accuracy": M.balanced_accuracy(y, pred, k),
               "kappa": M.cohen_kappa(y, pred, k)}
        for s, name in enumerate(dataset.subjects):
            m = dataset.subject == s
            if m.any():
                out[f"accuracy_{name}"] = M.accuracy(y[m], pred[m])
                out[f"balanced_accuracy_{name}"] = M.balanced_accuracy(y[m], pred[m], k)
                out[f"kappa_{name}"] = M.cohen_kappa(y[m], pred[m], k)
        return out

    def _windows_from_raw(self, raw, config, source):
        """Epochs at class events when the recording has them, else consecutive windows."""
        d = config.data
        try:
            x, labels, onsets = mi_epochs_from_raw(raw, d, source)
            return x, onsets, [d.classes[k] for k in labels]
        except UserError as exc:
            if "no events found" not in str(exc):
                raise
        from sigplex.datasets.eeg.preprocess import preprocess, sliding_windows

        from .data import _preprocessing

        data = preprocess(raw, _preprocessing(d), source).get_data()
        starts = sliding_windows(data.shape[1], d.n_times, d.n_times)
        if not len(starts):
            raise UserError(f"{source}: shorter than one window (data.window_s={d.window_s})")
        x = np.transpose(data[:, starts[:, None] + np.arange(d.n_times)], (1, 0, 2)).astype(np.float32)
        return x, starts / d.sfreq, None


class SeizureTask(_EEGTask):
    """Seizure detection on sliding windows: sensitivity, specificity, AUROC and false alarms per hour."""

    name = "seizure"
    kind = "seizure"
    config_class = SeizureConfig
    monitor, monitor_mode = "auroc", "max"

    def default_root(self, config):
        from sigplex.datasets.eeg.simulate import simulate_seizures

        d = config.data
        return simulate_seizures(n_subjects=d.sim_subjects, minutes=d.sim_minutes, sfreq=d.sfreq, seed=d.sim_seed)

    def loss_weights(self, device):
        return None if self.class_weights is None else self.class_weights.to(device)

    def evaluate(self, model, dataset, config):
        probs = self.infer(model, dataset.x, config.trainer.eval_batch_size or config.trainer.batch_size)
        y = dataset.y.numpy()
        score = probs[:, 1]
        pred = (score >= config.data.threshold).astype(int)
        stride = dataset.stride_s or config.data.stride_s

        def scores(mask, suffix=""):
            sens, spec = M.sensitivity_specificity(y[mask], pred[mask])
            alarms = M.false_alarms_per_hour(y[mask], pred[mask], dataset.recording[mask], stride)
            return {f"sensitivity{suffix}": sens, f"specificity{suffix}": spec,
                    f"auroc{suffix}": M.auroc(y[mask], score[mask]), f"false_alarms_per_hour{suffix}": alarms}

        everything = np.ones(len(y), dtype=bool)
        out = {"loss": float(-np.log(np.clip(probs[np.arange(len(y)), y], 1e-12, None)).mean()),
               "accuracy": M.accuracy(y, pred), **scores(everything)}
        if np.isnan(out["auroc"]):
            out["auroc"] = 0.5  # one class only: keep the monitor finite
        for s, name in enumerate(dataset.subjects):
            m = dataset.subject == s
            if m.any():
                out.update(scores(m, f"_{name}"))
        return out

    def _windows_from_raw(self, raw, config, source):
        x, _, onsets = seizure_windows_from_raw(raw, config.data, source, labelled=False)
        return x, onsets, None

    def predict(self, model, inputs, config):
        out = super().predict(model, inputs, config)
        t = config.data.threshold
        out["predicted"] = [config.data.classes[int(p >= t)] for p in out["probabilities"][:, 1]]
        return out


__all__ = ["MotorImageryTask", "SeizureTask"]
