"""Figures for run directories: matplotlib (optional) on the Agg backend, saved atomically as PNG.

>>> from pathlib import Path
>>> import tempfile
>>> with figure(Path(tempfile.mkdtemp()) / "plots" / "line.png") as fig:   # doctest: +SKIP
...     if fig is not None:
...         fig.add_subplot().plot([1, 2, 3])
"""
from __future__ import annotations

import contextlib
import csv
from pathlib import Path
from typing import Iterator


def pyplot():
    """``matplotlib.pyplot`` on the Agg backend, or None when matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


@contextlib.contextmanager
def figure(path: str | Path, *, figsize=(8, 3), dpi: int = 100, written: list | None = None) -> Iterator:
    """Yield a new matplotlib Figure (None without matplotlib); on exit save it to ``path`` atomically.

    ``written``, if given, gets ``path`` appended once the file exists.
    """
    from .fileio import atomic_path

    plt = pyplot()
    if plt is None:
        yield None
        return
    fig = plt.figure(figsize=figsize)
    try:
        yield fig
        fig.tight_layout()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=dpi)
        if written is not None:
            written.append(path)
    finally:
        plt.close(fig)


def metric_curves(metrics_csv: str | Path, out: str | Path) -> Path | None:
    """One panel per logged metric of a run's ``metrics.csv`` (train and ``val_`` columns), as a PNG."""
    metrics_csv = Path(metrics_csv)
    if not metrics_csv.is_file():
        return None
    with open(metrics_csv, newline="") as fh:
        rows = list(csv.DictReader(fh))
    skip = {"step", "epoch", "time_s"}
    columns = [c for c in (rows[0].keys() if rows else []) if c not in skip]
    series = {}
    for c in columns:
        pts = [(float(r["step"]), float(r[c])) for r in rows if r.get(c) not in (None, "")]
        if pts:
            series[c] = pts
    if not series:
        return None
    n = len(series)
    cols = min(3, n)
    nrows = (n + cols - 1) // cols
    written: list = []
    with figure(out, figsize=(4.2 * cols, 2.6 * nrows), written=written) as fig:
        if fig is None:
            return None
        for i, (name, pts) in enumerate(series.items()):
            ax = fig.add_subplot(nrows, cols, i + 1)
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o" if len(pts) < 30 else None, ms=3, lw=1.2,
                    color="tab:orange" if name.startswith("val_") else "tab:blue")
            ax.set_title(name, fontsize=9)
            ax.set_xlabel("step", fontsize=8)
            if name in ("loss", "lr") and all(p[1] > 0 for p in pts):
                ax.set_yscale("log")
    return written[0] if written else None
