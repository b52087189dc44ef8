"""Audio variants of a valid WAV recording for the hostile-input checks (:mod:`sigplex.core.hostile`).

NaN and infinite samples (32-bit float WAV), all zeros, one sample, eight channels, a sample rate
of 1 Hz (resampling it to a model's rate would multiply its size thousands of times), and headers
that declare more frames than the file holds: twice the file, and twice the input limit.
"""
from __future__ import annotations

import struct
from pathlib import Path


def _declaring(data: bytes, frames_bytes: int) -> bytes:
    """``data`` (a WAV file) with its ``data`` chunk (and the RIFF size) declaring ``frames_bytes`` bytes."""
    at = data.find(b"data", 12)
    patched = bytearray(data)
    patched[at + 4:at + 8] = struct.pack("<I", min(frames_bytes, 0xFFFFFFFF))
    patched[4:8] = struct.pack("<I", min(frames_bytes + at, 0xFFFFFFFF))
    return bytes(patched)


def hostile_variants(sample: Path, folder: Path) -> list:
    """The variants of the WAV file ``sample``, written below ``folder``."""
    import numpy as np
    import soundfile as sf

    from sigplex.core.hostile import HostileInput
    from sigplex.core.limits import max_input_bytes

    wav, rate = sf.read(str(sample), dtype="float32", always_2d=True)
    nan, inf = wav.copy(), wav.copy()
    nan[len(wav) // 2:] = np.nan
    inf[len(wav) // 3] = np.inf
    signals = {"nan": (nan, rate), "inf": (inf, rate), "all-zero": (np.zeros_like(wav), rate),
               "one-sample": (wav[:1], rate), "eight-channels": (np.repeat(wav[:, :1], 8, 1), rate),
               "rate-1hz": (wav, 1)}
    found = []
    for name, (signal, sr) in signals.items():
        path = Path(folder) / f"wav-{name}" / sample.name
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(str(path), signal, sr, subtype="FLOAT", format="WAV")
        found.append(HostileInput(f"wav:{name}", path))
    clean = Path(folder) / "wav-clean.wav"
    sf.write(str(clean), wav, rate, subtype="FLOAT", format="WAV")
    data = clean.read_bytes()
    clean.unlink()
    # headers declaring more than the file holds: readers go as far as the file does (memory stays bounded)
    for name, declared in (("declares-more-frames", len(data) * 2), ("declares-over-limit", 2 * max_input_bytes())):
        path = Path(folder) / f"wav-{name}" / sample.name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(_declaring(data, declared))
        found.append(HostileInput(f"wav:{name}", path))
    return found
