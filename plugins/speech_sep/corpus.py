"""The embedded corpus: synthetic voices (espeak-ng and flite, 8 kHz mono FLAC) shipped as package data.

``data/voices.json`` assigns every voice to train, val or test (held-out voices), and
``data/make_corpus.py`` regenerates the files.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from sigplex.datasets.audio import read_audio, resample

CORPUS = Path(__file__).resolve().parent / "data"


def load_corpus(sample_rate: int) -> dict[str, dict[str, list[np.ndarray]]]:
    """The embedded corpus as ``{split: {voice: [utterances]}}`` at ``sample_rate``."""
    meta = json.loads((CORPUS / "voices.json").read_text())
    out: dict[str, dict[str, list[np.ndarray]]] = {"train": {}, "val": {}, "test": {}}
    for voice, info in meta["voices"].items():
        wavs = [read_audio(CORPUS / f, meta["sample_rate"], field=voice) for f in info["files"]]
        if sample_rate != meta["sample_rate"]:
            wavs = [resample(w, meta["sample_rate"], sample_rate) for w in wavs]
        out[info["split"]][voice] = wavs
    return out


__all__ = ["CORPUS", "load_corpus"]
