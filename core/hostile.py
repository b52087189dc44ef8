"""Hostile inputs: damaged, hostile and degenerate variants of a task's valid sample inputs.

:func:`generic_variants` makes what any file or folder can suffer (empty, truncated, random bytes,
a symlink loop), and by container what the core knows: NPY and NPZ/zip (missing, renamed,
reshaped, retyped, pickled, NaN/Inf, all-zero, one-sample members, members declaring or
expanding past the input limit), gzip (random content, a bomb) and CSV (no rows, one column,
10^5 columns, text in numbers, duplicate timestamps, NaN/Inf). Formats the core does not know
(NIfTI, WAV, DICOM, EEG) add theirs through ``Task.format_variants``, from the reader modules
of ``sigplex.datasets`` that own them. :func:`sigplex.core.testing.hostile_inputs` puts them
together for a task.
"""
from __future__ import annotations

import gzip
import io
import os
import random
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .limits import max_input_bytes


@dataclass(frozen=True)
class HostileInput:
    """One variant: its ``name`` (e.g. ``"npz:h:nan"``), the file or folder, and whether it is over
    the input limit by design (then it must be refused as too large: exit 2, HTTP 413). The valid
    sample itself comes along as ``valid`` (it must be predicted)."""

    name: str
    path: Path
    too_large: bool = False
    valid: bool = False


def array_variants(array) -> dict[str, object]:
    """Degenerate versions of a numeric array: NaN, Inf, all-zero, one sample along the last axis,
    one more and one fewer dimension, and integer and text dtypes."""
    import numpy as np

    a = np.asarray(array)
    out: dict[str, object] = {}
    if a.size and a.dtype.kind in "fc":
        nan, inf = a.copy(), a.copy()
        nan.reshape(-1)[a.size // 2] = np.nan
        inf.reshape(-1)[0] = np.inf
        out.update(nan=nan, inf=inf)
    out["zeros"] = np.zeros_like(a)
    if a.ndim:
        out["one-sample"] = np.ascontiguousarray(a[..., :1])
        out["rank-down"] = a.reshape(-1) if a.ndim > 1 else np.asarray(a.reshape(-1)[0] if a.size else 0, a.dtype)
    out["rank-up"] = a[None, None]
    out["int8"] = np.ones(a.shape, np.int8)
    out["text"] = np.full(a.shape, "x", dtype="<U1")
    return out


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _npy_bytes(array) -> bytes:
    import numpy as np

    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=True)
    return buf.getvalue()


def _declared_npy(shape: tuple, dtype: str = "<f4") -> bytes:
    """An NPY header declaring ``shape`` followed by a few bytes: the array is never there."""
    import numpy as np
    from numpy.lib import format as npy

    buf = io.BytesIO()
    npy.write_array_header_1_0(buf, {"descr": np.dtype(dtype).str, "fortran_order": False, "shape": shape})
    return buf.getvalue() + b"\0" * 64


def _over_limit_shape(itemsize: int = 4) -> tuple:
    return (4, max_input_bytes() // (2 * itemsize))  # twice the limit


def _bomb_member(name: str, nbytes: int) -> bytes:
    """A zip whose one NPY member (``name``) expands from a few KB to ``nbytes`` of zeros."""
    from numpy.lib import format as npy

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        with zf.open(name, "w", force_zip64=True) as fh:
            npy.write_array_header_1_0(fh, {"descr": "<f4", "fortran_order": False, "shape": (nbytes // 4,)})
            zero = bytes(1 << 20)
            for _ in range(nbytes // len(zero) + 1):
                fh.write(zero)
    return buf.getvalue()


def _file_basics(sample: Path, out: Path) -> list[HostileInput]:
    data = sample.read_bytes()
    name = sample.name
    found = [HostileInput("empty", _write(out / "empty" / name, b""))]
    for frac in (0.02, 0.25, 0.5, 0.9):
        cut = max(1, int(len(data) * frac)) if len(data) > 1 else 0
        found.append(HostileInput(f"truncated-{int(frac * 100)}%", _write(out / f"truncated{int(frac * 100)}" / name,
                                                                             data[:cut])))
    rng = random.Random(len(data))
    noise = bytes(rng.getrandbits(8) for _ in range(max(1024, min(len(data), 1 << 16))))
    found.append(HostileInput("random-bytes", _write(out / "random" / name, noise)))
    loop = out / "symlink-loop" / name
    loop.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(loop.name, loop)
    found.append(HostileInput("symlink-loop", loop))
    return found


def _npy_variants(sample: Path, out: Path) -> list[HostileInput]:
    import numpy as np

    from .arrays import load_npy

    array = load_npy(sample)
    found = [HostileInput(f"npy:{k}", _write(out / f"npy-{k}" / sample.name, _npy_bytes(v)))
             for k, v in array_variants(array).items()]
    found.append(HostileInput("npy:pickled-object", _write(out / "npy-object" / sample.name,
                                                           _npy_bytes(np.array([{"a": 1}, None], dtype=object)))))
    found.append(HostileInput("npy:declares-over-limit", _write(out / "npy-huge" / sample.name,
                                                                _declared_npy(_over_limit_shape())), too_large=True))
    return found


def _zip_with(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _npz_variants(sample: Path, out: Path) -> list[HostileInput]:
    import numpy as np

    with zipfile.ZipFile(sample) as zf:
        members = {info.filename: zf.read(info) for info in zf.infolist()}
    names = list(members)
    found = [HostileInput("zip:no-members", _write(out / "zip-none" / sample.name, _zip_with({})))]
    for i, key in enumerate(names):
        rest = {k: v for k, v in members.items() if k != key}
        found.append(HostileInput(f"zip:{key}:missing", _write(out / f"zip-missing{i}" / sample.name, _zip_with(rest))))
        renamed = {("renamed_" + k if k == key else k): v for k, v in members.items()}
        found.append(HostileInput(f"zip:{key}:renamed", _write(out / f"zip-renamed{i}" / sample.name,
                                                               _zip_with(renamed))))
    npy_keys = [k for k in names if k.endswith(".npy")]
    if npy_keys:
        from .arrays import _read

        arrays = {k: _read(io.BytesIO(members[k]), k) for k in npy_keys}
        main = max(npy_keys, key=lambda k: arrays[k].size)
        for key in dict.fromkeys([npy_keys[0], main]):  # the first member (the input, usually) and the largest
            tag = key[:-4]
            for k, v in array_variants(arrays[key]).items():
                found.append(HostileInput(f"npz:{tag}:{k}", _write(out / f"npz-{tag}-{k}" / sample.name,
                                                                   _zip_with({**members, key: _npy_bytes(v)}))))
        pickled = _npy_bytes(np.array([{"a": 1}, None], dtype=object))
        found.append(HostileInput(f"npz:{main[:-4]}:pickled-object", _write(
            out / "npz-object" / sample.name, _zip_with({**members, main: pickled}))))
        found.append(HostileInput(f"npz:{main[:-4]}:declares-over-limit", _write(
            out / "npz-huge" / sample.name, _zip_with({**members, main: _declared_npy(_over_limit_shape())})),
            too_large=True))
        bomb = _bomb_member(main, max_input_bytes() + (8 << 20))
        data = _merge_zip(bomb, {k: v for k, v in members.items() if k != main})
        found.append(HostileInput(f"npz:{main[:-4]}:bomb", _write(out / "npz-bomb" / sample.name, data),
                                  too_large=True))
    return found


def _merge_zip(base: bytes, extra: dict[str, bytes]) -> bytes:
    buf = io.BytesIO(base)
    with zipfile.ZipFile(buf, "a", zipfile.ZIP_DEFLATED) as zf:
        for name, data in extra.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _gzip_variants(sample: Path, out: Path) -> list[HostileInput]:
    rng = random.Random(7)
    noise = bytes(rng.getrandbits(8) for _ in range(4096))
    found = [HostileInput("gzip:random-content", _write(out / "gzip-random" / sample.name, gzip.compress(noise)))]
    bomb = out / "gzip-bomb" / sample.name
    bomb.parent.mkdir(parents=True, exist_ok=True)
    zero = bytes(1 << 20)
    with gzip.open(bomb, "wb", compresslevel=9) as fh:
        for _ in range(max_input_bytes() // len(zero) + 8):
            fh.write(zero)
    found.append(HostileInput("gzip:bomb", bomb, too_large=True))
    return found


def _csv_variants(sample: Path, out: Path) -> list[HostileInput]:
    lines = sample.read_text().splitlines()
    header, rows = lines[0], lines[1:]
    sep = ";" if header.count(";") > header.count(",") else "\t" if "\t" in header else ","
    first = [line.split(sep)[0] for line in lines]
    wide = sep.join(f"c{i}" for i in range(100_000)) + "\n" + sep.join("1" for _ in range(100_000)) + "\n"

    def cells(row: str, value: str) -> str:
        parts = row.split(sep)
        return sep.join(parts[:1] + [value] * (len(parts) - 1)) if len(parts) > 1 else value

    mid = len(rows) // 2
    texts = {
        "csv:no-rows": header + "\n",
        "csv:one-row": "\n".join([header, rows[0]]) + "\n" if rows else header + "\n",
        "csv:one-column": "\n".join(first) + "\n",
        "csv:100000-columns": wide,
        "csv:non-numeric": "\n".join([header, *rows[:mid], cells(rows[mid], "abc"), *rows[mid + 1:]]) + "\n",
        "csv:nan": "\n".join([header, *rows[:mid], cells(rows[mid], "nan"), *rows[mid + 1:]]) + "\n",
        "csv:inf": "\n".join([header, *rows[:mid], cells(rows[mid], "inf"), *rows[mid + 1:]]) + "\n",
        "csv:duplicate-timestamps": "\n".join([header, *rows[:mid], rows[mid - 1] if mid else rows[0],
                                               *rows[mid + 1:]]) + "\n",
        "csv:all-zero": "\n".join([header, *[cells(r, "0") for r in rows]]) + "\n",
        "csv:binary": header + "\n" + "\x00\xff\xfe" * 100 + "\n",
    }
    return [HostileInput(k, _write(out / k.replace(":", "-") / sample.name, v.encode("utf-8", "surrogateescape")))
            for k, v in texts.items()]


def generic_variants(sample: Path, out: Path, extra: Callable | None = None) -> list[HostileInput]:
    """The core's variants of one valid file or folder ``sample``, written below ``out``; ``extra(file, out)``
    adds a format's own variants of a file (and of the files inside a folder)."""
    sample, out = Path(sample), Path(out)
    if sample.is_dir():
        return _folder_variants(sample, out, extra)
    name = sample.name.lower()
    found = _file_basics(sample, out) + (list(extra(sample, out / "format")) if extra else [])
    if name.endswith(".npy"):
        found += _npy_variants(sample, out)
    elif name.endswith((".npz", ".zip")):
        found += _npz_variants(sample, out)
    elif name.endswith(".gz"):
        found += _gzip_variants(sample, out)
    if name.endswith((".csv", ".tsv", ".txt", ".csv.gz")) and not name.endswith(".gz"):
        found += _csv_variants(sample, out)
    return found


def _folder_variants(sample: Path, out: Path, extra: Callable | None) -> list[HostileInput]:
    """A folder input (e.g. one case): empty, one file missing, one file replaced by each of its file
    variants, and a symlink loop inside."""
    files = sorted(p for p in sample.rglob("*") if p.is_file())
    found = []
    empty = out / "folder-empty" / sample.name
    empty.mkdir(parents=True)
    found.append(HostileInput("folder:empty", empty))
    if files:
        missing = out / "folder-missing" / sample.name
        shutil.copytree(sample, missing)
        (missing / files[0].relative_to(sample)).unlink()
        found.append(HostileInput(f"folder:missing-{files[0].name}", missing))
        loop = out / "folder-loop" / sample.name
        shutil.copytree(sample, loop)
        os.symlink(".", loop / "loop")
        found.append(HostileInput("folder:symlink-loop", loop))
        target = files[0]
        for variant in generic_variants(target, out / "member-variants", extra):
            case = out / f"member-{variant.name.replace(':', '-').replace('%', '')}" / sample.name
            shutil.copytree(sample, case)
            dest = case / target.relative_to(sample)
            dest.unlink()
            if variant.path.is_symlink():
                os.symlink(dest.name, dest)
            else:
                shutil.copyfile(variant.path, dest)
            found.append(HostileInput(f"folder:{target.name}:{variant.name}", case, variant.too_large))
    return found
