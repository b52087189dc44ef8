"""Continuous IQ captures from software radios, cut into frames: SigMF recordings and raw sample files.

* **SigMF** (``NAME.sigmf-meta`` JSON + ``NAME.sigmf-data`` samples): the complex datatypes of the
  SigMF core namespace, ``c{f64,f32,i32,i16,i8,u32,u16,u8}[_le|_be]``, one channel; the sample rate
  comes from ``global.core:sample_rate``.
* **Raw files** as GNU Radio's file sink and SDR tools write them, the type named by the suffix:
  ``.cfile`` / ``.cf32`` / ``.fc32`` complex float32, ``.cs16`` / ``.sc16`` complex int16,
  ``.cu8`` complex uint8 (RTL-SDR, offset 127.5); little-endian, no header, no sample rate.

Samples are memory-mapped, so a capture larger than memory is read only as far as the frames
asked for. :func:`capture_frames` cuts consecutive, non-overlapping frames of ``length`` samples
(the tail shorter than a frame is dropped) into float32 ``[N, 2, length]`` (I, Q).

>>> import numpy as np, tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "tone.cfile"
>>> np.exp(2j * np.pi * 0.01 * np.arange(1000)).astype(np.complex64).tofile(path)
>>> frames, info = capture_frames(path, 128)
>>> frames.shape, info["frames"], info["sample_rate"]
((7, 2, 128), 7, None)
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from sigplex.core.errors import UserError

SIGMF_SUFFIXES = (".sigmf-meta", ".sigmf-data")
RAW_TYPES = {".cfile": "cf32_le", ".cf32": "cf32_le", ".fc32": "cf32_le", ".cs16": "ci16_le", ".sc16": "ci16_le",
             ".cu8": "cu8"}
CAPTURE_SUFFIXES = SIGMF_SUFFIXES + tuple(RAW_TYPES)
_DATATYPE = re.compile(r"^c(f64|f32|i32|i16|i8|u32|u16|u8)(_le|_be)?$")


def _dtype(datatype: str, where: str) -> np.dtype:
    """The NumPy dtype of one I or Q value of a complex SigMF ``datatype``."""
    m = _DATATYPE.match(datatype)
    if m is None:
        kind = "a real datatype; expected complex IQ (c...)" if datatype.startswith("r") else "not a SigMF datatype"
        raise UserError(f"{where}: core:datatype {datatype!r} is {kind}, e.g. cf32_le or ci16_le")
    base, endian = m.group(1), m.group(2) or "_le"
    code = f"{base[0]}{int(base[1:]) // 8}"  # SigMF counts bits, NumPy bytes: f32 -> f4
    return np.dtype(("<" if endian == "_le" else ">") + code)


def _read_meta(meta: Path) -> dict:
    try:
        doc = json.loads(meta.read_text(encoding="utf-8"))
        return doc["global"]
    except FileNotFoundError:
        raise UserError(f"{meta}: SigMF metadata file not found (expected next to its .sigmf-data)") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise UserError(f"{meta}: not SigMF metadata (a JSON object with a 'global' section): {exc}") from None


def open_capture(path: str | Path) -> tuple[np.ndarray, dict]:
    """``(values, info)``: the memory-mapped I/Q values ``[samples, 2]`` of a capture and
    ``{"datatype", "sample_rate" (Hz or None), "samples", "source"}``."""
    path = Path(path)
    name = path.name.lower()
    if name.endswith(SIGMF_SUFFIXES):
        stem = path.name[: -len(".sigmf-meta")] if name.endswith(".sigmf-meta") else path.name[: -len(".sigmf-data")]
        meta, data = path.with_name(stem + ".sigmf-meta"), path.with_name(stem + ".sigmf-data")
        header = _read_meta(meta)
        datatype = str(header.get("core:datatype", ""))
        channels = int(header.get("core:num_channels", 1) or 1)
        if channels != 1:
            raise UserError(f"{meta}: core:num_channels is {channels}; expected one channel of IQ samples")
        rate = header.get("core:sample_rate")
        rate = float(rate) if rate is not None else None
        where = str(meta)
    elif path.suffix.lower() in RAW_TYPES:
        data, datatype, rate, where = path, RAW_TYPES[path.suffix.lower()], None, str(path)
    else:
        raise UserError(f"{path}: not a capture; expected {', '.join(CAPTURE_SUFFIXES)}")
    dtype = _dtype(datatype, where)
    if not data.is_file():
        raise UserError(f"{data}: capture samples not found")
    step = 2 * dtype.itemsize
    size = data.stat().st_size  # a capture cut mid-sample (a recorder stopped while writing) loses that sample
    values = np.memmap(data, dtype=dtype, mode="r", shape=(size // step, 2)) if size >= step else np.zeros((0, 2), dtype)
    return values, {"datatype": datatype, "sample_rate": rate, "samples": size // step, "source": str(data)}


def capture_frames(path: str | Path, length: int, max_frames: int | None = None) -> tuple[np.ndarray, dict]:
    """Consecutive frames of ``length`` samples of a capture, float32 ``[N, 2, length]``, and its info
    (plus ``frames``). Unsigned integers are centred (``u8``: minus 127.5)."""
    values, info = open_capture(path)
    n = info["samples"] // length
    if max_frames is not None:
        n = min(n, max_frames)
    if n == 0:
        raise UserError(f"{info['source']}: holds {info['samples']} IQ samples; a frame needs {length}")
    block = np.asarray(values[: n * length], dtype=np.float32)
    if values.dtype.kind == "u":
        block -= (np.iinfo(values.dtype).max + 1) / 2 - 0.5
    frames = np.ascontiguousarray(block.reshape(n, length, 2).transpose(0, 2, 1))
    return frames, {**info, "frames": n}


__all__ = ["CAPTURE_SUFFIXES", "capture_frames", "open_capture"]
