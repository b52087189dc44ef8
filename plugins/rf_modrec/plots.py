"""Run figures: accuracy against SNR (PNG + CSV table) and the confusion matrix at high SNR."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from sigplex.core.figures import figure
from sigplex.core.fileio import atomic_path

from .metrics import accuracy_by_snr, confusion


def write_plots(pred: np.ndarray, y: np.ndarray, snr: np.ndarray, classes: list[str], high_snr: float,
                out_dir: Path, title: str = "") -> list[Path]:
    """``accuracy_by_snr.csv``, ``accuracy_vs_snr.png`` and ``confusion_high_snr.png`` in ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    per = accuracy_by_snr(pred, y, snr)
    written: list[Path] = []
    table = out_dir / "accuracy_by_snr.csv"
    with atomic_path(table) as tmp:
        tmp.write_text("snr_db,accuracy,frames\n" + "".join(f"{s:g},{a:.4f},{int((snr == s).sum())}\n"
                                                             for s, a in per.items()))
    written.append(table)
    with figure(out_dir / "accuracy_vs_snr.png", figsize=(6, 3.5), written=written) as fig:
        if fig is not None:
            ax = fig.add_subplot()
            ax.plot(list(per), [100 * a for a in per.values()], marker="o", ms=3)
            ax.set_xlabel("SNR (dB)")
            ax.set_ylabel("accuracy (%)")
            ax.set_ylim(0, 100)
            ax.grid(alpha=0.3)
            ax.set_title(title or f"mean {100 * np.mean(list(per.values())):.1f} %", fontsize=9)
    high = snr >= high_snr
    if high.any():
        m = confusion(pred[high], y[high], len(classes))
        with figure(out_dir / "confusion_high_snr.png", figsize=(6.5, 5.5), written=written) as fig:
            if fig is not None:
                ax = fig.add_subplot()
                im = ax.imshow(m, vmin=0, vmax=1, cmap="Blues")
                ax.set_xticks(range(len(classes)), classes, rotation=90, fontsize=7)
                ax.set_yticks(range(len(classes)), classes, fontsize=7)
                ax.set_xlabel("predicted")
                ax.set_ylabel("true")
                ax.set_title(f"SNR >= {high_snr:g} dB, accuracy {100 * (pred[high] == y[high]).mean():.1f} %",
                             fontsize=9)
                for i in range(len(classes)):
                    for j in range(len(classes)):
                        if m[i, j] >= 0.05:
                            ax.text(j, i, f"{100 * m[i, j]:.0f}", ha="center", va="center", fontsize=6,
                                    color="white" if m[i, j] > 0.5 else "black")
                fig.colorbar(im, ax=ax, fraction=0.046)
    return written


__all__ = ["write_plots"]
