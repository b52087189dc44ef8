"""The ``separate`` task: monaural speech separation trained with SI-SDR + PIT.

Data: with no ``--data``, the embedded corpus (synthesised voices, package data) mixed on the
fly, with held-out voices for validation and test; otherwise a folder / LibriMix CSV /
WSJ0-2mix scp layout read by :mod:`sigplex.datasets.audio` (dynamic mixing of its sources for
training when ``data.dynamic_mixing``). Metrics: SI-SDRi, SDRi, SI-SDR, SDR (+ PESQ / STOI
when installed). Prediction separates a recording of any length chunk by chunk
(:mod:`.long_audio`) and writes one WAV per speaker into the output folder.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Optional

import numpy as np
import torch
from pydantic import Field

from sigplex.core.config import OptimConfig, Section, TaskConfig, TrainerConfig
from sigplex.core.errors import UserError
from sigplex.core.task import DataSplits, Task
from sigplex.datasets.audio import (
    DynamicMixDataset,
    SeparationDataset,
    discover_splits,
    read_audio,
    resample,
    write_audio,
)

from .long_audio import separate_long
from .losses import PITLossWrapper, pairwise_neg_sisdr, perceptual_metrics, reorder, separation_metrics

CORPUS = Path(__file__).resolve().parent / "data"


class ModelSection(Section):
    """Which separator and its size; the defaults are a small CPU model (see the ``paper`` preset)."""

    name: Literal["mossformer2", "mossformer"] = "mossformer2"
    num_spks: int = Field(2, ge=1, le=8)
    dim: int = Field(64, ge=4, description="encoder channels N (512 in the paper)")
    num_layers: int = Field(4, ge=1, description="MossFormer(2) blocks (24 in the paper)")
    kernel_size: int = Field(16, ge=2, description="encoder/decoder kernel")
    stride: int = Field(8, ge=1, description="encoder/decoder stride")
    group_size: int = Field(64, ge=2, description="local attention chunk in frames (256 in the paper)")
    query_key_dim: int = Field(32, ge=4, description="shared qk width (128 in the paper)")
    expansion_factor: float = Field(2.0, gt=0)
    rotary_dim: int = Field(16, ge=0, description="rotary channels of q/k (32 in the paper)")
    fsmn_inner: int = Field(32, ge=2, description="mossformer2: recurrent module width (256 in the paper)")
    fsmn_kernel: int = Field(15, ge=1, description="mossformer2: FSMN memory kernel (39 in the paper)")
    dropout: float = Field(0.0, ge=0, lt=1)
    attn_dropout: float = Field(0.0, ge=0, lt=1)


class DataSection(Section):
    """Audio format, segments, mixing and long-audio inference."""

    sample_rate: int = Field(8000, ge=1000, description="Hz; the embedded corpus is resampled to it")
    resample: bool = Field(False, description="resample files at another rate instead of stopping with an error")
    segment_seconds: float = Field(1.0, gt=0, description="training crop length")
    eval_seconds: Optional[float] = Field(3.0, gt=0, description="evaluation crop (None: whole files)")
    dynamic_mixing: bool = Field(True, description="train on fresh random mixtures of the training sources")
    gain_db: float = Field(2.5, ge=0, description="dynamic mixing: per-source gain in [-gain_db, gain_db] dB")
    speed_perturb: float = Field(0.1, ge=0, lt=0.5, description="dynamic mixing: speed factors 1 +- p, 1 +- p/2, 1")
    train_items: int = Field(4000, ge=1, description="dynamic mixing: mixtures per epoch")
    val_items: int = Field(32, ge=1, description="embedded data: held-out validation mixtures")
    test_items: int = Field(64, ge=1, description="embedded data: held-out test mixtures")
    max_clipped: Optional[float] = Field(0.001, ge=0, le=1, description="largest share of full-scale samples")
    chunk_seconds: float = Field(4.0, gt=0, description="long-audio inference chunk")
    overlap_seconds: float = Field(1.0, gt=0, description="long-audio chunk overlap (<= chunk / 2)")


class SeparationConfig(TaskConfig):
    model: ModelSection = Field(default_factory=ModelSection)
    data: DataSection = Field(default_factory=DataSection)
    trainer: TrainerConfig = Field(default_factory=lambda: TrainerConfig(
        max_steps=1600, batch_size=4, eval_batch_size=4, clip_grad_norm=5.0, val_every=400,
        checkpoint_every=400, log_every=50))
    optim: OptimConfig = Field(default_factory=lambda: OptimConfig(name="adam", lr=1e-3, schedule="cosine",
                                                                   warmup_steps=50, min_lr_ratio=0.05))


PAPER = {"model": {"dim": 512, "num_layers": 24, "group_size": 256, "query_key_dim": 128, "rotary_dim": 32,
                   "fsmn_inner": 256, "fsmn_kernel": 39, "dropout": 0.1, "attn_dropout": 0.1},
         "data": {"segment_seconds": 2.0},
         "trainer": {"batch_size": 1, "clip_grad_norm": 10.0},
         "optim": {"name": "adam", "lr": 1.5e-4, "schedule": "plateau", "warmup_steps": 0}}


@dataclass
class Separation:
    """``predict``'s output: one waveform per speaker ``[S, T]`` at ``sample_rate``."""

    sources: np.ndarray
    sample_rate: int
    name: str = "mixture"
    info: dict = field(default_factory=dict)


def _unwrap(model):
    return getattr(model, "module", model)


def load_corpus(sample_rate: int) -> dict[str, dict[str, list[np.ndarray]]]:
    """The embedded corpus as ``{split: {voice: [utterances]}}`` at ``sample_rate``."""
    meta = json.loads((CORPUS / "voices.json").read_text())
    out: dict[str, dict[str, list[np.ndarray]]] = {"train": {}, "val": {}, "test": {}}
    for voice, info in meta["voices"].items():
        wavs = [read_audio(CORPUS / f, meta["sample_rate"], field=voice) for f in info["files"]]
        if sample_rate != meta["sample_rate"]:
            wavs = [resample(w, meta["sample_rate"], sample_rate) for w in wavs]
        out[info["split"]][voice] = wavs
    return out


class SeparationTask(Task):
    name = "separate"
    config_class = SeparationConfig
    presets = {
        "paper": PAPER,
        "wsj0-2mix": {**PAPER, "data": {"sample_rate": 8000, "segment_seconds": 4.0, "eval_seconds": None}},
        "libri2mix-16k": {**PAPER, "data": {"sample_rate": 16000, "segment_seconds": 3.0, "eval_seconds": None}},
        "16k": {"data": {"sample_rate": 16000}},
    }
    monitor, monitor_mode = "si_sdri", "max"
    output_kind = "folder"
    random_items = True

    def __init__(self):
        self.loss = PITLossWrapper(pairwise_neg_sisdr)

    # --- building -------------------------------------------------------------------
    def build_model(self, config):
        from sigplex.core.models import create_model

        from . import mossformer, mossformer2  # noqa: F401  (register the models)

        m = config.model
        if m.dim % 2:
            raise UserError(f"model.dim={m.dim}: expected an even number (sinusoidal positions)")
        if m.rotary_dim and (m.rotary_dim % 2 or m.rotary_dim > m.query_key_dim):
            raise UserError(f"model.rotary_dim={m.rotary_dim}: expected an even number <= model.query_key_dim="
                            f"{m.query_key_dim}")
        if m.kernel_size < m.stride:
            raise UserError(f"model.kernel_size={m.kernel_size}: expected >= model.stride={m.stride}")
        kw = dict(num_spks=m.num_spks, dim=m.dim, num_layers=m.num_layers, kernel_size=m.kernel_size,
                  stride=m.stride, group_size=m.group_size, query_key_dim=m.query_key_dim,
                  expansion_factor=m.expansion_factor, rotary_dim=m.rotary_dim, dropout=m.dropout,
                  attn_dropout=m.attn_dropout)
        if m.name == "mossformer2":
            kw.update(fsmn_inner=m.fsmn_inner, fsmn_kernel=m.fsmn_kernel)
        return create_model(m.name, **kw)

    def build_data(self, config, data):
        d, n = config.data, config.model.num_spks
        sr = d.sample_rate
        seg = int(round(d.segment_seconds * sr))
        ev = int(round(d.eval_seconds * sr)) if d.eval_seconds else None
        if data is None:
            corpus = load_corpus(sr)
            train = DynamicMixDataset(corpus["train"], n, seg, d.train_items, gain_db=d.gain_db,
                                      speeds=self.speeds(config), sample_rate=sr)
            val = DynamicMixDataset(corpus["val"], n, ev or 3 * sr, d.val_items, gain_db=d.gain_db, seed=1)
            test = DynamicMixDataset(corpus["test"], n, ev or 3 * sr, d.test_items, gain_db=d.gain_db, seed=2)
            return DataSplits(train, val, test, info={"source": "embedded", "voices": {
                k: sorted(v) for k, v in corpus.items()}})
        splits = discover_splits(data, n)
        common = dict(resample=d.resample, max_clipped=d.max_clipped)
        static = SeparationDataset(splits["train"], sr, segment=seg, random_crop=True, **common)
        if d.dynamic_mixing:
            # every training source is a "speaker" of its own; pairs come from different examples
            speakers = {}
            for ex in splits["train"]:
                for k, path in enumerate(ex.sources[:n], 1):
                    speakers[f"{ex.id}/{k}"] = [lambda p=path, k=k: read_audio(
                        p, sr, resample_to_rate=d.resample, field=f"source_{k}", max_clipped=d.max_clipped)]
            train = DynamicMixDataset(speakers, n, seg, d.train_items, gain_db=d.gain_db,
                                      speeds=self.speeds(config), sample_rate=sr)
        else:
            train = static
        val = SeparationDataset(splits["val"], sr, segment=ev, **common) if "val" in splits else None
        test = SeparationDataset(splits["test"], sr, segment=ev, **common) if "test" in splits else None
        return DataSplits(train, val, test, info={"source": str(data)})

    @staticmethod
    def speeds(config) -> tuple[float, ...]:
        p = config.data.speed_perturb
        return (1.0,) if p == 0 else (1 - p, 1 - p / 2, 1.0, 1 + p / 2, 1 + p)

    def collate(self, items):
        return {"mix": torch.stack([it["mix"] for it in items]), "sources": torch.stack([it["sources"] for it in items])}

    # --- training -------------------------------------------------------------------
    def training_step(self, model, batch, config):
        est = model(batch["mix"])
        loss = self.loss(est.float(), batch["sources"].float())
        return loss, {"si_sdr": -float(loss.detach())}

    def separator(self, model, config):
        """``[1, t] -> [1, S, t]`` with the model, used chunk by chunk on long inputs."""
        return lambda x: model(x)

    def separate(self, model, mixture: np.ndarray, config) -> np.ndarray:
        """``[T]`` -> ``[S, T]``: one forward pass if it fits a chunk, else chunked overlap-add."""
        d = config.data
        chunk = int(round(d.chunk_seconds * d.sample_rate))
        overlap = int(round(d.overlap_seconds * d.sample_rate))
        if overlap * 2 > chunk:
            raise UserError(f"data.overlap_seconds={d.overlap_seconds}: expected at most half of "
                            f"data.chunk_seconds={d.chunk_seconds}")
        device = next(model.parameters()).device
        return separate_long(self.separator(model, config), mixture, config.model.num_spks, chunk, overlap,
                             device=device)

    @torch.no_grad()
    def evaluate(self, model, dataset, config):
        sums: dict[str, float] = {}
        count = 0
        sr = config.data.sample_rate
        for i in range(len(dataset)):
            item = dataset[i]
            mix, ref = item["mix"], item["sources"]
            est = torch.from_numpy(self.separate(model, mix.numpy(), config))
            m = separation_metrics(est[None], ref[None], mix[None])
            scores = {k: float(v[0]) for k, v in m.items() if k != "perm"}
            aligned = reorder(est[None], m["perm"])[0]
            scores.update(perceptual_metrics(aligned.numpy(), ref.numpy(), sr))
            for k, v in scores.items():
                sums[k] = sums.get(k, 0.0) + v
            count += 1
        if count == 0:
            raise UserError("the evaluation split holds no mixtures")
        out = {k: v / count for k, v in sums.items()}
        out["n_items"] = float(count)
        return out

    # --- using ----------------------------------------------------------------------
    def predict(self, model, inputs, config):
        d = config.data
        name = "mixture"
        if isinstance(inputs, (str, Path)):
            path = Path(inputs)
            wav = read_audio(path, d.sample_rate, resample_to_rate=d.resample, field="input", max_clipped=None)
            name = path.stem
        else:
            wav = np.asarray(inputs.detach().cpu() if isinstance(inputs, torch.Tensor) else inputs, dtype=np.float32)
            if wav.ndim == 2 and wav.shape[0] == 1:
                wav = wav[0]
            if wav.ndim != 1:
                raise UserError(f"input: shape {wav.shape}; expected a mono waveform [T]")
            if wav.size == 0:
                raise UserError("input: holds no samples; expected a non-empty waveform")
        est = self.separate(_unwrap(model), wav, config)
        return Separation(est, d.sample_rate, name, {"samples": int(wav.shape[-1])})

    def write_prediction(self, prediction, output: Path, *, source=None, overwrite: bool = False) -> list[Path]:
        output = Path(output)
        if output.exists() and not output.is_dir():
            raise UserError(f"--output {output}: is a file; expected a folder for one WAV per speaker")
        paths = [output / f"{prediction.name}_spk{k + 1}.wav" for k in range(len(prediction.sources))]
        if not overwrite:
            for p in paths:
                if p.exists():
                    raise UserError(f"--output {p}: already exists; choose another folder or pass --overwrite")
        return [write_audio(p, wav, prediction.sample_rate, overwrite=overwrite)
                for p, wav in zip(paths, prediction.sources)]

    def example_input(self, config):
        return torch.randn(1, config.data.sample_rate)


__all__ = ["DataSection", "ModelSection", "Separation", "SeparationConfig", "SeparationTask", "load_corpus"]
