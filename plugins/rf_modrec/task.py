"""The rf_modrec ``classify`` task: automatic modulation recognition of IQ frames (ClST, KD students, VT-CNN2).

With no ``--data`` it trains on RadioML 2016.10A-like frames generated on the fly
(:mod:`sigplex.datasets.rf.generator`: 11 classes, SNR -20..18 dB) and tests on a fixed held-out
generated set (``data.test_seed``); ``--data`` takes a RadioML 2016.10A/B pickle or 2018.01A HDF5
file, split by ``data.split``. Loss: cross-entropy; with ``--distill-from`` the core mixes in the
KL divergence to a teacher's temperature-softened logits (signal knowledge distillation).
The prepared state holds the ``classes`` and ``n_samples``. Evaluation reports accuracy per SNR
(``acc_snr_*``), its mean (``acc_mean``) and at SNR >= ``data.high_snr`` (``acc_high``).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from sigplex.core.fileio import atomic_path
from sigplex.core.infer import run_batched
from sigplex.core.models import create_model, model_entry
from sigplex.core.task import Prepared, StepResult, Task, TaskCard

from . import metrics as M
from .config import ClassifyConfig
from .data import FrameSet, build_splits, read_file
from .prediction import SUFFIXES, read_inputs, to_csv, write_samples


class ClassifyTask(Task):
    name = "classify"
    config_class = ClassifyConfig
    monitor, monitor_mode = "accuracy", "max"
    input_suffixes = SUFFIXES
    output_suffixes, combined_table = (".csv",), True  # batch prediction also writes all_predictions.csv
    distill_loss = "kl"
    presets = {
        # a few minutes on 2 CPU cores: fewer, cheaper steps
        "quick": {"trainer": {"max_steps": 200, "val_every": 100, "checkpoint_every": 100},
                  "data": {"train_per": 20, "test_per": 20}},
        # the paper-scale budget: 1000 frames per class and SNR like RadioML 2016.10A, 60 epochs
        "long": {"trainer": {"max_steps": 1_000_000, "max_epochs": 60, "batch_size": 256, "val_every": 1000,
                             "checkpoint_every": 1000}, "data": {"train_per": 800, "val_per": 100, "test_per": 100}},
    }
    card = TaskCard(
        intended_use="Research and teaching on automatic modulation recognition: which of the RadioML 2016.10A "
                     "modulations (or a RadioML file's classes) a short baseband IQ capture carries, with "
                     "per-frame class probabilities.",
        limitations="The default model is trained on synthetic frames (random bits and band-limited noise as the "
                    "audio source, simple Rayleigh multipath, uniform carrier and sample-rate offsets); real "
                    "captures differ in source statistics, hardware impairments and channel, so accuracy on "
                    "them is unknown until measured. Frames are scaled to unit power, so absolute level carries "
                    "no information. Below about -6 dB SNR every model is close to guessing, and analog "
                    "classes in audio pauses (AM-DSB vs WBFM) are ambiguous at any SNR. Not for spectrum "
                    "enforcement or safety decisions.",
        data_license="Default data: generated on the fly, no licence restrictions. RadioML 2016.10A/B and "
                     "2018.01A (DeepSig) are CC BY-NC-SA 4.0: a model trained on them inherits that licence.",
    )

    # --- building -------------------------------------------------------------------
    def build_model(self, config):
        from sigplex.datasets.rf.generator import RADIOML_CLASSES

        m, d = config.model, config.data
        return create_model(m.name, **m.arguments(), n_classes=len(d.classes or RADIOML_CLASSES), n_samples=d.n_samples)

    def build_data(self, config, data):
        classes, n_samples, train, val, test = build_splits(config.data, Path(data) if data else None)
        config = config.model_copy(deep=True)
        config.data.classes, config.data.n_samples = list(classes), int(n_samples)
        return Prepared(config, train, val, test, {"classes": list(classes), "n_samples": int(n_samples)})

    def evaluation_data(self, data, prepared):
        d = prepared.config.data
        f = read_file(Path(data), d, prepared.state.get("classes") or d.classes)
        return FrameSet(f.x, f.y, f.snr)

    # --- training and evaluation ----------------------------------------------------
    def training_step(self, model, batch, prepared):
        logits = model(batch["x"])
        loss = torch.nn.functional.cross_entropy(logits.float(), batch["y"])
        # the logits double as what a distilled student matches (no second forward pass)
        return StepResult(loss, {"acc": float((logits.argmax(1) == batch["y"]).float().mean())}, outputs=logits)

    def distill_outputs(self, model, batch, prepared):
        return model(batch["x"])  # the teacher's logits: the core matches them with temperature-scaled KL

    def logits(self, model, x, prepared) -> np.ndarray:
        return run_batched(model, x, batch_size=prepared.config.trainer.eval_batch).float().numpy()

    def evaluate(self, model, dataset, prepared):
        logits = self.logits(model, dataset.x, prepared)
        return M.scores(logits, dataset.y.numpy(), dataset.snr.numpy(), prepared.config.data.high_snr)

    # --- using ----------------------------------------------------------------------
    def fixed_length(self, prepared) -> int | None:
        """The frame length a model needs (None when it pools over any length)."""
        fixed = not getattr(model_entry(prepared.config.model.name).cls, "variable_length", False)
        return int(prepared.state.get("n_samples") or prepared.config.data.n_samples) if fixed else None

    def predict(self, model, inputs, prepared):
        """``{"classes", "probabilities" [N, K], "predicted", "snr", "label", "source"}`` for the frames of ``inputs``."""
        classes = list(prepared.state.get("classes") or prepared.config.data.classes)
        frames = read_inputs(inputs, prepared.config.data, self.fixed_length(prepared))
        logits = self.logits(model, torch.from_numpy(frames["x"]), prepared)
        probs = torch.from_numpy(logits).softmax(-1).numpy()
        return {**frames, "x": None, "classes": classes, "probabilities": probs,
                "predicted": [classes[k] for k in probs.argmax(1)]}

    def write_prediction(self, prediction, output, prepared):
        with atomic_path(output) as tmp:
            tmp.write_text(to_csv(prediction))
        return [Path(output)]

    def example_input(self, prepared):
        return torch.randn(1, 2, int(prepared.state.get("n_samples") or prepared.config.data.n_samples))

    def export_axes(self, prepared):
        return {0: {0: "batch"} if self.fixed_length(prepared) else {0: "batch", 2: "samples"}}

    def sample_inputs(self, prepared, folder):
        classes = list(prepared.state.get("classes") or prepared.config.data.classes or [])
        return write_samples(classes, int(prepared.state.get("n_samples") or prepared.config.data.n_samples), folder)

    def format_variants(self, sample, folder):
        from sigplex.datasets.rf.radioml import HDF5_SUFFIXES, hostile_variants

        return hostile_variants(sample, folder) if sample.suffix.lower() in HDF5_SUFFIXES else []

    def plots(self, model, prepared, run_dir):
        from .plots import write_plots

        dataset = prepared.held_out()
        if dataset is None:
            return []
        pred = self.logits(model, dataset.x, prepared).argmax(1)
        return write_plots(pred, dataset.y.numpy(), dataset.snr.numpy(), list(prepared.state["classes"]),
                           prepared.config.data.high_snr, Path(run_dir) / "plots",
                           title=f"{prepared.config.model.name} on the test split")


__all__ = ["ClassifyTask"]
