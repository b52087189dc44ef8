"""Augmentations that widen dynamic mixing toward real recordings: voice, channel, room and noise.

Per source (a talker's utterance, before mixing):

- :func:`shift_formants` -- warps the spectral envelope (the smoothed running maximum of the
  magnitude over frequency) by a factor while keeping the harmonics, so formants move and pitch does not;
- :func:`stretch_tempo` -- phase-vocoder time stretch: tempo changes, pitch and formants do not
  (pitch *and* formants move together with the speed perturbation :class:`~.mixing.DynamicMixDataset`
  already does by resampling);
- :func:`random_eq` -- a smooth random gain curve over log frequency (a few Gaussian bells of
  up to +-``max_db``), like microphones and telephone channels;
- :func:`reverberate` -- convolution with a room impulse response from :class:`RoomBank`
  (pyroomacoustics shoebox rooms, image-source method); each talker of a mixture stands at its
  own position in the same room.

Per mixture: :func:`add_noise` -- coloured noise (spectral slope from white to brown) at a
random SNR to the mixture; the noise is not a target.

All take a NumPy ``Generator``-like ``rng`` (``uniform``, ``integers``), so the dataset's per-item
seeding keeps training reproducible.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> wav = np.sin(2 * np.pi * 150 * np.arange(8000) / 8000).astype(np.float32)
>>> stretch_tempo(wav, 1.25).shape   # 25 % faster: 6400 samples
(6400,)
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

N_FFT, HOP = 512, 128


def _stft(wav: np.ndarray, n_fft: int = N_FFT, hop: int = HOP):
    import torch

    x = torch.from_numpy(np.ascontiguousarray(wav, dtype=np.float32))
    return torch.stft(x, n_fft, hop, window=torch.hann_window(n_fft), return_complex=True)


def _istft(spec, length: int, n_fft: int = N_FFT, hop: int = HOP) -> np.ndarray:
    import torch

    return torch.istft(spec, n_fft, hop, window=torch.hann_window(n_fft), length=length).numpy().astype(np.float32)


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


def _at_level_of(out: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """``out`` scaled to ``ref``'s RMS, float32."""
    return (out * (_rms(ref) / (_rms(out) + 1e-12))).astype(np.float32)


def spectral_envelope(magnitude, span: int):
    """The upper envelope of a magnitude ``[F, T]`` over frequency: a running maximum over ``span`` bins (wider
    than the harmonic spacing, so it rides on the harmonics' peaks), smoothed by a running mean."""
    import torch.nn.functional as F

    span += 1 - span % 2
    x = magnitude.T[:, None]  # [T, 1, F]
    upper = F.max_pool1d(x, span, stride=1, padding=span // 2)
    smooth = F.avg_pool1d(F.pad(upper, (span // 2, span // 2), mode="replicate"), span, stride=1)
    return smooth[:, 0].T.clamp_min(1e-8)


def shift_formants(wav: np.ndarray, factor: float, sample_rate: int = 8000, max_f0: float = 300.0) -> np.ndarray:
    """Formants (the spectral envelope) moved by ``factor`` (> 1: up), harmonics and length unchanged.

    The envelope follows the harmonic peaks of voices up to ``max_f0`` Hz; the fine structure
    (magnitude over envelope) and the phase stay where they are.
    """
    import torch

    if factor == 1.0:
        return wav
    spec = _stft(wav)
    mag = spec.abs()
    env = spectral_envelope(mag, int(round(max_f0 / (sample_rate / N_FFT))))
    bins = mag.shape[0]
    src = torch.arange(bins, dtype=torch.float32) / factor  # the envelope at f/factor lands on f
    lo = src.floor().clamp(0, bins - 1).long()
    hi = (lo + 1).clamp(max=bins - 1)
    frac = (src - lo).clamp(0, 1)[:, None]
    warped = env[lo] * (1 - frac) + env[hi] * frac
    warped = torch.where((src <= bins - 1)[:, None], warped, env[-1:].expand_as(warped))
    out = _istft(torch.polar(mag / env * warped, spec.angle()), wav.shape[-1])
    return _at_level_of(out, wav)


def stretch_tempo(wav: np.ndarray, rate: float) -> np.ndarray:
    """Phase-vocoder time stretch: ``rate`` > 1 is faster (shorter), pitch unchanged."""
    import torch
    import torchaudio.functional as AF

    if rate == 1.0:
        return wav
    spec = _stft(wav)
    advance = torch.linspace(0, math.pi * HOP, spec.shape[0])[:, None]  # expected phase advance per hop, per bin
    stretched = AF.phase_vocoder(spec, rate, advance)
    return _istft(stretched, int(round(wav.shape[-1] / rate)))


def random_eq(wav: np.ndarray, rng, max_db: float, sample_rate: int, bells: int = 3) -> np.ndarray:
    """A smooth random EQ: ``bells`` Gaussian bumps over log frequency, each of gain in [-max_db, max_db] dB."""
    if max_db <= 0:
        return wav
    n = wav.shape[-1]
    freqs = np.fft.rfftfreq(n, 1 / sample_rate)
    logf = np.log(np.maximum(freqs, 20.0))
    gain_db = np.zeros_like(freqs)
    for _ in range(bells):
        centre = rng.uniform(np.log(100.0), np.log(sample_rate / 2))
        width = rng.uniform(0.3, 1.2)  # in natural-log units of frequency: about half to two octaves
        gain_db += rng.uniform(-max_db, max_db) * np.exp(-0.5 * ((logf - centre) / width) ** 2)
    gain_db = np.clip(gain_db, -max_db, max_db)
    return np.fft.irfft(np.fft.rfft(wav) * 10 ** (gain_db / 20), n).astype(np.float32)


def colored_noise(n: int, rng, slope: float) -> np.ndarray:
    """Noise whose power falls as ``f ** -slope`` (0 white, 1 pink, 2 brown), unit RMS."""
    spectrum = np.fft.rfft(np.asarray(rng.uniform(-1, 1, n), dtype=np.float64))
    f = np.arange(spectrum.shape[0], dtype=np.float64)
    f[0] = 1.0
    noise = np.fft.irfft(spectrum / f ** (slope / 2), n)
    return (noise / (_rms(noise) + 1e-12)).astype(np.float32)


def add_noise(mix: np.ndarray, rng, snr_db: tuple[float, float]) -> np.ndarray:
    """``mix`` plus coloured noise at an SNR drawn from ``snr_db`` (dB, relative to the mixture's power)."""
    noise = colored_noise(mix.shape[-1], rng, float(rng.uniform(0.0, 2.0)))
    power = float(np.mean(mix ** 2))
    snr = float(rng.uniform(*snr_db))
    return (mix + noise * math.sqrt(power / 10 ** (snr / 10))).astype(np.float32)


def reverberate(wav: np.ndarray, rir: np.ndarray) -> np.ndarray:
    """``wav`` convolved with ``rir`` (FFT), cut to the input's length, at the input's RMS."""
    n = wav.shape[-1] + rir.shape[-1] - 1
    size = 1 << (n - 1).bit_length()
    out = np.fft.irfft(np.fft.rfft(wav, size) * np.fft.rfft(rir, size), size)[: wav.shape[-1]]
    return _at_level_of(out, wav)


class RoomBank:
    """Room impulse responses of ``rooms`` random shoebox rooms, ``positions`` talker positions each.

    Rooms are 3-10 m x 3-8 m x 2.5-4 m with RT60 drawn in ``rt60`` seconds (pyroomacoustics'
    inverse Sabine formula gives the wall absorption; image-source order capped at ``max_order``);
    one microphone and the talkers at least 0.5 m from the walls. Built once, from ``seed``.
    """

    def __init__(self, sample_rate: int, rooms: int = 16, positions: int = 4, rt60=(0.15, 0.6), seed: int = 0,
                 max_order: int = 12, max_seconds: float = 0.5):
        import pyroomacoustics as pra

        rng = np.random.default_rng(seed)
        self.rirs: list[list[np.ndarray]] = []
        self.rt60s: list[float] = []
        for _ in range(rooms):
            dims = np.array([rng.uniform(3, 10), rng.uniform(3, 8), rng.uniform(2.5, 4)])
            rt = float(rng.uniform(*rt60))
            absorption, order = pra.inverse_sabine(rt, dims)
            room = pra.ShoeBox(dims, fs=sample_rate, materials=pra.Material(absorption),
                               max_order=min(order, max_order))
            room.add_microphone(rng.uniform(0.5, dims - 0.5))
            for _ in range(positions):
                room.add_source(rng.uniform(0.5, dims - 0.5))
            room.compute_rir()
            keep = int(max_seconds * sample_rate)
            self.rirs.append([np.asarray(room.rir[0][k][:keep], dtype=np.float32) for k in range(positions)])
            self.rt60s.append(rt)

    def draw(self, rng, count: int) -> list[np.ndarray]:
        """``count`` impulse responses of one random room, at distinct positions when it has enough."""
        room = self.rirs[int(rng.integers(0, len(self.rirs)))]
        order = [int(rng.integers(0, len(room))) for _ in range(count)]
        if count <= len(room):
            order = list(np.argsort([float(rng.uniform(0, 1)) for _ in room])[:count])
        return [room[k] for k in order]


@dataclass
class Augmentation:
    """What dynamic mixing applies (every probability in [0, 1]; zero switches a step off).

    Per source: formant shift by up to +-``formant`` (relative), tempo change by up to +-``tempo``,
    random EQ of up to +-``eq_db`` dB, each with probability ``p_voice``; reverberation with
    probability ``p_reverb`` (one room per mixture). Per mixture: noise at an SNR in ``noise_snr_db``
    with probability ``p_noise``.
    """

    sample_rate: int
    formant: float = 0.0
    tempo: float = 0.0
    eq_db: float = 0.0
    p_voice: float = 0.5
    p_reverb: float = 0.0
    p_noise: float = 0.0
    noise_snr_db: tuple[float, float] = (10.0, 30.0)
    rooms: RoomBank | None = None  # built on the first reverberated mixture when not given

    @property
    def active(self) -> bool:
        return bool(self.formant or self.tempo or self.eq_db or self.p_reverb or self.p_noise)

    def voice(self, wav: np.ndarray, rng) -> np.ndarray:
        """One source's formant shift, tempo change and EQ (each drawn on its own)."""
        if self.tempo and rng.uniform(0, 1) < self.p_voice:
            wav = stretch_tempo(wav, 1 + float(rng.uniform(-self.tempo, self.tempo)))
        if self.formant and rng.uniform(0, 1) < self.p_voice:
            wav = shift_formants(wav, 1 + float(rng.uniform(-self.formant, self.formant)), self.sample_rate)
        if self.eq_db and rng.uniform(0, 1) < self.p_voice:
            wav = random_eq(wav, rng, self.eq_db, self.sample_rate)
        return wav

    def room(self, sources: list[np.ndarray], rng) -> list[np.ndarray]:
        """All sources of a mixture in one random room (each at its own position), or as they are."""
        if not self.p_reverb or rng.uniform(0, 1) >= self.p_reverb:
            return sources
        if self.rooms is None:
            self.rooms = RoomBank(self.sample_rate)
        return [reverberate(s, rir) for s, rir in zip(sources, self.rooms.draw(rng, len(sources)))]

    def noise(self, mix: np.ndarray, rng) -> np.ndarray:
        if not self.p_noise or rng.uniform(0, 1) >= self.p_noise:
            return mix
        return add_noise(mix, rng, self.noise_snr_db)


__all__ = ["Augmentation", "RoomBank", "add_noise", "colored_noise", "random_eq", "reverberate", "shift_formants",
           "spectral_envelope", "stretch_tempo"]
