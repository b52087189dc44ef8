"""The ``separate`` task: monaural speech separation trained with SI-SDR + PIT.

Data (:mod:`.mixtures`): with no ``--data``, the embedded corpus (synthesised voices, package
data) mixed on the fly, with held-out voices for validation and test; otherwise a folder /
LibriMix CSV / WSJ0-2mix scp layout read by :mod:`sigplex.datasets.audio`. Metrics: SI-SDRi,
SDRi, SI-SDR, SDR (+ PESQ / STOI when installed). Prediction separates a recording of any length
(chunk by chunk, :mod:`.long_audio`), any sample rate and any channel count (resampled to the
model's rate and back, downmixed to mono: :mod:`.recording`) into one waveform per speaker;
``--output mix.wav`` writes ``mix_spk1.wav``, ``mix_spk2.wav``, ... and each sidecar records every
output's level. The prepared state holds the sample rate the model was trained at. Weights files
may be ClearerVoice-Studio MossFormer2_SS checkpoints (:mod:`.clearvoice_weights`).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from sigplex.core.errors import UserError
from sigplex.core.models import create_model
from sigplex.core.task import Prepared, Pretrained, StepResult, Task, TaskCard
from sigplex.datasets.audio import SeparationDataset, write_audio
from sigplex.datasets.audio.hostile import hostile_variants

from .clearvoice_weights import checkpoint_sizes, is_clearvoice, load_weights
from .config import CLEARVOICE, PRESETS, SeparationConfig
from .long_audio import separate as separate_chunked
from .losses import PITLossWrapper, pairwise_neg_sisdr, perceptual_metrics, reorder, separation_metrics
from .mixtures import embedded_splits, evaluation_examples, folder_splits
from .pretrained import RELATIVE_PATH, STATE_PATH
from .recording import separate_recording, write_samples


class SeparationTask(Task):
    name = "separate"
    config_class = SeparationConfig
    presets = PRESETS
    monitor, monitor_mode = "si_sdri", "max"
    input_kind = "file"
    # predict reads any container libsndfile >= 1.1 decodes; training and evaluation folders stay WAV/FLAC
    # (a lossy codec's delay would misalign a mixture and its references)
    input_suffixes = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aiff", ".aif")
    output_suffixes = (".wav",)
    distill_loss = "mse"
    card = TaskCard(
        intended_use="Separating a recording of overlapping talkers into one waveform per talker (research, "
                     "pre-processing for transcription); any length (chunk by chunk), any sample rate (resampled to "
                     "the model's and back), several channels downmixed to mono.",
        limitations="The shipped model (used when predict gets no --checkpoint) is small (0.2M parameters, 8 kHz) and "
                    "was trained for about 45 minutes on 2 CPU cores, on synthetic voices and five recorded "
                    "telephone-prompt voices: on real two-talker mixtures of held-out human voices it gains only "
                    "2.4 dB SI-SDRi at equal levels and none when one talker is 5 dB louder (docs/plugins/"
                    "speech_sep.md), far below models trained on LibriMix or "
                    "WSJ0-2mix; for real recordings prefer a ClearerVoice-Studio checkpoint or train on real mixtures "
                    "with --data. It always outputs model.num_spks waveforms, whatever the number of talkers (see "
                    "silent_outputs in the sidecars); speaker order is arbitrary.",
        data_license="The embedded corpus is synthetic speech generated with espeak-ng and flite (speech_sep/data/"
                     "make_corpus.py). The shipped model was also trained on recorded Asterisk voice prompts from "
                     "Debian packages (data/make_real_voices.py): fr_CA June, it_IT Carlo and ru_RU IvrvoiceRU "
                     "(CC BY-SA 3.0), Colombian Spanish prompts (GPL-2) and Armelle Desjardins' French prompts "
                     "(BSD-style). A model trained on --data inherits that dataset's licence (e.g. LibriMix: CC BY 4.0; "
                     "WSJ0: LDC licence).",
    )
    pretrained = Pretrained(
        weights=f"sigplex.plugins.speech_sep:{RELATIVE_PATH}", preset="widened",
        state=f"sigplex.plugins.speech_sep:{STATE_PATH}",
        description="small MossFormer2 (205k parameters, 8 kHz), trained about 45 minutes on 2 CPU cores: 1000 steps "
                    "on the embedded synthetic voices plus five recorded Asterisk prompt voices, then 2200 steps with "
                    "85 % of the talkers drawn from those recorded voices (widened mixing: speed, formants, tempo, EQ, "
                    "rooms, noise, levels); see speech_sep/pretrained.py",
        license="Apache-2.0 (weights); training data: see data_license")

    # --- building -------------------------------------------------------------------
    def build_model(self, config):
        return create_model(config.model.name, **config.model.arguments())

    def build_data(self, config, data):
        state = {"sample_rate": config.data.sample_rate}
        if data is None:
            train, val, test, voices = embedded_splits(config)
            return Prepared(config, train, val, test, {**state, "voices": voices})
        return Prepared(config, *folder_splits(config, Path(data)), state)

    def evaluation_data(self, data, prepared):
        """All mixtures under ``data`` (a bare ``mix/ + s1/, s2/`` folder is enough), whole or cropped as in
        validation (``data.eval_seconds``)."""
        d, sr = prepared.config.data, self.sample_rate(prepared)
        examples = evaluation_examples(Path(data), prepared.config.model.num_spks)
        return SeparationDataset(examples, sr, segment=int(round(d.eval_seconds * sr)) if d.eval_seconds else None,
                                 resample=d.resample, max_clipped=d.max_clipped)

    @staticmethod
    def sample_rate(prepared) -> int:
        """The rate the model was trained at (prepared state; the config's for a run without state)."""
        return int(prepared.state.get("sample_rate", prepared.config.data.sample_rate))

    # --- training and evaluation ----------------------------------------------------
    def training_step(self, model, batch, prepared):
        loss = PITLossWrapper(pairwise_neg_sisdr)(model(batch["mix"]).float(), batch["sources"].float())
        return StepResult(loss, {"si_sdr": -float(loss.detach())})

    def distill_outputs(self, model, batch, prepared):
        return model(batch["mix"])

    def separate(self, model, mixture: np.ndarray, prepared) -> np.ndarray:
        """``[T]`` -> ``[S, T]``: one forward pass if it fits a chunk, else chunked overlap-add."""
        d = prepared.config.data
        return separate_chunked(model, mixture, prepared.config.model.num_spks, self.sample_rate(prepared), d.chunk_seconds,
                        d.overlap_seconds)

    def evaluate(self, model, dataset, prepared):
        if not len(dataset):
            raise UserError("the evaluation data holds no mixtures")
        sums: dict[str, float] = {}
        for i in range(len(dataset)):
            item = dataset[i]
            mix, ref = item["mix"], item["sources"]
            est = torch.from_numpy(self.separate(model, mix.numpy(), prepared))
            m = separation_metrics(est[None], ref[None], mix[None])
            scores = {k: float(v[0]) for k, v in m.items() if k != "perm"}
            scores.update(perceptual_metrics(reorder(est[None], m["perm"])[0].numpy(), ref.numpy(),
                                             self.sample_rate(prepared)))
            for k, v in scores.items():
                sums[k] = sums.get(k, 0.0) + v
        return {**{k: v / len(dataset) for k, v in sums.items()}, "n_items": float(len(dataset))}

    # --- using ----------------------------------------------------------------------
    def predict(self, model, inputs, prepared):
        """A :class:`~.recording.Separation`: one waveform per speaker at the input's rate and length
        (files of any rate are resampled to the model's and back; several channels are downmixed first), with
        each output's level in ``provenance``."""
        return separate_recording(lambda wav: self.separate(model, wav, prepared), inputs, self.sample_rate(prepared))

    def sample_inputs(self, prepared, folder):
        return write_samples(self.sample_rate(prepared), folder)

    format_variants = staticmethod(hostile_variants)  # NaN/Inf/zero/short/8-channel/1 Hz/lying-header WAVs

    def output_files(self, output, prepared):
        """``mix.wav`` -> ``mix_spk1.wav``, ``mix_spk2.wav``, ... (one file per talker)."""
        output = Path(output)
        return [output.with_name(f"{output.stem}_spk{k}.wav") for k in range(1, prepared.config.model.num_spks + 1)]

    def write_prediction(self, prediction, output, prepared):
        files = self.output_files(output, prepared)
        return [write_audio(path, wav, prediction.sample_rate, overwrite=True)
                for path, wav in zip(files, prediction.sources)]

    def load_weights(self, model, weights, source):
        """Weights files for ``--init-from`` and shipped weights: ours as they are, ClearerVoice-Studio
        MossFormer2_SS checkpoints recognised by their names and mapped (:mod:`.clearvoice_weights`)."""
        load_weights(model, weights, source)

    def weights_config(self, weights, source):
        """The settings a bare weights file implies: for a ClearerVoice-Studio MossFormer2_SS checkpoint their
        network's form at its sizes (read from the tensors), and 16 kHz when the file's path says ``16k``
        (``MossFormer2_SS_16K/...``), else 8 kHz; nothing for our own layout. ``--config``/``--set`` win."""
        if not is_clearvoice(weights):
            return {}
        implied = {f"model.{k}": v for k, v in CLEARVOICE["model"].items()}
        implied.update({f"model.{k}": v for k, v in checkpoint_sizes(weights).items()})
        implied["data.sample_rate"] = 16000 if "16k" in str(source).lower() else 8000
        return implied

    def example_input(self, prepared):
        return torch.randn(1, self.sample_rate(prepared))

    def export_axes(self, prepared):
        return {0: {0: "batch", 1: "time"}}


__all__ = ["SeparationTask"]
