"""EEG variants of a valid FIF recording for the hostile-input checks (:mod:`sigplex.core.hostile`).

Each keeps the file valid as FIF and breaks the signal: NaN or infinite samples in one channel, all
zeros, a single sample, a missing channel, and one second of data.
"""
from __future__ import annotations

from pathlib import Path


def hostile_variants(sample: Path, folder: Path) -> list:
    """The variants of the FIF (or ``.fif.gz``) recording ``sample``, written below ``folder``."""
    import mne
    import numpy as np

    from sigplex.core.hostile import HostileInput

    raw = mne.io.read_raw(sample, preload=True, verbose="error")
    data = raw.get_data()
    sfreq = raw.info["sfreq"]

    def changed(values) -> mne.io.RawArray:
        return mne.io.RawArray(values, raw.info.copy(), verbose="error")

    nan, inf = data.copy(), data.copy()
    nan[0, len(data[0]) // 2:] = np.nan
    inf[-1, 10] = np.inf
    versions = {"nan-channel": changed(nan), "inf-sample": changed(inf), "all-zero": changed(np.zeros_like(data)),
                "one-sample": changed(data[:, :1]), "one-second": changed(data[:, : int(sfreq)]),
                "missing-channel": raw.copy().drop_channels([raw.ch_names[0]])}
    found = []
    for name, version in versions.items():
        path = Path(folder) / f"eeg-{name}" / sample.name
        path.parent.mkdir(parents=True, exist_ok=True)
        version.save(path, fmt="single", verbose="error", overwrite=True)
        found.append(HostileInput(f"eeg:{name}", path))
    return found
