"""Augmentations of dynamic mixing, each checked against what it claims to change and to keep."""
import numpy as np
import pytest

from sigplex.datasets.audio import DynamicMixDataset
from sigplex.datasets.audio.augment import (
    Augmentation,
    RoomBank,
    add_noise,
    colored_noise,
    random_eq,
    reverberate,
    shift_formants,
    stretch_tempo,
)

SR = 8000


def vowel(f0=120.0, formant=700.0, seconds=1.0):
    """Harmonics of ``f0`` shaped by one formant bump at ``formant`` Hz."""
    t = np.arange(int(SR * seconds)) / SR
    ks = np.arange(1, int(SR / 2 / f0))
    amps = 0.05 + np.exp(-0.5 * ((ks * f0 - formant) / 250.0) ** 2)
    return (amps[:, None] * np.sin(2 * np.pi * ks[:, None] * f0 * t)).sum(0).astype(np.float32)


def harmonic_amplitudes(wav, f0=120.0):
    spec = np.abs(np.fft.rfft(wav * np.hanning(len(wav))))
    freqs = np.fft.rfftfreq(len(wav), 1 / SR)
    ks = np.arange(1, int(SR / 2 / f0))
    return ks, np.array([spec[np.argmin(np.abs(freqs - k * f0))] for k in ks]), spec, freqs


@pytest.mark.parametrize("factor", [0.85, 1.2])
def test_formant_shift_moves_the_envelope_and_keeps_the_pitch(factor):
    wav = vowel()
    ks, before, spec0, freqs0 = harmonic_amplitudes(wav)
    shifted = shift_formants(wav, factor, SR)
    _, after, spec, freqs = harmonic_amplitudes(shifted)

    def centroid(a):  # of the harmonics' energy: where the formant is
        return (ks * a ** 2).sum() / (a ** 2).sum()

    moved = centroid(after) / centroid(before)
    assert min(1 + 0.5 * (factor - 1), factor) <= moved <= max(1 + 0.5 * (factor - 1), factor)  # most of the way
    def on_harmonics(spec, freqs):  # share of the energy in the bins of the 120 Hz harmonics
        return sum(spec[np.abs(freqs - k * 120).argmin()] ** 2 for k in ks) / np.sum(spec ** 2)

    # the pitch did not move: as much energy sits on the harmonics as before (a resampled copy keeps ~none)
    assert on_harmonics(spec, freqs) >= 0.8 * on_harmonics(spec0, freqs0) and shifted.shape == wav.shape
    resampled = np.interp(np.arange(len(wav)) * factor, np.arange(len(wav)), wav).astype(np.float32)
    assert on_harmonics(*harmonic_amplitudes(resampled)[2:]) < 0.5 * on_harmonics(spec0, freqs0)
    assert np.sqrt(np.mean(shifted ** 2)) == pytest.approx(np.sqrt(np.mean(wav ** 2)), rel=1e-3)
    assert shift_formants(wav, 1.0) is wav


@pytest.mark.parametrize("rate", [0.9, 1.15])
def test_tempo_stretch_changes_length_not_pitch(rate):
    t = np.arange(SR) / SR
    tone = np.sin(2 * np.pi * 440 * t).astype(np.float32)
    out = stretch_tempo(tone, rate)
    assert out.shape == (round(SR / rate),)
    freqs = np.fft.rfftfreq(len(out), 1 / SR)
    assert abs(freqs[np.abs(np.fft.rfft(out * np.hanning(len(out)))).argmax()] - 440) < 3


def test_random_eq_stays_within_its_bounds_and_does_something():
    rng = np.random.default_rng(3)
    noise = np.random.default_rng(0).standard_normal(SR).astype(np.float32)
    out = random_eq(noise, rng, 6.0, SR)
    gain_db = 20 * np.log10(np.abs(np.fft.rfft(out)) / np.abs(np.fft.rfft(noise)))
    assert gain_db.max() <= 6.0 + 1e-3 and gain_db.min() >= -6.0 - 1e-3
    assert np.ptp(gain_db) > 1.0  # not flat
    assert random_eq(noise, rng, 0.0, SR) is noise


def test_colored_noise_slopes():
    rng = np.random.default_rng(0)
    freqs = np.fft.rfftfreq(1 << 16, 1 / SR)

    def octave_ratio(slope):  # power in 1-2 kHz over power in 125-250 Hz
        p = np.abs(np.fft.rfft(colored_noise(1 << 16, rng, slope))) ** 2
        return p[(freqs >= 1000) & (freqs < 2000)].sum() / p[(freqs >= 125) & (freqs < 250)].sum()

    assert octave_ratio(0.0) == pytest.approx(8.0, rel=0.15)   # white: power grows with bandwidth
    assert octave_ratio(1.0) == pytest.approx(1.0, rel=0.15)   # pink: equal power per octave
    assert octave_ratio(2.0) == pytest.approx(1 / 8, rel=0.15)  # brown


class FixedDraws:
    """An rng whose uniform draws are given in order (integers from numpy)."""

    def __init__(self, *draws):
        self.draws, self.np = list(draws), np.random.default_rng(0)

    def uniform(self, low, high, size=None):
        return self.np.uniform(low, high, size) if size is not None else self.draws.pop(0)

    def integers(self, low, high=None):
        return self.np.integers(low, high)


def test_noise_is_added_at_the_drawn_snr():
    mix = vowel()
    noisy = add_noise(mix, FixedDraws(1.0, 12.5), (10.0, 30.0))  # slope 1, SNR 12.5 dB
    noise = noisy - mix
    assert 10 * np.log10(np.mean(mix ** 2) / np.mean(noise ** 2)) == pytest.approx(12.5, abs=0.01)


def test_reverberation_is_a_convolution_at_the_same_level():
    wav = vowel(seconds=0.5)
    rir = np.random.default_rng(1).standard_normal(300).astype(np.float32) * np.exp(-np.arange(300) / 60)
    out = reverberate(wav, rir)
    direct = np.convolve(wav, rir)[: len(wav)]
    np.testing.assert_allclose(out, direct * np.sqrt(np.mean(wav ** 2) / np.mean(direct ** 2)), atol=1e-4)


def test_room_bank_gives_decaying_responses_at_distinct_positions():
    bank = RoomBank(SR, rooms=3, positions=3, rt60=(0.2, 0.5), seed=0)
    assert all(0.2 <= rt <= 0.5 for rt in bank.rt60s)
    for rirs in bank.rirs:
        for rir in rirs:
            energy = rir ** 2
            peak = int(energy.argmax())
            assert 0 < peak < SR * 0.05  # the direct path: within ~17 m
            quarter = len(rir) // 4
            assert energy[-quarter:].sum() < 0.05 * energy[:quarter].sum()  # it decays
    drawn = bank.draw(np.random.default_rng(0), 3)
    assert len({id(r) for r in drawn}) == 3


def test_dynamic_mixing_with_every_step_keeps_targets_clean_and_is_reproducible():
    rng = np.random.default_rng(0)
    speakers = {f"s{k}": [vowel(f0=100 + 30 * k, formant=500 + 200 * k, seconds=1.2) * rng.uniform(0.5, 1)]
                for k in range(3)}
    aug = Augmentation(SR, formant=0.1, tempo=0.1, eq_db=6, p_voice=1.0, p_reverb=1.0, p_noise=1.0,
                       rooms=RoomBank(SR, rooms=2, positions=2, seed=1))
    ds = DynamicMixDataset(speakers, 2, SR, 4, seed=5, augment=aug, gain_db=5, sample_rate=SR)
    a, b = ds[1], ds[1]
    np.testing.assert_array_equal(a["mix"].numpy(), b["mix"].numpy())  # seeded per index
    residual = (a["mix"] - a["sources"].sum(0)).numpy()
    assert np.mean(residual ** 2) > 0  # the noise is in the mixture only
    snr = 10 * np.log10(np.mean(a["sources"].sum(0).numpy() ** 2) / np.mean(residual ** 2))
    assert 10 - 0.1 <= snr <= 30 + 0.1
    clean = DynamicMixDataset(speakers, 2, SR, 4, seed=5, augment=Augmentation(SR, eq_db=6, p_voice=1.0))
    item = clean[0]
    np.testing.assert_allclose(item["mix"].numpy(), item["sources"].sum(0).numpy(), atol=1e-6)
