"""The input memory limit: how many bytes one input may hold in memory at once.

The limit is on memory, not on file size: a memory-mapped capture or long audio read in chunks
stays legal whatever its size. Readers check what a file *declares* (an array's shape, a
header's dimensions) before they allocate, and decompress in a stream against the limit; a file
over it is refused with :class:`InputTooLarge` (exit 2 on the CLI, HTTP 413 from ``serve``).

One setting holds the limit: ``--max-input-mb`` of ``predict``, ``evaluate`` and ``serve``, or
:func:`input_limit` from Python. Readers (``sigplex.datasets`` and plugins) read it with
:func:`max_input_bytes` or call :func:`check_size`.

>>> with input_limit(1):
...     check_size(512 * 1024, "x.npy", "array 'h'")
>>> with input_limit(1):
...     check_size(2 * 1024 * 1024, "x.npy", "array 'h'")
Traceback (most recent call last):
...
sigplex.core.limits.InputTooLarge: x.npy: array 'h' would take 2.0 MB of memory; the input limit is 1 MB (--max-input-mb)
"""
from __future__ import annotations

import contextlib
import contextvars
import gzip
import zlib
from pathlib import Path
from typing import BinaryIO, Iterator

from .errors import UserError

DEFAULT_MAX_INPUT_MB = 2048
_LIMIT_MB: contextvars.ContextVar[float] = contextvars.ContextVar("max_input_mb", default=DEFAULT_MAX_INPUT_MB)
_CHUNK = 1 << 20


class InputTooLarge(UserError):
    """An input that would hold more than the limit in memory (HTTP 413 from ``serve``)."""

    http_status = 413


def max_input_bytes() -> int:
    """The current limit in bytes (``--max-input-mb``; default 2048 MB)."""
    return int(_LIMIT_MB.get() * 1024 * 1024)


def set_max_input_mb(mb: float) -> None:
    """Set the limit for this process (the CLI's ``--max-input-mb``)."""
    if not mb > 0:
        raise UserError(f"--max-input-mb {mb}: expected a positive number of megabytes")
    _LIMIT_MB.set(float(mb))


@contextlib.contextmanager
def input_limit(mb: float) -> Iterator[None]:
    """Hold the limit at ``mb`` megabytes inside the ``with`` block."""
    if not mb > 0:
        raise UserError(f"--max-input-mb {mb}: expected a positive number of megabytes")
    token = _LIMIT_MB.set(float(mb))
    try:
        yield
    finally:
        _LIMIT_MB.reset(token)


def _mb(nbytes: float) -> str:
    return f"{nbytes / (1024 * 1024):.1f} MB"


def check_size(nbytes: int, source, what: str) -> None:
    """Refuse ``what`` of ``source`` when it would hold ``nbytes`` in memory, over the limit."""
    if nbytes > max_input_bytes():
        raise InputTooLarge(f"{source}: {what} would take {_mb(nbytes)} of memory; the input limit is "
                            f"{_LIMIT_MB.get():g} MB (--max-input-mb)")


def read_limited(stream: BinaryIO, source, what: str, limit: int | None = None) -> bytes:
    """All of ``stream`` (a decompressing reader, say), refused as soon as it passes the limit."""
    limit = max_input_bytes() if limit is None else limit
    chunks, size = [], 0
    while True:
        chunk = stream.read(_CHUNK)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > limit:
            raise InputTooLarge(f"{source}: {what} expands to more than the input limit of "
                                f"{limit / (1024 * 1024):g} MB (--max-input-mb)")
        chunks.append(chunk)


def gzip_size(path: str | Path) -> int:
    """The decompressed size of a gzip file, counted in a stream and refused past the limit.

    The trailer's size field is not trusted: in a cut file those bytes are compressed data, and
    past 4 GiB the field wraps around.
    """
    limit = max_input_bytes()
    size = 0
    try:
        with gzip.open(path, "rb") as fh:
            while True:
                chunk = fh.read(_CHUNK)
                if not chunk:
                    return size
                size += len(chunk)
                if size > limit:
                    raise InputTooLarge(f"{path}: decompresses to more than the input limit of "
                                        f"{_LIMIT_MB.get():g} MB (--max-input-mb)")
    except (OSError, EOFError, zlib.error) as exc:
        raise UserError(f"{path}: not a readable gzip file ({exc})") from None
