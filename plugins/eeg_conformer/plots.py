"""Interpretability plots: a scalp topomap of DBConformer's learned channel-attention weights."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from sigplex.core.figures import figure
from sigplex.core.fileio import atomic_write_text


def write_channel_attention(weights: np.ndarray, channels: list[str], sfreq: float, folder: Path) -> list[Path]:
    """Write ``channel_attention_topomap.png`` and ``channel_attention.csv`` into ``folder``; return the paths.

    Channels without a position in the 10-05 template are left out of the topomap (a bar chart
    is drawn instead when fewer than 3 channels have positions). Without matplotlib only the CSV is written.
    """
    folder = Path(folder)
    csv = folder / "channel_attention.csv"
    atomic_write_text(csv, "channel,weight\n" + "".join(f"{c},{w:.6f}\n" for c, w in zip(channels, weights)))
    written: list[Path] = []
    with figure(folder / "channel_attention_topomap.png", figsize=(4.5, 4), written=written) as fig:
        if fig is not None:
            ax = fig.add_subplot()
            _draw(ax, fig, np.asarray(weights), channels, sfreq)
    return written + [csv]


def _draw(ax, fig, weights: np.ndarray, channels: list[str], sfreq: float) -> None:
    import mne

    from sigplex.datasets.eeg.simulate import standard_montage

    montage = standard_montage()
    known = [i for i, c in enumerate(channels) if c in montage.ch_names]
    if len(known) >= 3:
        info = mne.create_info([channels[i] for i in known], sfreq, "eeg")
        info.set_montage(montage)
        shown = weights[known]
        im, _ = mne.viz.plot_topomap(shown, info, axes=ax, show=False, cmap="viridis", vlim=(shown.min(), shown.max()),
                                     names=[channels[i] for i in known], sphere="auto")
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="attention weight")
    else:
        ax.bar(range(len(channels)), weights)
        ax.set_xticks(range(len(channels)), channels, rotation=90)
        ax.set_ylabel("attention weight")
    ax.set_title("DBConformer channel attention")


__all__ = ["write_channel_attention"]
