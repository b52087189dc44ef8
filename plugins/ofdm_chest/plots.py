"""The run's figures: the NMSE table per condition bin (CSV) and NMSE against SNR for every estimator (PNG)."""
from __future__ import annotations

import csv
from pathlib import Path

from sigplex.core.figures import figure
from sigplex.core.fileio import atomic_path

LABELS = {"model": "model", "ls": "LS + linear", "lmmse": "LMMSE (fixed cov.)", "genie": "genie LMMSE"}


def write_table(rows: list[list], names: list[str], path: Path) -> Path:
    """``axis, lo, hi, n, nmse_db_<estimator>...`` as CSV, atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["axis", "lo", "hi", "n", *[f"nmse_db_{n}" for n in names]])
        writer.writerows(rows)
    return path


def nmse_plot(rows: list[list], names: list[str], path: Path) -> list[Path]:
    """NMSE (dB) against SNR for every estimator; ``[path]``, or ``[]`` without matplotlib."""
    snr = [r for r in rows if r[0] == "snr_db"]
    written: list[Path] = []
    with figure(path, figsize=(6, 4), dpi=90, written=written) as fig:
        if fig is not None:
            ax = fig.add_subplot()
            for j, n in enumerate(names):  # bins start at the evaluated SNR points (0, 5, ... dB)
                ax.plot([r[1] for r in snr], [r[4 + j] for r in snr], marker="o", label=LABELS.get(n, n))
            ax.set_xlabel("SNR (dB), bin start")
            ax.set_ylabel("NMSE (dB)")
            ax.grid(True, alpha=0.3)
            ax.legend()
    return written
