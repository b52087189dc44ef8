"""Recordings -> per-subject windows -> train/val/test datasets under an evaluation protocol.

Protocols (``data.protocol``): ``loso`` (leave one subject out: test = ``test_subject`` or
``subjects[fold]``, validation = ``val_subject`` or the subject before it), ``within`` (per
subject, chronological: last ``test_fraction`` = test, the end of the rest = validation) and
``kfold`` (per subject, ``n_folds`` contiguous folds; ``fold`` = test). Euclidean alignment is per
subject (unsupervised: it uses no labels). :func:`subject_names` lists the LOSO folds without reading
any signal.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from sigplex.core.errors import UserError
from sigplex.core.splits import group_folds
from sigplex.datasets.eeg import find_recordings, load_raw
from sigplex.datasets.eeg.alignment import euclidean_alignment
from sigplex.datasets.eeg.preprocess import (
    Preprocessing,
    annotated_intervals,
    epoch,
    find_events,
    preprocess,
    sliding_windows,
    window_labels,
)


@dataclass
class SubjectData:
    """All windows of one subject, in recording then time order."""

    subject: str
    x: np.ndarray            # [n, C, T] float32
    y: np.ndarray            # [n] int64
    onsets: np.ndarray       # [n] window start, seconds from the recording start
    recording: np.ndarray    # [n] index into ``recordings``
    recordings: list[str]


class WindowDataset(torch.utils.data.Dataset):
    """Map-style windows with labels, subject and recording of each (for per-subject metrics)."""

    def __init__(self, parts: list[tuple[SubjectData, np.ndarray]], stride_s: float | None = None):
        self.subjects = [p.subject for p, _ in parts]
        self.x = torch.from_numpy(np.concatenate([p.x[i] for p, i in parts])) if parts else torch.zeros(0)
        self.y = torch.from_numpy(np.concatenate([p.y[i] for p, i in parts])) if parts else torch.zeros(0)
        self.subject = np.concatenate([np.full(len(i), k) for k, (_, i) in enumerate(parts)]) if parts else np.zeros(0)
        self.onsets = np.concatenate([p.onsets[i] for p, i in parts]) if parts else np.zeros(0)
        # a global recording id, so windows of different subjects never share one
        offsets = np.cumsum([0] + [len(p.recordings) for p, _ in parts])
        self.recording = np.concatenate([p.recording[i] + o for (p, i), o in zip(parts, offsets)]) if parts else np.zeros(0)
        self.stride_s = stride_s

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return {"x": self.x[i], "y": self.y[i]}


def _preprocessing(d) -> Preprocessing:
    return Preprocessing(channels=list(d.channels), sfreq=d.sfreq, reference=d.reference, notch=list(d.notch),
                         l_freq=d.l_freq, h_freq=d.h_freq, resample=d.resample)


def _recordings(d, root: Path) -> list:
    """The recordings under ``root`` of the subjects ``data.subjects`` selects (all when unset)."""
    recs = find_recordings(root)
    if d.subjects:
        unknown = sorted(set(d.subjects) - {r.subject for r in recs})
        if unknown:
            found = sorted({r.subject for r in recs})
            raise UserError(f"{root}: data.subjects {unknown} not found (subjects: {', '.join(found)})")
        recs = [r for r in recs if r.subject in d.subjects]
    return recs


def subject_names(d, root: Path) -> list[str]:
    """The subjects :func:`load_subjects` would return, in order, from file names only (no signal read)."""
    return list(dict.fromkeys(r.subject for r in _recordings(d, root)))


def _raws(d, root: Path, resolved: list):
    """Yield ``(recording, raw)`` for the selected subjects, checking sampling rates agree.

    With ``data.channels`` unset, the first recording's EEG channels are appended to ``resolved``.
    """
    recs = _recordings(d, root)
    first = None
    for rec in recs:
        raw = load_raw(rec)
        sf = float(raw.info["sfreq"])
        if first is None:
            first = (rec, sf)
            if d.channels is None:
                eeg = raw.copy().pick("eeg", exclude=[]).ch_names if "eeg" in raw else []
                if not eeg:
                    raise UserError(f"{rec.path}: no channel is typed EEG; set data.channels to the channels to use")
                resolved.extend(eeg)
        elif abs(sf - first[1]) > 1e-6 and not d.resample:
            raise UserError(f"{root}: inconsistent sampling rates across recordings/subjects: {first[0].path.name} "
                            f"(subject {first[0].subject}) {first[1]:g} Hz, {rec.path.name} (subject {rec.subject}) "
                            f"{sf:g} Hz; set data.resample=true to resample all to data.sfreq={d.sfreq:g} Hz")
        yield rec, raw


def _group(items, d, stride_s=None) -> list[SubjectData]:
    by_subject: dict[str, list] = {}
    for rec, x, y, onsets in items:
        by_subject.setdefault(rec.subject, []).append((rec, x, y, onsets))
    out = []
    for subject, parts in by_subject.items():
        x = np.concatenate([p[1] for p in parts]) * np.float32(d.scale)
        if d.euclidean_alignment and len(x):
            x, _ = euclidean_alignment(x)
        out.append(SubjectData(subject, x.astype(np.float32), np.concatenate([p[2] for p in parts]).astype(np.int64),
                               np.concatenate([p[3] for p in parts]),
                               np.concatenate([np.full(len(p[1]), k) for k, p in enumerate(parts)]),
                               [str(p[0].path) for p in parts]))
    return out


def mi_epochs_from_raw(raw, d, source: str, events=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Preprocessed epochs ``[n, C, T]`` (volts), labels and onsets of one motor-imagery recording.

    ``events``: ``(onsets_s, labels)`` already matched; by default they are found (none is an error).
    """
    onsets, labels = events if events is not None else find_events(raw, d.event_map(), source)
    clean = preprocess(raw, _preprocessing(d), source)
    x, keep = epoch(clean.get_data(), d.sfreq, onsets, d.tmin, d.n_times, d.baseline)
    if not keep.any():
        raise UserError(f"{source}: every event's window (tmin={d.tmin}, window_s={d.window_s}) falls outside "
                        "the recording")
    return x, labels[keep], onsets[keep] + d.tmin


def windows_from_raw(raw, d, source: str, stride_s: float) -> tuple[np.ndarray, np.ndarray]:
    """Preprocessed sliding windows ``[n, C, T]`` (volts) ``stride_s`` apart and their start samples."""
    data = preprocess(raw, _preprocessing(d), source).get_data()
    starts = sliding_windows(data.shape[1], d.n_times, max(1, int(round(stride_s * d.sfreq))))
    if not len(starts):
        raise UserError(f"{source}: shorter than one window (data.window_s={d.window_s})")
    return np.transpose(data[:, starts[:, None] + np.arange(d.n_times)], (1, 0, 2)).astype(np.float32), starts


def seizure_windows_from_raw(raw, d, source: str, labelled: bool = True):
    """Preprocessed sliding windows ``[n, C, T]`` (volts), labels and window onsets of one recording."""
    x, starts = windows_from_raw(raw, d, source, d.stride_s)
    y = window_labels(starts, d.n_times, d.sfreq, annotated_intervals(raw, d.seizure_labels), d.min_overlap) \
        if labelled else np.zeros(len(starts), dtype=np.int64)
    return x, y, starts / d.sfreq


def load_subjects(d, root: Path, kind: str) -> tuple[list[SubjectData], list[str]]:
    """Per-subject windows of every recording under ``root`` (``kind``: ``mi`` or ``seizure``) and the
    channels used (``data.channels``, or those resolved from the first recording)."""
    items, resolved = [], []
    for rec, raw in _raws(d, root, resolved):
        if resolved and d.channels is None:
            d = d.model_copy(update={"channels": list(resolved)})
        if kind == "mi":
            items.append((rec, *mi_epochs_from_raw(raw, d, str(rec.path))))
        else:
            items.append((rec, *seizure_windows_from_raw(raw, d, str(rec.path))))
    return _group(items, d), list(d.channels or [])


def class_weights(y: np.ndarray, n_classes: int) -> np.ndarray:
    """Inverse-frequency weights ``n / (K * count_k)`` (float32; an absent class counts as 1)."""
    counts = np.bincount(np.asarray(y, int), minlength=n_classes).astype(float)
    return (len(y) / (n_classes * np.maximum(counts, 1))).astype(np.float32)


def split(subjects: list[SubjectData], d) -> tuple[list, list, list]:
    """``(train, val, test)``, each a list of ``(SubjectData, indices)`` under ``data.protocol``."""
    names = [s.subject for s in subjects]
    if d.protocol == "loso":
        if len(subjects) < 2:
            raise UserError(f"data.protocol=loso needs at least 2 subjects, found {len(subjects)} ({', '.join(names)}); "
                            "use data.protocol=within or kfold")
        if d.test_subject is not None:
            if d.test_subject not in names:
                raise UserError(f"data.test_subject: {d.test_subject!r} is not a subject (subjects: {', '.join(names)})")
            t = names.index(d.test_subject)
        else:
            if not -len(names) <= d.fold < len(names):
                raise UserError(f"data.fold: {d.fold} is out of range for {len(names)} subjects")
            t = d.fold % len(names)
        if d.val_subject is not None:
            if d.val_subject not in names or d.val_subject == names[t]:
                raise UserError(f"data.val_subject: {d.val_subject!r} must be a subject other than the test one")
            v = names.index(d.val_subject)
        else:
            v = (t - 1) % len(names) if len(names) >= 3 else None
        _, rest, held_out = list(group_folds(names))[t]

        def whole(k):
            return subjects[k], np.arange(len(subjects[k].y))

        return [whole(k) for k in rest if k != v], ([whole(v)] if v is not None else []), [whole(k) for k in held_out]
    train, val, test = [], [], []
    for s in subjects:
        n = len(s.y)
        idx = np.arange(n)
        if d.protocol == "within":
            cut = int(round(n * (1 - d.test_fraction)))
            test_idx, rest = idx[cut:], idx[:cut]
        else:  # kfold: contiguous folds, chronological within each subject
            folds = np.array_split(idx, d.n_folds)
            k = d.fold % d.n_folds
            test_idx, rest = folds[k], np.concatenate([f for j, f in enumerate(folds) if j != k])
        vcut = int(round(len(rest) * (1 - d.val_fraction)))
        train.append((s, rest[:vcut]))
        if d.val_fraction > 0:
            val.append((s, rest[vcut:]))
        test.append((s, test_idx))
    return train, val, test


__all__ = ["SubjectData", "WindowDataset", "class_weights", "load_subjects", "mi_epochs_from_raw",
           "seizure_windows_from_raw", "split", "subject_names", "windows_from_raw"]
