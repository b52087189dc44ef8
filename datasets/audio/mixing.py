"""Separation datasets: fixed mixtures read from files, and dynamic mixing for training.

- :class:`SeparationDataset` -- one item per :class:`~.readers.Example`: the mixture (or the sum
  of the sources when there is no mixture file) and its sources, checked for equal lengths,
  optionally cropped (randomly for training) to a fixed segment and padded to it.
- :class:`DynamicMixDataset` -- new mixtures on every draw: ``num_spks`` utterances of distinct
  speakers, random crops/placements, random gains (dB) and optional speed perturbation
  (resampling by a random factor, which shifts tempo and pitch: new voices), and optionally the
  :class:`~.augment.Augmentation` steps (formant shift, tempo, EQ, room reverberation, background
  noise). It draws from NumPy's global RNG,
  which the core Trainer seeds per item, so training stays reproducible and resumable; with
  ``seed`` set it draws from its own per-index generator instead (fixed validation mixtures).

Items are ``{"mix": [T], "sources": [S, T]}`` float32 tensors.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence, Union

import numpy as np

from sigplex.core.errors import UserError

from .io import read_audio
from .readers import Example

Utterance = Union[np.ndarray, Callable[[], np.ndarray]]


def fit_length(wav: np.ndarray, length: int, rng, random: bool = True) -> np.ndarray:
    """Crop ``[..., T]`` to ``length`` (random start if ``random``) or zero-pad it (random offset)."""
    t = wav.shape[-1]
    if t == length:
        return wav
    if t > length:
        start = int(rng.integers(0, t - length + 1)) if random else 0
        return wav[..., start:start + length]
    out = np.zeros(wav.shape[:-1] + (length,), dtype=np.float32)
    start = int(rng.integers(0, length - t + 1)) if random else 0
    out[..., start:start + t] = wav
    return out


class _GlobalRNG:
    """NumPy's global RNG behind the ``Generator`` methods used here (seeded per item by the core)."""

    @staticmethod
    def integers(low, high=None):
        return np.random.randint(low, high)

    @staticmethod
    def uniform(low, high, size=None):
        return np.random.uniform(low, high, size)

    @staticmethod
    def choice(n, size, replace=True, p=None):
        return np.random.choice(n, size, replace=replace, p=p)


class SeparationDataset:
    """Mixtures and sources read from files (see the module docstring)."""

    def __init__(self, examples: Sequence[Example], sample_rate: int, *, segment: int | None = None,
                 random_crop: bool = False, resample: bool = False, max_clipped: float | None = 0.001):
        self.examples = list(examples)
        self.sample_rate, self.segment, self.random_crop = sample_rate, segment, random_crop
        self.resample, self.max_clipped = resample, max_clipped

    def __len__(self):
        return len(self.examples)

    def _read(self, path: Path, field: str) -> np.ndarray:
        return read_audio(path, self.sample_rate, resample_to_rate=self.resample, field=field,
                          max_clipped=self.max_clipped)

    def load(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """``(mixture [T], sources [S, T])`` of example ``i`` at full length, validated."""
        ex = self.examples[i]
        sources = [self._read(p, f"source_{k}") for k, p in enumerate(ex.sources, 1)]
        lengths = {len(s) for s in sources}
        if len(lengths) > 1:
            k = next(k for k, s in enumerate(sources) if len(s) != len(sources[0]))
            raise UserError(f"{ex.sources[k]}: source_{k + 1}: {len(sources[k])} samples; expected "
                            f"{len(sources[0])} like source_1 {ex.sources[0]}")
        src = np.stack(sources)
        if ex.mixture is None:
            mix = src.sum(0)
        else:
            mix = self._read(ex.mixture, "mixture")
            if len(mix) != src.shape[1]:
                raise UserError(f"{ex.sources[0]}: source_1: {src.shape[1]} samples; expected {len(mix)} like the "
                                f"mixture {ex.mixture}")
        return mix.astype(np.float32), src.astype(np.float32)

    def __getitem__(self, i: int):
        import torch

        mix, src = self.load(i)
        if self.segment is not None:
            rng = _GlobalRNG() if self.random_crop else np.random.default_rng(i)
            both = fit_length(np.concatenate([mix[None], src]), self.segment, rng, random=self.random_crop)
            mix, src = both[0], both[1:]
        return {"mix": torch.from_numpy(np.ascontiguousarray(mix)), "sources": torch.from_numpy(np.ascontiguousarray(src))}


class DynamicMixDataset:
    """Random mixtures of ``num_spks`` speakers' utterances (see the module docstring).

    ``speakers``: speaker -> list of utterances (arrays, or callables returning arrays, read
    lazily). ``length``: items per epoch. ``gain_db``: each source gets a gain drawn
    uniformly in ``[-gain_db, gain_db]`` dB. ``speeds``: speed factors drawn uniformly per
    source (``1.1`` = 10 % faster and higher; needs ``sample_rate``). With fewer speakers than
    ``num_spks`` speakers repeat. ``augment``: an :class:`~.augment.Augmentation` (voice steps per
    source before cropping, one room for all sources, noise added to the mixture only: the
    targets stay noise-free). ``speaker_weights``: speaker -> relative probability of being drawn
    (default: all alike); the talkers of one mixture are still distinct.
    """

    def __init__(self, speakers: dict[str, Sequence[Utterance]], num_spks: int, segment: int, length: int, *,
                 gain_db: float = 2.5, seed: int | None = None, peak: float = 0.9,
                 speeds: Sequence[float] = (1.0,), sample_rate: int | None = None, augment=None,
                 speaker_weights: dict[str, float] | None = None):
        self.speakers = {k: list(v) for k, v in speakers.items() if len(v)}
        if not self.speakers:
            raise UserError("dynamic mixing: no utterances to mix; expected at least one speaker with audio")
        self.names = sorted(self.speakers)
        self.p = None
        if speaker_weights is not None:
            w = np.array([float(speaker_weights.get(k, 0.0)) for k in self.names])
            if (w < 0).any() or np.count_nonzero(w) < min(num_spks, len(w)):
                raise ValueError(f"speaker_weights: need >= {num_spks} speakers with a positive weight")
            self.p = w / w.sum()
        self.num_spks, self.segment, self.length = num_spks, segment, length
        self.gain_db, self.seed, self.peak = gain_db, seed, peak
        self.speeds, self.sample_rate = tuple(speeds), sample_rate
        self.augment = augment if augment is not None and augment.active else None
        if any(f != 1.0 for f in self.speeds) and not sample_rate:
            raise ValueError("speed perturbation needs the sample_rate")
        self._cache: dict = {}

    def __len__(self):
        return self.length

    def _get(self, utt: Utterance, key, speed: float) -> np.ndarray:
        if callable(utt):
            return self._perturb(np.asarray(utt(), dtype=np.float32), speed)
        if (key, speed) not in self._cache:  # in-memory utterances: keep each perturbed copy
            self._cache[(key, speed)] = self._perturb(np.asarray(utt, dtype=np.float32), speed)
        return self._cache[(key, speed)]

    def _perturb(self, wav: np.ndarray, speed: float) -> np.ndarray:
        if speed == 1.0:
            return wav
        from .io import resample

        return resample(wav, int(round(self.sample_rate * speed)), self.sample_rate)

    def __getitem__(self, i: int):
        import torch

        rng = _GlobalRNG() if self.seed is None else np.random.default_rng(self.seed * 1_000_003 + i)
        n = len(self.names)
        picks = rng.choice(n, self.num_spks, replace=n < self.num_spks, p=self.p)
        sources = []
        for j in np.atleast_1d(picks):
            utts = self.speakers[self.names[int(j)]]
            u = int(rng.integers(0, len(utts)))
            speed = self.speeds[int(rng.integers(0, len(self.speeds)))] if len(self.speeds) > 1 else self.speeds[0]
            wav = self._get(utts[u], (int(j), u), speed)
            if self.augment is not None:
                wav = self.augment.voice(wav, rng)
            wav = fit_length(wav, self.segment, rng)
            rms = np.sqrt(np.mean(wav ** 2)) + 1e-8
            gain = 10 ** (float(rng.uniform(-self.gain_db, self.gain_db)) / 20) * 0.05 / rms
            sources.append(wav * gain)
        if self.augment is not None:
            sources = self.augment.room(sources, rng)
        src = np.stack(sources).astype(np.float32)
        mix = src.sum(0)
        if self.augment is not None:
            mix = self.augment.noise(mix, rng)
        top = float(np.abs(mix).max())
        if top > self.peak:
            src *= self.peak / top
            mix *= self.peak / top
        return {"mix": torch.from_numpy(mix), "sources": torch.from_numpy(src)}


__all__ = ["DynamicMixDataset", "SeparationDataset", "fit_length"]
