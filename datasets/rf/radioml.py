"""Readers of the public RadioML files: 2016.10A/B pickles (restricted unpickler) and 2018.01A HDF5.

* RadioML 2016.10A (11 classes) and 2016.10B (10 classes) are Python 2 pickles of a dict
  ``{(modulation, snr): float32 array [n, 2, 128]}``. A pickle can run arbitrary code, so
  :func:`safe_load` unpickles through :class:`RestrictedUnpickler`, which resolves only numpy's
  array and dtype reconstructors; dicts, tuples, lists, strings and numbers need no lookup.
  Anything else (``os.system``, a custom class, ...) is refused with a one-line :class:`UserError`,
  and object arrays are refused after loading.
* RadioML 2018.01A is HDF5 with ``X`` ``[N, 1024, 2]`` frames, ``Y`` ``[N, 24]`` one-hot labels and
  ``Z`` ``[N, 1]`` SNR in dB (read with h5py, imported lazily). Class names come from a ``classes``
  dataset in the file if present, else the 2018.01A list for 24 classes (the corrected order the
  community uses; DeepSig's ``classes.txt`` is known to be out of order), the 2016.10A list for 11.

Both return :class:`IQFrames` with frames as ``[N, 2, L]`` (I, Q) float32.
"""
from __future__ import annotations

import codecs
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sigplex.core.errors import UserError
from sigplex.core.limits import check_size

from .generator import RADIOML_CLASSES

RADIOML2018_CLASSES = ("OOK", "4ASK", "8ASK", "BPSK", "QPSK", "8PSK", "16PSK", "32PSK", "16APSK", "32APSK", "64APSK",
                       "128APSK", "16QAM", "32QAM", "64QAM", "128QAM", "256QAM", "AM-SSB-WC", "AM-SSB-SC", "AM-DSB-WC",
                       "AM-DSB-SC", "FM", "GMSK", "OQPSK")
PICKLE_SUFFIXES = (".pkl", ".pickle", ".dat")
HDF5_SUFFIXES = (".h5", ".hdf5")


@dataclass
class IQFrames:
    """Labelled IQ frames: ``x`` float32 ``[N, 2, L]``, ``y`` int64 ``[N]`` (index into ``classes``), ``snr`` float32 dB."""

    x: np.ndarray
    y: np.ndarray | None
    snr: np.ndarray | None
    classes: tuple[str, ...]
    source: str = ""

    def __len__(self) -> int:
        return len(self.x)


# --- RadioML 2016 pickles ------------------------------------------------------------
def _latin1_encode(text, encoding="utf-8", errors="strict"):
    """``_codecs.encode`` as protocol-2 pickles of bytes use it, limited to the latin-1 codec."""
    if str(encoding).lower().replace("_", "-") not in ("latin1", "latin-1", "iso-8859-1"):
        raise Refused(f"refused codec {encoding!r}")
    return codecs.encode(text, "latin-1", errors)


def _allowed() -> dict[tuple[str, str], object]:
    try:  # numpy >= 2
        from numpy._core import multiarray, numeric
    except ImportError:  # numpy 1.x
        from numpy.core import multiarray, numeric
    table = {}
    for package in ("numpy.core", "numpy._core"):  # pickles name either, whichever numpy wrote them
        table[(f"{package}.multiarray", "_reconstruct")] = multiarray._reconstruct
        table[(f"{package}.multiarray", "scalar")] = multiarray.scalar
        table[(f"{package}.numeric", "_frombuffer")] = numeric._frombuffer
    table[("numpy", "ndarray")] = np.ndarray
    table[("numpy", "dtype")] = np.dtype
    table[("_codecs", "encode")] = _latin1_encode
    return table


class Refused(pickle.UnpicklingError):
    """A pickle asked for something outside the allowed numpy reconstructors."""


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves only numpy's ndarray/dtype reconstructors (plain containers need none)."""

    def find_class(self, module, name):
        obj = _allowed().get((module, name))
        if obj is None:
            raise Refused(f"refused to load {module}.{name}")
        return obj


def _check_plain(obj, path, depth=0):
    """Refuse object arrays and anything but dicts, tuples, lists, strings, numbers and numeric arrays."""
    if depth > 20:
        raise UserError(f"{path}: nested too deeply for a RadioML pickle")
    if isinstance(obj, np.ndarray):
        if obj.dtype.hasobject:
            raise UserError(f"{path}: holds an object array; only numeric arrays are accepted")
    elif isinstance(obj, dict):
        for k, v in obj.items():
            _check_plain(k, path, depth + 1)
            _check_plain(v, path, depth + 1)
    elif isinstance(obj, (tuple, list)):
        for v in obj:
            _check_plain(v, path, depth + 1)
    elif not isinstance(obj, (str, bytes, int, float, complex, bool, np.generic, type(None))):
        raise UserError(f"{path}: holds a {type(obj).__name__}; only numpy arrays and plain containers are accepted")


def safe_load(path: str | Path):
    """Unpickle ``path`` allowing only numpy arrays/dtypes, dicts, tuples, lists, strings and numbers."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            obj = RestrictedUnpickler(fh, encoding="latin1").load()
    except Refused as exc:
        raise UserError(f"{path}: not a safe RadioML pickle ({exc}); only numpy arrays, dtypes and plain "
                        "containers are allowed") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError,
            OSError) as exc:
        raise UserError(f"{path}: not a readable pickle ({type(exc).__name__}: {exc})") from None
    _check_plain(obj, path)
    return obj


def read_radioml2016(path: str | Path, classes: tuple[str, ...] | None = None) -> IQFrames:
    """RadioML 2016.10A/B: a dict ``{(modulation, snr): [n, 2, L]}`` -> :class:`IQFrames` (classes sorted by name)."""
    path = Path(path)
    data = safe_load(path)
    expected = "a dict {(modulation, snr_db): float array [n, 2, L]} (RadioML 2016.10A/B)"
    if not isinstance(data, dict) or not data:
        what = "an empty dict" if isinstance(data, dict) else type(data).__name__
        raise UserError(f"{path}: holds {what}; expected {expected}")
    for key, value in data.items():
        if not (isinstance(key, tuple) and len(key) == 2 and isinstance(key[0], (str, bytes))
                and isinstance(key[1], (int, float, np.integer, np.floating))):
            raise UserError(f"{path}: key {key!r} is not (modulation, snr_db); expected {expected}")
        if not isinstance(value, np.ndarray) or value.ndim != 3 or value.shape[1] != 2:
            shape = list(value.shape) if isinstance(value, np.ndarray) else type(value).__name__
            raise UserError(f"{path}: key {key!r} has shape {shape}; expected [n, 2, L] IQ frames")
        if not (np.issubdtype(value.dtype, np.floating) or np.issubdtype(value.dtype, np.integer)):
            raise UserError(f"{path}: key {key!r} has dtype {value.dtype}; expected real numbers")
    lengths = {v.shape[2] for v in data.values()}
    if len(lengths) > 1:
        raise UserError(f"{path}: frames of different lengths {sorted(lengths)}; expected one length L")
    names = sorted({_text(k[0]) for k in data})
    classes = tuple(classes) if classes else tuple(names)
    unknown = [n for n in names if n not in classes]
    if unknown:
        raise UserError(f"{path}: modulations {unknown} are not among the classes {list(classes)}")
    keys = sorted(data, key=lambda k: (classes.index(_text(k[0])), float(k[1])))
    x = np.concatenate([np.asarray(data[k], np.float32) for k in keys])
    y = np.concatenate([np.full(len(data[k]), classes.index(_text(k[0])), np.int64) for k in keys])
    snr = np.concatenate([np.full(len(data[k]), float(k[1]), np.float32) for k in keys])
    return IQFrames(x, y, snr, classes, str(path))


def _text(value) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else str(value)


# --- RadioML 2018 HDF5 -----------------------------------------------------------------
def _h5py():
    try:
        import h5py
    except ImportError:
        raise UserError("reading HDF5 needs h5py: pip install 'sigplex[rf]'") from None
    return h5py


def as_channels_first(x: np.ndarray, what: str) -> np.ndarray:
    """``[N, L, 2]`` (RadioML 2018) or ``[N, 2, L]`` -> float32 ``[N, 2, L]``; a one-line error otherwise."""
    x = np.asarray(x)
    if x.ndim == 3 and x.shape[1] == 2:
        out = x
    elif x.ndim == 3 and x.shape[2] == 2:
        out = x.transpose(0, 2, 1)
    else:
        raise UserError(f"{what} has shape {list(x.shape)}; expected IQ frames [N, 2, L] or [N, L, 2]")
    if not (np.issubdtype(out.dtype, np.floating) or np.issubdtype(out.dtype, np.integer)):
        raise UserError(f"{what} has dtype {out.dtype}; expected real numbers")
    return np.ascontiguousarray(out, dtype=np.float32)


def read_radioml2018(path: str | Path, labels: bool = True, max_frames: int | None = None,
                     classes: tuple[str, ...] | None = None) -> IQFrames:
    """RadioML 2018.01A HDF5: ``X`` [N, L, 2], ``Y`` [N, K] one-hot (or [N] indices), ``Z`` [N, 1] SNR dB.

    ``labels=False`` reads only ``X``. ``max_frames`` reads that many frames spread evenly over the
    file (the 2018 file holds 2.5 million frames, 20 GB as float32).
    """
    path = Path(path)
    h5py = _h5py()
    try:
        fh = h5py.File(path, "r")
    except OSError as exc:
        raise UserError(f"{path}: not a readable HDF5 file ({exc})") from None
    with fh:
        needed = ("X", "Y", "Z") if labels else ("X",)
        missing = [k for k in needed if k not in fh]
        if missing:
            raise UserError(f"{path}: key {missing[0]!r} is missing (keys: {sorted(fh.keys())}); expected X [N, L, 2] "
                            "IQ frames" + (", Y [N, classes] one-hot, Z [N, 1] SNR dB" if labels else ""))
        for key in needed:
            if not isinstance(fh[key], h5py.Dataset) or fh[key].ndim == 0 or fh[key].dtype.kind not in "biuf":
                raise UserError(f"{path}: key {key!r} is not an array of numbers")
        n = fh["X"].shape[0]
        index = slice(None) if not max_frames or max_frames >= n else np.unique(
            np.linspace(0, n - 1, max_frames).astype(np.int64))
        count = n if isinstance(index, slice) else len(index)
        per_frame = int(np.prod(fh["X"].shape[1:], dtype=np.int64))
        check_size(count * per_frame * (fh["X"].dtype.itemsize + 4), path, f"key 'X' {list(fh['X'].shape)}")
        try:
            x = as_channels_first(fh["X"][index], f"{path}: key 'X'")
            if not labels:
                return IQFrames(x, None, None, tuple(classes or ()), str(path))
            y, z = np.asarray(fh["Y"][index]), np.asarray(fh["Z"][index])
            names = [_text(c) for c in fh["classes"][()]] if "classes" in fh else None
        except (OSError, ValueError, TypeError, KeyError) as exc:
            raise UserError(f"{path}: damaged HDF5 data ({type(exc).__name__}: {exc})") from None
    if y.ndim == 2 and y.shape[0] == len(x):
        k = y.shape[1]
        y = y.argmax(1).astype(np.int64)
    elif y.ndim == 1 and y.shape[0] == len(x) and np.issubdtype(y.dtype, np.integer):
        k = int(y.max()) + 1 if len(y) else 0
        y = y.astype(np.int64)
    else:
        raise UserError(f"{path}: key 'Y' has shape {list(y.shape)}; expected [{len(x)}, classes] one-hot or "
                        f"[{len(x)}] class indices")
    if z.size != len(x):
        raise UserError(f"{path}: key 'Z' has shape {list(z.shape)}; expected [{len(x)}, 1] SNR in dB")
    names = tuple(classes or names or (RADIOML2018_CLASSES if k == 24 else RADIOML_CLASSES if k == 11
                                       else tuple(f"class{i}" for i in range(k))))
    if len(names) < k:
        raise UserError(f"{path}: {k} classes in 'Y' but {len(names)} class names")
    return IQFrames(x, y, z.reshape(-1).astype(np.float32), names, str(path))


def hostile_variants(sample: Path, folder: Path) -> list:
    """HDF5 variants of a valid ``X``-only file for the hostile-input checks (:mod:`sigplex.core.hostile`):
    ``X`` declaring far more than the input limit (compressed, never written), ``X`` as a group, as text,
    holding NaN, and with no frames."""
    from sigplex.core.hostile import HostileInput
    from sigplex.core.limits import max_input_bytes

    h5py = _h5py()
    with h5py.File(sample, "r") as fh:
        x = fh["X"][()]
    frames = max_input_bytes() // (x.shape[1] * 2 * 4) * 2  # twice the limit as float32
    found = []
    for name in ("declares-over-limit", "group", "text", "nan", "no-frames"):
        path = Path(folder) / f"h5-{name}" / sample.name
        path.parent.mkdir(parents=True, exist_ok=True)
        with h5py.File(path, "w") as fh:
            if name == "declares-over-limit":
                fh.create_dataset("X", shape=(frames, *x.shape[1:]), dtype="f4", chunks=(1, *x.shape[1:]),
                                  compression="gzip")
            elif name == "group":
                fh.create_group("X")
            elif name == "text":
                fh["X"] = np.full(x.shape, "x", dtype="S1")
            else:
                fh["X"] = np.full_like(x, np.nan) if name == "nan" else x[:0]
        found.append(HostileInput(f"h5:{name}", path, too_large=name == "declares-over-limit"))
    return found


def read_frames(path: str | Path, max_frames: int | None = None, classes: tuple[str, ...] | None = None) -> IQFrames:
    """A labelled RadioML file by suffix: ``.pkl``/``.pickle``/``.dat`` (2016) or ``.h5``/``.hdf5`` (2018)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix in PICKLE_SUFFIXES:
        frames = read_radioml2016(path, classes)
        if max_frames and max_frames < len(frames):
            keep = np.unique(np.linspace(0, len(frames) - 1, max_frames).astype(np.int64))
            frames = IQFrames(frames.x[keep], frames.y[keep], frames.snr[keep], frames.classes, frames.source)
        return frames
    if suffix in HDF5_SUFFIXES:
        return read_radioml2018(path, max_frames=max_frames, classes=classes)
    raise UserError(f"{path}: expected a RadioML file ({', '.join(PICKLE_SUFFIXES + HDF5_SUFFIXES)})")


__all__ = ["HDF5_SUFFIXES", "IQFrames", "hostile_variants", "PICKLE_SUFFIXES", "RADIOML2018_CLASSES", "Refused",
           "RestrictedUnpickler", "as_channels_first", "read_frames", "read_radioml2016", "read_radioml2018", "safe_load"]
