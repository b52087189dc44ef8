"""What predict does around the model: any sample rate, any channel count, and a level report per output.

- **Sample rate**: the recording is resampled to the model's rate with
  ``torchaudio.functional.resample`` (band-limited sinc), separated, and each output resampled back
  to the recording's own rate, at the recording's exact length.
- **Channels**: a multi-channel (e.g. stereo) recording is **downmixed** to mono (the mean of its
  channels) before separation; every output is mono. A stereo pair of one room holds the same
  talkers in both channels, so separating each channel would only give each talker twice.
- **Levels**: :func:`output_levels` reports each output's RMS level (dBFS) and how far it lies
  below the loudest output. An output more than :data:`SILENT_DB` dB below the loudest (or below
  :data:`FLOOR_DBFS`) is listed as silent: a recording of one talker gives one real output and one
  near-silent one, which the report makes visible. The report travels as ``provenance`` on the
  prediction, which the core writes into every output's sidecar (``<file>.json`` under ``choices``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from sigplex.core.errors import UserError
from sigplex.datasets.audio import read_downmixed, resample

SILENT_DB = 20.0  # an output this far below the loudest one counts as silent
FLOOR_DBFS = -70.0  # and so does any output below this absolute level


@dataclass
class Separation:
    """One recording separated: ``sources [S, T]`` float32 at ``sample_rate`` (the recording's rate and length),
    and ``provenance`` -- what predict did (rates, channels) and each output's level."""

    sources: np.ndarray
    sample_rate: int
    provenance: dict = field(default_factory=dict)

    def __array__(self, dtype=None, copy=None):
        return self.sources if dtype is None else self.sources.astype(dtype)


def load_recording(inputs, model_rate: int) -> tuple[np.ndarray, int, int]:
    """``(mono [T] float32, its rate, channels of the original)`` from a file (any rate, any channels: downmixed)
    or an in-memory mono waveform ``[T]`` / ``[1, T]`` taken to be at ``model_rate``."""
    if isinstance(inputs, (str, Path)):
        return read_downmixed(Path(inputs), field="input")
    wav = np.asarray(inputs.detach().cpu() if isinstance(inputs, torch.Tensor) else inputs, dtype=np.float32)
    wav = wav[0] if wav.ndim == 2 and wav.shape[0] == 1 else wav
    if wav.ndim != 1:
        raise UserError(f"input: shape {wav.shape}; expected a mono waveform [T] at {model_rate} Hz (pass a file "
                        "for other rates or several channels)")
    if wav.size == 0:
        raise UserError("input: holds no samples; expected a non-empty waveform")
    return wav, model_rate, 1


def to_rate(wav: np.ndarray, rate: int, new_rate: int, length: int | None = None) -> np.ndarray:
    """``[..., T]`` resampled from ``rate`` to ``new_rate``, cut or zero-padded to ``length`` samples if given."""
    out = resample(wav, rate, new_rate) if rate != new_rate else wav
    if length is not None and out.shape[-1] != length:
        out = out[..., :length] if out.shape[-1] > length else np.pad(
            out, [(0, 0)] * (out.ndim - 1) + [(0, length - out.shape[-1])])
    return np.ascontiguousarray(out, dtype=np.float32)


def dbfs(wav: np.ndarray, block: int = 1 << 18) -> np.ndarray:
    """RMS level over the last axis in dB relative to full scale (floored at -200 dB for digital silence);
    summed in float64 block by block, so no float64 copy of a long recording is made."""
    energy = sum(np.square(wav[..., i:i + block], dtype=np.float64).sum(axis=-1) for i in range(0, wav.shape[-1], block))
    return 20 * np.log10(np.maximum(np.sqrt(energy / max(wav.shape[-1], 1)), 1e-10))


def output_levels(sources: np.ndarray) -> dict:
    """Each output's RMS level (dBFS), its distance below the loudest output (dB), and which outputs are silent."""
    levels = dbfs(sources)
    below = levels.max() - levels
    silent = [f"spk{k + 1}" for k, (lv, b) in enumerate(zip(levels, below)) if b > SILENT_DB or lv < FLOOR_DBFS]
    return {"output_rms_dbfs": [round(float(v), 2) for v in levels],
            "output_db_below_loudest": [round(float(v), 2) for v in below],
            "silent_outputs": silent}


def separate_recording(separate, inputs, model_rate: int) -> Separation:
    """Read ``inputs``, downmix, resample to ``model_rate``, ``separate([T]) -> [S, T]``, resample back, report."""
    wav, rate, channels = load_recording(inputs, model_rate)
    est = separate(to_rate(wav, rate, model_rate))
    sources = to_rate(est, model_rate, rate, length=wav.shape[-1])
    provenance = {"input_sample_rate": rate, "model_sample_rate": model_rate, "resampled": rate != model_rate,
                  "input_channels": channels, "channels": "mono" if channels == 1 else "downmixed to mono (mean)",
                  "input_rms_dbfs": round(float(dbfs(wav)), 2), **output_levels(sources)}
    return Separation(sources, rate, provenance)


__all__ = ["FLOOR_DBFS", "SILENT_DB", "Separation", "dbfs", "load_recording", "output_levels", "separate_recording",
           "to_rate"]


def write_samples(rate: int, folder: Path) -> list[Path]:
    """Valid inputs for self-checks: 1.5 s of two harmonic "talkers" with different pitch contours and a
    little noise at ``rate``, as ``mixture.wav`` (16-bit PCM) and ``mixture.flac``."""
    from sigplex.datasets.audio import write_audio

    t = np.arange(int(1.5 * rate)) / rate
    rng = np.random.default_rng(4)
    talkers = [sum(np.sin(2 * np.pi * k * f0 * (1 + 0.1 * np.sin(2 * np.pi * 3 * t)) * t) / k for k in (1, 2, 3))
               for f0 in (130.0, 210.0)]
    mixture = 0.2 * (talkers[0] + talkers[1]) + 0.01 * rng.standard_normal(t.size)
    return [write_audio(Path(folder) / f"mixture{suffix}", mixture.astype(np.float32), rate, subtype="PCM_16")
            for suffix in (".wav", ".flac")]
