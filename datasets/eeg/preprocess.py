"""MNE preprocessing, event finding and windowing for EEG decoding.

* :class:`Preprocessing` + :func:`preprocess`: channel picks (in the given order, so a recording
  with another channel order is reordered), re-reference, notch, band-pass, resample — with clear
  errors for a missing channel, NaN or flat channels and a sampling rate that differs.
* :func:`match_events` / :func:`find_events`: class onsets from annotations (descriptions) or a stim channel (codes).
* :func:`epoch`: fixed-length windows after each event, optional baseline correction.
* :func:`sliding_windows` / :func:`window_labels`: windows over a continuous recording and binary
  labels from annotated intervals (seizure detection).
Arrays are ``[n_windows, n_channels, n_times]`` float32; indexing is vectorised (no loops over windows).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from sigplex.core.errors import UserError


@dataclass
class Preprocessing:
    """What :func:`preprocess` does, in this order: pick, reference, notch, band-pass, resample."""

    channels: list[str]
    sfreq: float
    reference: str | list[str] | None = "average"
    notch: list[float] = field(default_factory=list)
    l_freq: float | None = None
    h_freq: float | None = None
    resample: bool = False


def check_channels(raw, channels: Sequence[str], source: str) -> None:
    """Raise if any of ``channels`` is not in ``raw`` (matching is exact, then case-insensitive)."""
    have = set(raw.ch_names)
    missing = [c for c in channels if c not in have]
    if missing:
        shown = ", ".join(raw.ch_names[:30]) + (" ..." if len(raw.ch_names) > 30 else "")
        raise UserError(f"{source}: channel(s) {', '.join(missing)} of data.channels not found in the recording "
                        f"(it has: {shown}); fix data.channels or rename the channels")


def _match_case(raw, channels: Sequence[str]) -> None:
    """Rename channels that match ``channels`` only up to case (e.g. 'FP1' -> 'Fp1')."""
    lower = {c.lower(): c for c in channels}
    mapping = {ch: lower[ch.lower()] for ch in raw.ch_names
               if ch not in channels and ch.lower() in lower and lower[ch.lower()] not in raw.ch_names}
    if mapping:
        raw.rename_channels(mapping, verbose="error")


def check_signal(data: np.ndarray, channels: Sequence[str], source: str) -> None:
    """Raise on NaN/infinite values or flat (constant) channels in ``data`` ``[C, T]``."""
    bad = [c for c, ok in zip(channels, np.isfinite(data).all(axis=1)) if not ok]
    if bad:
        raise UserError(f"{source}: channel(s) {', '.join(bad)} contain NaN or infinite values; "
                        "drop them from data.channels or interpolate them (raw.interpolate_bads)")
    flat = [c for c, s in zip(channels, np.ptp(data, axis=1)) if s <= 1e-12]
    if flat:
        raise UserError(f"{source}: channel(s) {', '.join(flat)} are flat (constant); drop them from "
                        "data.channels or interpolate them (raw.interpolate_bads)")


def preprocess(raw, p: Preprocessing, source: str):
    """Return a preprocessed copy of ``raw`` holding exactly ``p.channels`` in that order."""
    raw = raw.copy()
    ref_chs = list(p.reference) if isinstance(p.reference, (list, tuple)) else []
    _match_case(raw, list(p.channels) + ref_chs)
    check_channels(raw, list(p.channels) + [c for c in ref_chs if c not in p.channels], source)
    sfreq = float(raw.info["sfreq"])
    if abs(sfreq - p.sfreq) > 1e-6 and not p.resample:
        raise UserError(f"{source}: sampling rate {sfreq:g} Hz differs from data.sfreq={p.sfreq:g} Hz; "
                        f"set data.sfreq={sfreq:g} or data.resample=true")
    keep = list(dict.fromkeys(list(p.channels) + ref_chs))
    raw.pick(keep)
    raw.set_channel_types({c: "eeg" for c in keep if raw.get_channel_types([c])[0] != "eeg"}, verbose="error")
    check_signal(raw.get_data(), raw.ch_names, source)
    if p.reference == "average":
        raw.set_eeg_reference("average", projection=False, verbose="error")
    elif ref_chs:
        raw.set_eeg_reference(ref_chs, projection=False, verbose="error")
    raw.pick(list(p.channels))
    nyq = sfreq / 2
    notch = [f for f in (p.notch or []) if f < nyq]
    if notch:
        raw.notch_filter(notch, picks="all", verbose="error")
    if p.l_freq is not None or p.h_freq is not None:
        h = p.h_freq if p.h_freq is None or p.h_freq < nyq else None
        raw.filter(p.l_freq, h, picks="all", verbose="error")
    if abs(sfreq - p.sfreq) > 1e-6:
        raw.resample(p.sfreq, verbose="error")
    return raw


def match_events(raw, event_id: dict[str, str | int]) -> tuple[np.ndarray, np.ndarray]:
    """``(onsets_s, labels)`` of the events named in ``event_id`` (class name -> annotation or code); empty if none.

    Class ``k`` is the k-th key of ``event_id``. Annotations whose description equals a value
    (as a string) are used first; otherwise integer codes are looked up on a stim channel.
    """
    import mne

    wanted = {str(v): k for k, v in enumerate(event_id.values())}
    ann = raw.annotations
    descr = [str(d) for d in ann.description]
    hit = np.array([d in wanted for d in descr], dtype=bool)
    if hit.any():
        onsets = np.asarray(ann.onset)[hit] - (raw.first_time if ann.orig_time is not None else 0.0)
        labels = np.array([wanted[d] for d, h in zip(descr, hit) if h])
        order = np.argsort(onsets, kind="stable")
        return onsets[order], labels[order]
    if len(mne.pick_types(raw.info, stim=True, eeg=False, exclude=[])):
        events = mne.find_events(raw, shortest_event=1, verbose="error")
        hit = np.array([str(c) in wanted for c in events[:, 2]], dtype=bool)
        if hit.any():
            onsets = (events[hit, 0] - raw.first_samp) / raw.info["sfreq"]
            return onsets, np.array([wanted[str(c)] for c in events[hit, 2]])
    return np.zeros(0), np.zeros(0, dtype=int)


def find_events(raw, event_id: dict[str, str | int], source: str) -> tuple[np.ndarray, np.ndarray]:
    """:func:`match_events`, or a :class:`UserError` naming ``source`` and what it holds when there are none."""
    import mne

    onsets, labels = match_events(raw, event_id)
    if len(onsets):
        return onsets, labels
    present = sorted({str(d) for d in raw.annotations.description})
    shown = ", ".join(present[:15]) + (" ..." if len(present) > 15 else "") if present else "none"
    stim = len(mne.pick_types(raw.info, stim=True, eeg=False, exclude=[])) > 0
    raise UserError(f"{source}: no events found for data.event_id {dict(event_id)} (annotation descriptions in "
                    f"the recording: {shown}{'; it has a stim channel' if stim else ''}); "
                    "set data.event_id to map each class to an annotation description or event code")


def epoch(data: np.ndarray, sfreq: float, onsets: np.ndarray, tmin: float, n_times: int,
          baseline: tuple[float, float] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Windows ``[n, C, n_times]`` starting ``tmin`` s after each onset, and the mask of onsets kept.

    ``baseline=(a, b)`` subtracts each channel's mean over ``[onset + a, onset + b)``. Windows
    (or baselines) that fall outside the recording are dropped.
    """
    starts = np.round((onsets + tmin) * sfreq).astype(int)
    keep = (starts >= 0) & (starts + n_times <= data.shape[1])
    if baseline is not None:
        b0 = np.round((onsets + baseline[0]) * sfreq).astype(int)
        b1 = np.maximum(np.round((onsets + baseline[1]) * sfreq).astype(int), b0 + 1)
        keep &= (b0 >= 0) & (b1 <= data.shape[1])
    idx = starts[keep, None] + np.arange(n_times)
    x = np.transpose(data[:, idx], (1, 0, 2))
    if baseline is not None and keep.any():
        cum = np.concatenate([np.zeros((data.shape[0], 1)), np.cumsum(data, axis=1)], axis=1)
        means = (cum[:, b1[keep]] - cum[:, b0[keep]]) / (b1[keep] - b0[keep])
        x = x - means.T[:, :, None]
    return x.astype(np.float32), keep


def sliding_windows(n_samples: int, n_times: int, stride: int) -> np.ndarray:
    """Start samples of every full window of ``n_times`` samples, ``stride`` apart."""
    if n_samples < n_times:
        return np.zeros(0, dtype=int)
    return np.arange(0, n_samples - n_times + 1, stride)


def window_labels(starts: np.ndarray, n_times: int, sfreq: float, intervals: np.ndarray,
                  min_overlap: float = 0.5) -> np.ndarray:
    """1 where a window overlaps the union of ``intervals`` (``[k, 2]`` onset/offset s) by ≥ ``min_overlap``."""
    if len(intervals) == 0:
        return np.zeros(len(starts), dtype=np.int64)
    t0 = starts[:, None] / sfreq
    t1 = t0 + n_times / sfreq
    overlap = np.clip(np.minimum(t1, intervals[None, :, 1]) - np.maximum(t0, intervals[None, :, 0]), 0, None)
    return (overlap.sum(1) / (n_times / sfreq) >= min_overlap - 1e-9).astype(np.int64)


def annotated_intervals(raw, labels: Sequence[str]) -> np.ndarray:
    """``[k, 2]`` onset/offset seconds (from the recording's start) of annotations matching ``labels``
    (case-insensitive)."""
    ann = raw.annotations
    wanted = {lab.lower() for lab in labels}
    shift = raw.first_time if ann.orig_time is not None else 0.0
    rows = [(o - shift, o - shift + d) for o, d, s in zip(ann.onset, ann.duration, ann.description)
            if str(s).lower() in wanted]
    return np.array(rows, dtype=float).reshape(-1, 2)


__all__ = ["Preprocessing", "annotated_intervals", "check_channels", "check_signal", "epoch", "find_events",
           "match_events", "preprocess", "sliding_windows", "window_labels"]
