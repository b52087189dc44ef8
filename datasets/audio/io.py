"""Audio file I/O with soundfile, resampling with torchaudio, and clear errors for bad recordings.

:func:`read_audio` returns a mono float32 numpy array at the expected rate or raises a one-line
:class:`~sigplex.core.errors.UserError` naming the file, the field and what was expected: a
missing or unreadable file, multi-channel audio where mono is expected, an empty file, a
clipped recording, or a wrong sample rate (with the fix: ``--set data.resample=true``).
:func:`write_audio` writes atomically and never overwrites unless asked.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from sigplex.core.errors import UserError
from sigplex.core.fileio import atomic_path

CLIP_LEVEL = 0.999


def resample(wav: np.ndarray, orig_sr: int, new_sr: int) -> np.ndarray:
    """Band-limited resampling of ``[..., T]`` with ``torchaudio.functional.resample``."""
    if orig_sr == new_sr:
        return wav
    import torch
    import torchaudio.functional as AF

    return AF.resample(torch.from_numpy(np.ascontiguousarray(wav, dtype=np.float32)), orig_sr, new_sr).numpy()


def clipped_fraction(wav: np.ndarray, level: float = CLIP_LEVEL) -> float:
    """Share of samples at or above ``level`` of full scale."""
    return float(np.mean(np.abs(wav) >= level)) if wav.size else 0.0


def read_audio(path: str | Path, sample_rate: int | None = None, *, resample_to_rate: bool = False,
               field: str = "audio", max_clipped: float | None = 0.001, mono: bool = True) -> np.ndarray:
    """Read ``path`` as float32 in [-1, 1]: ``[T]`` (mono) or ``[C, T]``.

    ``sample_rate``: the rate the caller expects; another rate is an error unless
    ``resample_to_rate`` (then the audio is resampled). ``max_clipped``: the largest share of
    samples allowed at full scale (None: do not check). ``field`` names what the file is
    (``mixture``, ``source_1``...) in error messages.
    """
    import soundfile as sf

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: {field}: file not found")
    try:
        wav, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as exc:
        raise UserError(f"{path}: {field}: not a readable audio file ({str(exc).splitlines()[0]}); "
                        "expected WAV or FLAC") from None
    wav = wav.T  # [C, T]
    if wav.shape[1] == 0:
        raise UserError(f"{path}: {field}: holds no samples; expected a non-empty recording")
    if mono and wav.shape[0] != 1:
        raise UserError(f"{path}: {field}: has {wav.shape[0]} channels; expected mono (1 channel) audio "
                        "-- downmix it first, e.g. with: sox in.wav out.wav remix -")
    if max_clipped is not None:
        share = clipped_fraction(wav)
        if share > max_clipped:
            raise UserError(f"{path}: {field}: {100 * share:.2f}% of samples are clipped at full scale; expected at "
                            f"most {100 * max_clipped:.2f}% (use an unclipped recording or raise data.max_clipped)")
    if sample_rate is not None and sr != sample_rate:
        if not resample_to_rate:
            raise UserError(f"{path}: {field}: sample rate is {sr} Hz; expected {sample_rate} Hz "
                            "(resample on load with --set data.resample=true)")
        wav = resample(wav, sr, sample_rate)
    return wav[0] if mono else wav


def audio_info(path: str | Path) -> tuple[int, int, int]:
    """``(frames, sample_rate, channels)`` of an audio file without reading it."""
    import soundfile as sf

    try:
        info = sf.info(str(path))
    except Exception as exc:
        raise UserError(f"{path}: not a readable audio file ({str(exc).splitlines()[0]})") from None
    return info.frames, info.samplerate, info.channels


def write_audio(path: str | Path, wav, sample_rate: int, *, overwrite: bool = False, subtype: str = "FLOAT") -> Path:
    """Write ``[T]`` or ``[C, T]`` audio atomically (WAV by default, 32-bit float); never overwrites
    unless ``overwrite``."""
    import soundfile as sf

    path = Path(path)
    data = np.asarray(wav, dtype=np.float32)
    data = data.T if data.ndim == 2 else data
    fmt = "FLAC" if path.suffix.lower() == ".flac" else "WAV"
    with atomic_path(path, overwrite=overwrite) as tmp:
        sf.write(str(tmp), data, sample_rate, subtype=subtype if fmt == "WAV" else "PCM_16", format=fmt)
    return path


__all__ = ["audio_info", "clipped_fraction", "read_audio", "resample", "write_audio"]
