"""EEG readers and preprocessing through MNE (the ``eeg`` extra): the data side of eeg_conformer.

* :mod:`.readers` — find/read EDF, BDF, GDF, FIF, BrainVision, EEGLAB files and BIDS roots.
* :mod:`.preprocess` — picks, re-reference, notch, band-pass, resample, events, epochs, windows.
* :mod:`.alignment` — Euclidean alignment per subject.
* :mod:`.simulate` — simulated motor imagery and seizure recordings (the embedded default data).

Importing this package imports neither mne nor torch; the submodules import mne lazily.
"""
from __future__ import annotations

from .readers import (
    EXTENSIONS,
    Recording,
    find_recordings,
    load_raw,
    read_raw,
    subject_of,
)

__all__ = ["EXTENSIONS", "Recording", "find_recordings", "load_raw", "read_raw", "subject_of"]
