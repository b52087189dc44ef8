"""NumPy files read safely: ``.npy`` and ``.npz`` checked before anything is allocated.

:func:`load_npy` and :func:`load_npz` read each array's header first and refuse, with one line
naming the file and the member, an object (pickled) array, a damaged or truncated file, and
arrays whose declared size is over the input limit (:mod:`sigplex.core.limits`). Nothing is
unpickled. :func:`check_container` is the core's check of any input before a task reads it:
declared sizes of NPY/NPZ/zip members, and the decompressed size of gzip files. A format's reader
module adds the check of its own header by suffix (:func:`register_header_check`; the NIfTI reader
does): it runs first, so a header declaring too much is refused before any stream is inflated.

>>> import io, numpy as np, tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "x.npz"
>>> np.savez(path, h=np.zeros((2, 3), np.float32))
>>> load_npz(path)["h"].shape
(2, 3)
"""
from __future__ import annotations

import os
import zipfile
import zlib
from pathlib import Path
from typing import BinaryIO, Callable

from .errors import UserError, first_line
from .limits import InputTooLarge, check_size, gzip_size

ZIP_SUFFIXES = (".npz", ".zip")
#: lower-case file suffix -> a check of the format's header (raises InputTooLarge when it declares too much)
HEADER_CHECKS: dict[str, Callable[[Path], object]] = {}


def register_header_check(suffixes: tuple[str, ...], check: Callable[[Path], object]) -> None:
    """Run ``check(path)`` on inputs whose name ends with one of ``suffixes`` before the core's own checks."""
    for suffix in suffixes:
        HEADER_CHECKS[suffix.lower()] = check


def _header(fh: BinaryIO, source: str):
    """(shape, dtype, fortran_order) of the NPY stream ``fh``, refusing object arrays."""
    import numpy as np
    from numpy.lib import format as npy

    try:
        version = npy.read_magic(fh)
        if version == (1, 0):
            shape, fortran, dtype = npy.read_array_header_1_0(fh, max_header_size=100_000)
        else:
            shape, fortran, dtype = npy.read_array_header_2_0(fh, max_header_size=100_000)
    except (ValueError, EOFError, OSError, SyntaxError, TypeError, zlib.error) as exc:
        raise UserError(f"{source}: not a readable NPY array ({_first(exc)})") from None
    if dtype.hasobject:
        raise UserError(f"{source}: holds Python objects (a pickled array); expected an array of numbers")
    if any(int(n) < 0 for n in shape):
        raise UserError(f"{source}: declares a negative dimension {shape}")
    return tuple(int(n) for n in shape), np.dtype(dtype), fortran


def _first(exc: BaseException) -> str:
    text = first_line(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _nbytes(shape, dtype) -> int:
    count = 1
    for n in shape:
        count *= n
    return count * dtype.itemsize


def _read(fh: BinaryIO, source: str):
    """The array of the NPY stream ``fh`` after its header checks out."""
    import numpy as np

    shape, dtype, fortran = _header(fh, source)
    nbytes = _nbytes(shape, dtype)
    check_size(nbytes, source, f"an array {shape} of {dtype}")
    data = bytearray()
    while len(data) < nbytes:
        try:
            chunk = fh.read(min(nbytes - len(data), 1 << 24))
        except (OSError, EOFError, zlib.error, zipfile.BadZipFile) as exc:
            raise UserError(f"{source}: damaged ({_first(exc)})") from None
        if not chunk:
            raise UserError(f"{source}: truncated: holds {len(data)} of the {nbytes} bytes its header declares")
        data += chunk
    array = np.frombuffer(bytes(data), dtype=dtype)
    return array.reshape(shape[::-1]).transpose() if fortran else array.reshape(shape)


def load_npy(path: str | Path):
    """The array in ``path``, checked as the module docstring says."""
    path = Path(path)
    with open(path, "rb") as fh:
        return _read(fh, str(path))


def _members(zf: zipfile.ZipFile, path: Path) -> dict[str, zipfile.ZipInfo]:
    return {info.filename[:-4] if info.filename.endswith(".npy") else info.filename: info
            for info in zf.infolist() if not info.is_dir()}


def _open_zip(path: Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise UserError(f"{path}: not a readable {path.suffix or 'zip'} file ({_first(exc)})") from None


def load_npz(path: str | Path, keys=None) -> dict:
    """The arrays of ``path`` (only ``keys`` when given; a missing key is left out) as a dict."""
    path = Path(path)
    with _open_zip(path) as zf:
        members = _members(zf, path)
        wanted = [k for k in members if keys is None or k in keys]
        _check_members(zf, path, wanted, members)
        arrays = {}
        for key in wanted:
            try:
                with zf.open(members[key]) as fh:
                    arrays[key] = _read(fh, f"{path}: member {key!r}")
            except (zipfile.BadZipFile, NotImplementedError, RuntimeError) as exc:
                raise UserError(f"{path}: member {key!r} cannot be read ({_first(exc)})") from None
        return arrays


def _check_members(zf: zipfile.ZipFile, path: Path, names, members, strict: bool = True) -> None:
    """Refuse members whose declared sizes (zip entries and NPY headers) sum past the limit. Not ``strict``:
    a member whose NPY header cannot be read counts with its zip entry's size (its reader will refuse it)."""
    total = 0
    for key in names:
        info = members[key]
        declared = info.file_size
        if info.filename.endswith(".npy"):
            try:
                with zf.open(info) as fh:
                    shape, dtype, _ = _header(fh, f"{path}: member {key!r}")
                declared = max(declared, _nbytes(shape, dtype))
            except (zipfile.BadZipFile, NotImplementedError, RuntimeError) as exc:
                if strict:
                    raise UserError(f"{path}: member {key!r} cannot be read ({_first(exc)})") from None
            except UserError:
                if strict:
                    raise
        total += declared
        check_size(total, path, "the members of the archive")


def check_container(path: str | Path) -> None:
    """The core's check of an input file before a task reads it: NPY headers, zip/NPZ members' declared
    sizes and gzip's decompressed size against the input limit (:class:`InputTooLarge`). A damaged
    container is left to the task's reader, which refuses it in its own words."""
    try:
        _check_container(Path(path))
    except InputTooLarge:
        raise
    except UserError:
        return


def _check_container(path: Path) -> None:
    name = path.name.lower()
    if not path.is_file():
        return
    for suffix, header_check in HEADER_CHECKS.items():
        if name.endswith(suffix):
            try:
                header_check(path)
            except InputTooLarge:
                raise
            except UserError:  # a damaged header is the reader's to refuse; the size checks below still run
                pass
    if name.endswith(".npy"):
        with open(path, "rb") as fh:
            shape, dtype, _ = _header(fh, str(path))
        check_size(_nbytes(shape, dtype), path, f"an array {shape} of {dtype}")
    elif name.endswith(ZIP_SUFFIXES):
        with _open_zip(path) as zf:
            members = _members(zf, path)
            _check_members(zf, path, list(members), members, strict=False)
    elif name.endswith(".gz"):
        gzip_size(path)


def check_input(path: Path) -> None:
    """:func:`check_container` on a file, or on each file of a folder (symbolic links are not followed)."""
    if path.is_dir():
        for root, _, files in os.walk(path):
            for name in files:
                member = Path(root) / name
                if not member.is_symlink():
                    check_container(member)
    else:
        if path.is_file() and path.stat().st_size == 0:
            raise UserError(f"{path}: is empty (0 bytes)")
        check_container(path)


def require_numeric(array, source, what: str, *, finite: bool = True):
    """``array`` as a NumPy array of numbers, or a one-line error naming ``source`` and ``what`` (e.g.
    ``"key 'ls'"``) for text, objects, or (with ``finite``) NaN and infinite values."""
    import numpy as np

    a = np.asarray(array)
    if a.dtype.kind not in "biufc":
        raise UserError(f"{source}: {a.dtype} values in {what}; expected numbers")
    if finite and a.dtype.kind in "fc" and not np.isfinite(a).all():
        raise UserError(f"{source}: NaN or infinite values in {what}; expected finite numbers")
    return a
