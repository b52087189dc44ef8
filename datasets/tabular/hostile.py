"""Hostile variants of a time-series CSV particular to covariates, for the core's hostile-input harness.

Made from one valid input: the last column dropped (a covariate, when the file has any: the run
must name it), the last row dropped (future covariates one step shorter than the horizon) and
the last column emptied in one row of the history (a missing covariate value that ``data.fill``
may not cover). Each must be answered or refused in one line naming the column.
"""
from __future__ import annotations

from pathlib import Path

from sigplex.core.hostile import HostileInput


def covariate_variants(sample: Path, folder: Path) -> list[HostileInput]:
    """The variants of ``sample`` (a CSV) written below ``folder``."""
    lines = Path(sample).read_text().splitlines()
    header, rows = lines[0], lines[1:]
    sep = ";" if header.count(";") > header.count(",") else ","
    mid = len(rows) // 2

    def drop_last(line: str) -> str:
        return sep.join(line.split(sep)[:-1])

    def empty_last(line: str) -> str:
        return sep.join(line.split(sep)[:-1] + [""])

    texts = {"ts:drop-last-column": [drop_last(line) for line in lines],
             "ts:drop-last-row": lines[:-1],
             "ts:empty-last-cell": [header, *rows[:mid], empty_last(rows[mid]), *rows[mid + 1:]]}
    found = []
    for name, text in texts.items():
        path = Path(folder) / name.replace(":", "-") / Path(sample).name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(text) + "\n")
        found.append(HostileInput(name, path))
    return found
