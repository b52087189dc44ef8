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
from sigplex.core.limits import check_size

CLIP_LEVEL = 0.999


RESAMPLE_BLOCK = 1 << 18  # input samples per torchaudio call; longer signals go through in blocks
MIN_RATE = 1000  # Hz: below it a file is not audio (resampling it to a model's rate would blow it up)


def resample(wav: np.ndarray, orig_sr: int, new_sr: int, block: int = RESAMPLE_BLOCK) -> np.ndarray:
    """Band-limited resampling of ``[..., T]`` with ``torchaudio.functional.resample`` (its defaults).

    A signal longer than ``block`` samples is resampled block by block, each with enough real
    context on both sides for torchaudio's windowed-sinc kernel, so the result equals one call's
    (to float rounding) while the working memory stays that of one block (one call on 10 minutes
    at 16 kHz takes hundreds of MB of intermediates).
    """
    if orig_sr == new_sr:
        return wav
    import math

    import torch
    import torchaudio.functional as AF

    x = np.ascontiguousarray(wav, dtype=np.float32)
    t = x.shape[-1]
    if t <= block:
        return AF.resample(torch.from_numpy(x), orig_sr, new_sr).numpy()
    g = math.gcd(orig_sr, new_sr)
    a, b = orig_sr // g, new_sr // g  # every a input samples give b output samples
    width = math.ceil(6 * a / (min(a, b) * 0.99))  # torchaudio's kernel reach (lowpass_filter_width=6, rolloff=0.99)
    context = a * (math.ceil((width + a) / a) + 1)
    step = a * max(1, block // a)
    out = np.empty(x.shape[:-1] + (-(-b * t // a),), dtype=np.float32)
    for start in range(0, t, step):
        end = min(start + step, t)
        lo, hi = max(0, start - context), min(t, end + context)  # lo and start are multiples of a
        y = AF.resample(torch.from_numpy(np.ascontiguousarray(x[..., lo:hi])), orig_sr, new_sr).numpy()
        first, last = start * b // a, (end * b // a if end < t else out.shape[-1])
        skip = (start - lo) * b // a
        out[..., first:last] = y[..., skip:skip + last - first]
    return out


def clipped_fraction(wav: np.ndarray, level: float = CLIP_LEVEL) -> float:
    """Share of samples at or above ``level`` of full scale."""
    return float(np.mean(np.abs(wav) >= level)) if wav.size else 0.0


def trim_silence(wav: np.ndarray, threshold_db: float = -40.0, frame: int = 160) -> np.ndarray:
    """``wav`` without its leading and trailing frames quieter than ``threshold_db`` below its loudest frame.

    >>> trim_silence(np.r_[np.zeros(480), np.ones(320), np.zeros(480)].astype("float32")).size
    320
    """
    frames = len(wav) // frame
    if frames == 0:
        return wav[:0]
    energy = np.square(wav[: frames * frame].reshape(frames, frame), dtype=np.float64).mean(1) + 1e-12
    active = np.flatnonzero(10 * np.log10(energy / energy.max()) > threshold_db)
    return wav[active[0] * frame: (active[-1] + 1) * frame] if active.size else wav[:0]


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
        info = sf.info(str(path))
        check_size(4 * info.frames * info.channels, path, f"{field}: {info.frames} frames x {info.channels} channels")
        wav, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except UserError:
        raise
    except Exception as exc:
        raise UserError(f"{path}: {field}: not a readable audio file ({str(exc).splitlines()[0]}); "
                        "expected WAV or FLAC") from None
    wav = require_finite(wav.T, path, field)  # [C, T]
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


def read_downmixed(path: str | Path, *, field: str = "audio",
                   block: int = RESAMPLE_BLOCK) -> tuple[np.ndarray, int, int]:
    """``(mono [T] float32, sample_rate, channels)``: ``path`` at its own rate, its channels averaged, read in
    blocks (a long stereo file never sits in memory as float32 stereo)."""
    import soundfile as sf

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: {field}: file not found")
    try:
        info = sf.info(str(path))
    except Exception as exc:
        raise UserError(f"{path}: {field}: not a readable audio file ({str(exc).splitlines()[0]}); "
                        "expected WAV or FLAC") from None
    frames, rate, channels = info.frames, info.samplerate, info.channels
    if frames == 0:
        raise UserError(f"{path}: {field}: holds no samples; expected a non-empty recording")
    if rate < MIN_RATE:
        raise UserError(f"{path}: {field}: sample rate {rate} Hz; expected an audio rate of at least {MIN_RATE} Hz")
    check_size(4 * frames, path, f"{field}: {frames} frames as float32")
    out = np.empty(frames, dtype=np.float32)
    done = 0
    try:
        for part in sf.blocks(str(path), blocksize=block, dtype="float32", always_2d=True):
            out[done:done + len(part)] = part.mean(axis=1) if channels > 1 else part[:, 0]
            done += len(part)
    except Exception as exc:  # libsndfile on a damaged stream
        raise UserError(f"{path}: {field}: damaged audio after {done} frames ({str(exc).splitlines()[0]})") from None
    if done == 0:
        raise UserError(f"{path}: {field}: holds no readable samples; expected a non-empty recording")
    return require_finite(out[:done], path, field), rate, channels


def require_finite(wav: np.ndarray, path, field: str) -> np.ndarray:
    """``wav``, or a one-line error when a sample is NaN or infinite (a float file written from a failed computation)."""
    if not np.isfinite(wav).all():
        bad = int(np.flatnonzero(~np.isfinite(wav.reshape(-1)))[0])
        raise UserError(f"{path}: {field}: NaN or infinite samples (the first at sample {bad}); expected finite audio")
    return wav


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


__all__ = ["MIN_RATE", "RESAMPLE_BLOCK", "audio_info", "clipped_fraction", "read_audio", "read_downmixed",
           "require_finite", "resample", "write_audio"]
