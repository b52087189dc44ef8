"""The datasets the ``separate`` task trains and evaluates on, from the embedded corpus or ``--data``.

* embedded: fresh random mixtures of the training voices (plus ``data.extra_voices``); fixed (seeded
  per index) validation and test mixtures of held-out voices;
* ``--data``: train / val / test in the layouts of :mod:`sigplex.datasets.audio` (dynamic mixing
  of the training sources when ``data.dynamic_mixing``);
* :func:`evaluation_examples`: all of a folder as labelled mixtures, for ``evaluate --data``.
"""
from __future__ import annotations

from pathlib import Path

from sigplex.core.errors import UserError
from sigplex.datasets.audio import (
    DynamicMixDataset,
    SeparationDataset,
    discover_splits,
    read_audio,
    read_speaker_folders,
    read_split,
    trim_silence,
)
from sigplex.datasets.audio.readers import MIX_DIRS, SPLIT_NAMES

from .corpus import load_corpus


def _samples(seconds: float | None, sample_rate: int) -> int | None:
    return int(round(seconds * sample_rate)) if seconds else None


def extra_voices(config) -> dict:
    """``{speaker: [lazy utterances]}`` of ``data.extra_voices`` (recordings read at the model's rate when
    drawn, resampled if ``data.resample``, silence at both ends trimmed); empty when it is unset."""
    d = config.data
    if not d.extra_voices:
        return {}
    speakers = read_speaker_folders(d.extra_voices)
    return {name: [lambda p=p, name=name: trim_silence(read_audio(
        p, d.sample_rate, resample_to_rate=d.resample, field=f"data.extra_voices speaker {name}",
        max_clipped=d.max_clipped)) for p in files] for name, files in speakers.items()}


def _share(extra: dict, others: dict, share: float | None) -> dict | None:
    """Speaker weights giving ``extra``'s voices ``share`` of the draws together (None: all alike)."""
    if share is None or not extra or not others:
        return None
    return {**{k: (1 - share) / len(others) for k in others}, **{k: share / len(extra) for k in extra}}


def embedded_splits(config) -> tuple:
    """``(train, val, test, voices)`` of the embedded corpus (training voices joined by
    ``data.extra_voices``); ``voices`` names each split's voices."""
    d, n, sr = config.data, config.model.num_spks, config.data.sample_rate
    corpus = load_corpus(sr)
    extra = extra_voices(config)
    if clash := sorted(set(extra) & set().union(*corpus.values())):
        raise UserError(f"data.extra_voices {d.extra_voices}: speaker folder {clash[0]!r} has the name of an embedded "
                        "voice; rename it")
    weights = _share(extra, corpus["train"], d.extra_voices_share)
    corpus["train"] = {**corpus["train"], **extra}
    seg, ev = _samples(d.segment_seconds, sr), _samples(d.eval_seconds, sr) or 3 * sr
    train = DynamicMixDataset(corpus["train"], n, seg, d.train_items, gain_db=d.gain_db, speeds=d.speeds(),
                              sample_rate=sr, augment=d.augmentation(), speaker_weights=weights)
    val = DynamicMixDataset(corpus["val"], n, ev, d.val_items, gain_db=d.gain_db, seed=1)
    test = DynamicMixDataset(corpus["test"], n, ev, d.test_items, gain_db=d.gain_db, seed=2)
    return train, val, test, {k: sorted(v) for k, v in corpus.items()}


def folder_splits(config, data: Path) -> tuple:
    """``(train, val or None, test or None)`` of a ``--data`` folder, CSV or scp layout."""
    d, n, sr = config.data, config.model.num_spks, config.data.sample_rate
    splits = discover_splits(data, n)
    common = dict(resample=d.resample, max_clipped=d.max_clipped)
    seg, ev = _samples(d.segment_seconds, sr), _samples(d.eval_seconds, sr)
    train = SeparationDataset(splits["train"], sr, segment=seg, random_crop=True, **common)
    if d.dynamic_mixing:
        # every training source is a "speaker" of its own; pairs come from different examples
        speakers = {f"{ex.id}/{k}": [lambda p=path, k=k: read_audio(
            p, sr, resample_to_rate=d.resample, field=f"source_{k}", max_clipped=d.max_clipped)]
            for ex in splits["train"] for k, path in enumerate(ex.sources[:n], 1)}
        extra = extra_voices(config)
        weights = _share(extra, speakers, d.extra_voices_share)
        speakers.update(extra)
        train = DynamicMixDataset(speakers, n, seg, d.train_items, gain_db=d.gain_db, speeds=d.speeds(), sample_rate=sr,
                                  augment=d.augmentation(), speaker_weights=weights)
    val, test = (SeparationDataset(splits[s], sr, segment=ev, **common) if s in splits else None
                 for s in ("val", "test"))
    return train, val, test


def evaluation_examples(data: Path, num_spks: int) -> list:
    """Every example under ``data``: a bare ``mix/ + s1/, s2/`` folder, a LibriMix CSV, ``mix.scp`` lists,
    or a folder of split subfolders (all splits together). Errors name the file or folder."""
    data = Path(data)
    if not data.exists():
        raise UserError(f"--data {data}: no such file or folder")
    if data.is_dir() and not (data / "mix.scp").is_file() and not (data / "s1").is_dir() \
            and not any((data / m).is_dir() for m in MIX_DIRS):
        parts = [data / name for names in SPLIT_NAMES.values() for name in names if (data / name).is_dir()]
        if parts:
            return [ex for part in parts for ex in read_split(part, num_spks)]
    return read_split(data, num_spks)


__all__ = ["embedded_splits", "extra_voices", "evaluation_examples", "folder_splits"]
