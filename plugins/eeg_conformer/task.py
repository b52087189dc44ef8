"""The eeg_conformer tasks: ``motor_imagery`` (epochs after class events) and ``seizure`` (sliding windows).

Both read recordings through MNE (:mod:`sigplex.datasets.eeg`), preprocess them as ``data`` says,
align each subject (Euclidean alignment), split them by ``data.protocol`` (``data.fold`` picks a
cross-validation fold, :meth:`folds` names them) and train a DBConformer with cross-entropy. With
no ``--data`` they train on simulated recordings written under ``$SIGPLEX_CACHE/eeg_conformer/``.
The prepared state holds the montage (``channels``), the ``classes`` and, for seizures, the
``class_weights`` of the loss. Prediction (:mod:`.prediction`) takes a recording path, an ``mne.io.Raw``,
an ``mne.Epochs`` or an array ``[n, C, T]`` and returns one row per window with class probabilities.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from sigplex.core.errors import UserError
from sigplex.core.fileio import atomic_path
from sigplex.core.infer import run_batched
from sigplex.core.models import create_model
from sigplex.core.task import Prepared, Task, TaskCard
from sigplex.datasets.eeg import EXTENSIONS
from sigplex.datasets.eeg.hostile import hostile_variants
from sigplex.datasets.eeg.simulate import simulate_motor_imagery, simulate_seizures

from . import metrics as M
from .config import MotorImageryConfig, SeizureConfig
from .data import WindowDataset, class_weights, load_subjects, split, subject_names
from .prediction import model_input, read_windows, to_csv, write_samples

LICENSE = ("The default data are simulated recordings generated on first use (no human data). A model "
           "trained on --data inherits that dataset's licence and consent terms.")


class _EEGTask(Task):
    """What both tasks share: model, data and state, training step, batched inference, prediction, plots."""

    kind = "mi"
    random_items = False  # a window is read without randomness: no per-item seeding (9 ms of a 76 ms step)
    balanced_loss = False  # weight the loss by inverse class frequency (prepared.state["class_weights"])
    input_suffixes = EXTENSIONS
    output_suffixes, combined_table = (".csv",), True  # batch prediction also writes all_predictions.csv

    def build_model(self, config):
        d, m = config.data, config.model
        if d.channels is None:
            raise ValueError("data.channels is unset: build_data resolves the montage before the model is built")
        return create_model(m.name, **m.arguments(), n_chans=len(d.channels), n_outputs=len(d.classes),
                            n_times=d.n_times, sfreq=d.sfreq)

    def sample_inputs(self, prepared, folder):
        return write_samples(self.kind, self.data_section(prepared), Path(folder))

    format_variants = staticmethod(hostile_variants)  # NaN/zero/short/missing-channel FIF recordings

    def build_data(self, config, data):
        subjects, channels = load_subjects(config.data, Path(data) if data else self.default_root(config), self.kind)
        config = config.model_copy(deep=True)
        config.data.channels = channels
        stride = getattr(config.data, "stride_s", None)
        train, val, test = (WindowDataset(part, stride_s=stride) for part in split(subjects, config.data))
        state = {"channels": list(channels), "classes": list(config.data.classes)}
        if self.balanced_loss:
            state["class_weights"] = torch.from_numpy(class_weights(train.y.numpy(), len(config.data.classes)))
        return Prepared(config, train, val if len(val) else None, test if len(test) else None, state)

    def folds(self, config, data):
        """Subject names (LOSO) or fold indices (k-fold) that ``data.fold=k`` selects; none for ``within``."""
        d = config.data
        if d.protocol == "within":
            return []
        if d.test_subject is not None:
            raise UserError("data.test_subject pins the held-out subject; unset it to run every fold")
        if d.protocol == "kfold":
            return [str(k) for k in range(d.n_folds)]
        return subject_names(d, Path(data) if data else self.default_root(config))

    def evaluation_data(self, data, prepared):
        """Every window of every recording in ``data`` (all subjects), read with the run's montage."""
        d = self.data_section(prepared).model_copy(update={"subjects": None})
        subjects, _ = load_subjects(d, Path(data), self.kind)
        return WindowDataset([(s, np.arange(len(s.y))) for s in subjects], stride_s=getattr(d, "stride_s", None))

    @staticmethod
    def data_section(prepared):
        """``config.data`` with the montage and classes of the prepared state (what the model was trained on)."""
        d, state = prepared.config.data, prepared.state
        channels = state.get("channels") or d.channels
        if channels is None:
            raise ValueError("data.channels is unset: build_data resolves the montage first")
        return d.model_copy(update={"channels": list(channels), "classes": list(state.get("classes") or d.classes)})

    # --- training and evaluation ----------------------------------------------------
    def training_step(self, model, batch, prepared):
        logits = model(batch["x"])
        weight = prepared.state.get("class_weights")
        weight = weight.to(logits.device) if weight is not None else None
        return torch.nn.functional.cross_entropy(logits.float(), batch["y"], weight=weight)

    @staticmethod
    def probabilities(model, x: torch.Tensor, prepared) -> np.ndarray:
        """Class probabilities ``[n, K]`` of windows ``x [n, C, T]`` (batched)."""
        return run_batched(model, x, batch_size=prepared.config.trainer.eval_batch).float().softmax(-1).numpy()

    def example_input(self, prepared):
        d = self.data_section(prepared)
        return torch.randn(1, len(d.channels), d.n_times)

    def export_axes(self, prepared):
        # batch only: the temporal branch adds a learned position embedding of a fixed number of
        # tokens (n_times / pool stride), so the model accepts exactly data.n_times samples
        return {0: {0: "batch"}}

    # --- prediction -----------------------------------------------------------------
    def decide(self, probs: np.ndarray, d) -> np.ndarray:
        return probs.argmax(1)

    def predict(self, model, inputs, prepared):
        """One row per window/epoch: ``{"onset_s", "event", "probabilities" [n, K], "classes", "predicted"}``."""
        d = self.data_section(prepared)
        w = read_windows(inputs, d, self.kind)
        probs = self.probabilities(model, model_input(w, d), prepared)
        return {"source": w.source, "classes": d.classes, "onset_s": np.asarray(w.onsets, float), "event": w.events,
                "probabilities": probs, "predicted": [d.classes[k] for k in self.decide(probs, d)]}

    def write_prediction(self, prediction, output, prepared):
        with atomic_path(output) as tmp:
            tmp.write_text(to_csv(prediction))
        return [Path(output)]

    # --- plots ----------------------------------------------------------------------
    def plots(self, model, prepared, run_dir):
        """``plots/channel_attention_topomap.png`` (+ ``channel_attention.csv``) of the learned weights."""
        from .plots import write_channel_attention

        dataset = next(s for s in (prepared.test, prepared.val, prepared.train) if s is not None)
        weights = run_batched(model, dataset.x, batch_size=prepared.config.trainer.eval_batch,
                              fn=lambda m, x: m.channel_weights(x)).mean(0).numpy()
        d = self.data_section(prepared)
        return write_channel_attention(weights, d.channels, d.sfreq, Path(run_dir) / "plots")


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
    card = TaskCard(
        intended_use="Research on EEG motor-imagery decoding (which imagined movement) from epochs after cue "
                     "events; a baseline for brain-computer-interface experiments.",
        limitations="The default model is trained on simulated recordings (dipoles in a sphere head model), not on real "
                    "EEG: it demonstrates the pipeline and is not a validated decoder. Not a medical device; accuracy "
                    "varies widely across people and sessions, so evaluate on held-out subjects.", data_license=LICENSE)

    def default_root(self, config):
        d = config.data
        return simulate_motor_imagery(n_subjects=d.sim_subjects, n_trials=d.sim_trials, sfreq=250.0, seed=d.sim_seed)

    def evaluate(self, model, dataset, prepared):
        probs = self.probabilities(model, dataset.x, prepared)
        return M.motor_imagery_scores(dataset, probs, len(self.data_section(prepared).classes))


class SeizureTask(_EEGTask):
    """Seizure detection on sliding windows: sensitivity, specificity, AUROC and false alarms per hour."""

    name = "seizure"
    kind = "seizure"
    balanced_loss = True
    config_class = SeizureConfig
    monitor, monitor_mode = "auroc", "max"
    card = TaskCard(
        intended_use="Research on EEG seizure detection: a seizure probability for every sliding window of a recording.",
        limitations="The default model is trained on simulated spike-wave discharges, not on clinical EEG: it is "
                    "not a diagnostic tool and must not be used for patient care. Alarm rates depend on "
                    "data.threshold and on artefacts absent from the simulation.", data_license=LICENSE)

    def default_root(self, config):
        d = config.data
        return simulate_seizures(n_subjects=d.sim_subjects, minutes=d.sim_minutes, sfreq=d.sfreq, seed=d.sim_seed)

    def evaluate(self, model, dataset, prepared):
        d = prepared.config.data
        return M.seizure_scores(dataset, self.probabilities(model, dataset.x, prepared), d.threshold,
                                dataset.stride_s or d.stride_s)

    def decide(self, probs, d):
        return (probs[:, 1] >= d.threshold).astype(int)


__all__ = ["MotorImageryTask", "SeizureTask"]
