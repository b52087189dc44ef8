"""Prediction outputs: the suffix check, the files a prediction writes, and writing them.

``platform predict``, batch prediction and ``platform serve`` all go through these, so an output
is checked and written the same way whichever path made it.
"""
from __future__ import annotations

from pathlib import Path

from .compat import V1TaskAdapter
from .errors import UserError
from .fileio import atomic_write_text
from .task import Prepared

#: the table batch prediction writes beside the outputs of a task with ``combined_table``
COMBINED_TABLE = "all_predictions.csv"


def has_output_suffix(task, output: Path) -> bool:
    """Whether ``output`` ends in one of the task's ``output_suffixes`` (any name when it declares none)."""
    suffixes = tuple(task.output_suffixes)
    return not suffixes or Path(output).name.lower().endswith(suffixes)


def check_suffix(task, output: Path, hint: str = "") -> None:
    """``output`` must end in one of the task's ``output_suffixes``: a one-line error otherwise (``hint`` appended)."""
    if not has_output_suffix(task, output):
        raise UserError(f"--output {output}: expected a file name ending in {' or '.join(task.output_suffixes)}{hint}")


def output_files(task, output: Path, prepared: Prepared, source=None) -> list[Path]:
    """``task.output_files`` as paths (``source``: the input path, when known)."""
    return [Path(f) for f in task.output_files(output, prepared, source=source)]


def check_outputs(task, output: Path, prepared: Prepared, *, overwrite: bool, source=None) -> list[Path]:
    """The files a prediction will write to ``output``, after checking the suffix and overwriting."""
    check_suffix(task, output)
    files = output_files(task, output, prepared, source if isinstance(source, (str, Path)) else None)
    if not overwrite:
        for f in files:
            if f.exists():
                raise UserError(f"--output {f}: already exists; choose another path or pass --overwrite")
    return files


def write_outputs(task, result, output: Path, prepared: Prepared, files: list[Path], source=None) -> list[Path]:
    """Call ``task.write_prediction`` and normalise what it returns to a list of paths."""
    if isinstance(task, V1TaskAdapter):
        written = task.write_prediction(result, output, prepared, source=source)
    else:
        written = task.write_prediction(result, output, prepared)
    if written is None:
        written = [f for f in files if f.exists()]
    elif isinstance(written, (str, Path)):
        written = [written]
    written = [Path(p) for p in written]
    for path in written:
        found = nonfinite_values(path)
        if found is not None:  # never a NaN in an output: the files go, the input is refused
            for p in written:
                p.unlink(missing_ok=True)
            raise UserError(f"{source or output}: the prediction holds {found} ({path.name}); expected finite "
                            "input values")
    return written


def nonfinite_values(path: Path) -> str | None:
    """What non-finite numbers an output file holds (``"NaN or infinite values"``, ``"'nan'"``), or None.
    NPY/NPZ arrays, CSV cells, JSON numbers and float WAV samples are read; other formats pass as they are."""
    import csv
    import json
    import math

    import numpy as np

    from .arrays import load_npy, load_npz

    lower = path.name.lower()
    if lower.endswith(".csv"):
        with open(path, newline="") as fh:
            for row in csv.reader(fh):
                for cell in row:
                    try:
                        if not math.isfinite(float(cell)):
                            return repr(cell)
                    except ValueError:
                        continue
        return None
    if lower.endswith(".json"):
        tokens: list[str] = []
        json.loads(path.read_text(), parse_constant=tokens.append)
        return tokens[0] if tokens else None
    if lower.endswith(".npy"):
        arrays = [load_npy(path)]
    elif lower.endswith(".npz"):
        arrays = list(load_npz(path).values())
    elif lower.endswith(".wav"):
        arrays = [_wav_floats(path)]
    else:
        return None
    bad = any(a.dtype.kind in "fc" and not np.isfinite(a).all() for a in arrays)
    return "NaN or infinite values" if bad else None


def _wav_floats(path: Path):
    """The samples of a float WAV (format 3) as an array; PCM WAVs cannot hold NaN (an empty array)."""
    import struct

    import numpy as np

    with open(path, "rb") as fh:
        data = fh.read()
    pos, fmt, bits = 12, None, 0
    while pos + 8 <= len(data):
        tag, size = data[pos:pos + 4], struct.unpack("<I", data[pos + 4:pos + 8])[0]
        body = data[pos + 8:pos + 8 + size]
        if tag == b"fmt ":
            fmt, bits = struct.unpack("<H", body[:2])[0], struct.unpack("<H", body[14:16])[0]
            if fmt == 0xFFFE and len(body) >= 26:
                fmt = struct.unpack("<H", body[24:26])[0]
        elif tag == b"data" and fmt == 3 and bits in (32, 64):
            width = bits // 8
            return np.frombuffer(body[: len(body) // width * width], "<f4" if bits == 32 else "<f8")
        pos += 8 + size + (size & 1)
    return np.zeros(0, np.float32)


def class_probability_csv(probabilities, classes, columns=None, *, predicted=None, confidence: bool = False,
                          digits: int = 6) -> str:
    """A classification table, one row per item: the ``columns`` given (name -> values, already text or
    numbers), ``prob_<class>`` for each class, ``predicted`` (default: the most probable class) and, with
    ``confidence``, the probability of the predicted class.

    >>> print(class_probability_csv([[0.9, 0.1]], ["slow", "fast"], {"window": [0]}), end="")
    window,prob_slow,prob_fast,predicted
    0,0.900000,0.100000,slow
    """
    import csv
    import io

    import numpy as np

    probs = np.asarray(probabilities, dtype=np.float64).reshape(-1, len(classes))
    columns = dict(columns or {})
    best = probs.argmax(1)
    labels = list(predicted) if predicted is not None else [classes[k] for k in best]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(list(columns) + [f"prob_{c}" for c in classes] + ["predicted"] + ["confidence"] * confidence)
    for i, p in enumerate(probs):
        chosen = [f"{p[best[i]]:.{digits}f}"] if confidence else []
        writer.writerow([values[i] for values in columns.values()] + [f"{v:.{digits}f}" for v in p] + [labels[i]]
                        + chosen)
    return buf.getvalue()


def write_combined_table(out_dir: Path, records: list[dict]) -> Path | None:
    """Every row of the CSV outputs in ``records`` (batch results, ok or skipped) in one table,
    ``input`` first; columns in order of first appearance. Written atomically; None when there is none."""
    import csv
    import io

    rows: list[dict] = []
    names: dict[str, None] = {"input": None}
    for record in records:
        if record.get("status") not in ("ok", "skipped"):
            continue
        for output in record.get("outputs") or []:
            if not str(output).lower().endswith(".csv"):
                continue
            with open(output, newline="") as fh:
                for row in csv.DictReader(fh):
                    names.update(dict.fromkeys(row))
                    rows.append({"input": record["input"], **row})
    if not rows:
        return None
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(names), restval="", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    path = Path(out_dir) / COMBINED_TABLE
    atomic_write_text(path, buf.getvalue())
    return path
