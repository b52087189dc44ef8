"""User-facing errors: one clear line naming the file, the field and what was expected.

Raise :class:`UserError` for anything the user can fix (bad config, missing file, wrong
shape). The CLI prints its message on one line and exits with code 2; any other exception
is an internal error (exit 1). ``--verbose`` shows the traceback for both. :class:`PartialOutput`
(exit 3) is a task's way to say that some of an input's outputs were written and others not.

>>> from sigplex.core.errors import UserError
>>> str(UserError("cfg.yaml: optim.lr: expected a positive number, got -1"))
'cfg.yaml: optim.lr: expected a positive number, got -1'
"""
from __future__ import annotations


class UserError(Exception):
    """An error the user can fix; the message is shown as-is, without a traceback."""

    exit_code = 2


class PartialOutput(UserError):
    """A prediction's outputs were written in part: ``written`` (paths) are complete, the rest failed for
    ``reason``. A task's ``write_prediction`` raises it after writing what it could (e.g. the NIfTI when
    the DICOM SEG cannot be made); batch prediction records the input as ``partial`` with sidecars for
    ``written``, exits 3, and a later run of the same command writes the missing outputs.
    """

    exit_code = 3

    def __init__(self, reason: str, written=()):
        super().__init__(reason)
        self.reason = reason
        self.written = list(written)


class MissingDependencyError(UserError, ImportError):
    """An optional dependency is missing; the message says which extra installs it."""


def require(module: str, extra: str, purpose: str = ""):
    """Import ``module`` or raise a one-line error naming the pip extra that provides it.

    >>> require("math", "base").sqrt(4.0)
    2.0
    """
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:  # pragma: no cover - exercised with a fake module in tests
        what = f" for {purpose}" if purpose else ""
        raise MissingDependencyError(
            f"{module} is needed{what}: pip install 'sigplex[{extra}]' ({exc})"
        ) from exc


def one_line(text: str) -> str:
    """``text`` on one printable line: line breaks and other control characters (from a damaged file's
    bytes, say) are shown escaped.

    >>> one_line("bad column 'a\\nb'")
    "bad column 'a\\\\nb'"
    """
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in str(text))


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message, on one printable line (empty when it has none).

    >>> first_line(ValueError("bad value\\nmore detail"))
    'bad value'
    """
    return one_line((str(exc).strip().splitlines() or [""])[0])


NOTICES = {"stderr": False}  # the CLI sets this: notices become one plain "warning: ..." line on stderr


def notify(message: str, category: type[Warning] = UserWarning) -> None:
    """Tell the user something that is not an error, once per message.

    Under the CLI it prints ``warning: MESSAGE`` on stderr whatever the warning filters are (no
    source line); from Python it is a normal :mod:`warnings` warning of ``category``.
    """
    import sys
    import warnings

    if message in _SEEN:
        return
    _SEEN.add(message)
    if NOTICES["stderr"]:
        print(f"warning: {message}", file=sys.stderr, flush=True)
    else:
        warnings.warn(message, category, stacklevel=3)


_SEEN: set[str] = set()
