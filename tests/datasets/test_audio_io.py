"""Audio I/O: round trips, resampling, and every error message of read_audio."""
import numpy as np
import pytest
import soundfile as sf

from sigplex.core.errors import UserError
from sigplex.datasets.audio import read_audio, resample, write_audio


def tone(n=8000, sr=8000, f=440.0, amp=0.5):
    return (amp * np.sin(2 * np.pi * f * np.arange(n) / sr)).astype(np.float32)


def test_write_then_read_round_trip(tmp_path):
    wav = tone()
    path = write_audio(tmp_path / "a.wav", wav, 8000)
    back = read_audio(path, 8000)
    assert back.dtype == np.float32 and back.shape == wav.shape
    np.testing.assert_allclose(back, wav, atol=1e-7)  # 32-bit float WAV is lossless
    flac = write_audio(tmp_path / "a.flac", wav, 8000)
    np.testing.assert_allclose(read_audio(flac, 8000), wav, atol=1 / 2**15)


def test_write_never_overwrites_and_leaves_no_temp_file(tmp_path):
    path = write_audio(tmp_path / "a.wav", tone(), 8000)
    with pytest.raises(UserError, match="already exists"):
        write_audio(path, tone(amp=0.1), 8000)
    np.testing.assert_allclose(read_audio(path, 8000), tone(), atol=1e-7)
    write_audio(path, tone(amp=0.1), 8000, overwrite=True)
    assert float(np.abs(read_audio(path, 8000)).max()) < 0.11
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.wav"]


def test_wrong_sample_rate_is_an_error_offering_resampling(tmp_path):
    path = tmp_path / "hi.wav"
    sf.write(path, tone(16000, 16000), 16000)
    with pytest.raises(UserError) as err:
        read_audio(path, 8000, field="mixture")
    msg = str(err.value)
    assert str(path) in msg and "mixture" in msg and "16000 Hz" in msg and "8000 Hz" in msg
    assert "--set data.resample=true" in msg
    out = read_audio(path, 8000, resample_to_rate=True)
    assert out.shape == (8000,)
    # the 440 Hz tone survives resampling: its spectrum peaks at 440 Hz
    spec = np.abs(np.fft.rfft(out))
    assert abs(np.argmax(spec) * 8000 / len(out) - 440) < 2


def test_resample_changes_length_by_the_rate_ratio():
    assert resample(tone(8000), 8000, 16000).shape == (16000,)
    x = tone(100)
    assert resample(x, 8000, 8000) is x


def test_multichannel_where_mono_is_expected(tmp_path):
    path = tmp_path / "stereo.wav"
    sf.write(path, np.stack([tone(), tone()], 1), 8000)
    with pytest.raises(UserError, match=r"stereo\.wav: source_1: has 2 channels; expected mono"):
        read_audio(path, 8000, field="source_1")
    assert read_audio(path, 8000, mono=False).shape == (2, 8000)


def test_empty_file(tmp_path):
    path = tmp_path / "empty.wav"
    sf.write(path, np.zeros(0, dtype=np.float32), 8000)
    with pytest.raises(UserError, match=r"empty\.wav: audio: holds no samples"):
        read_audio(path, 8000)


def test_clipped_file(tmp_path):
    path = tmp_path / "clipped.wav"
    sf.write(path, np.clip(tone(amp=2.0), -1, 1), 8000, subtype="PCM_16")
    with pytest.raises(UserError, match=r"clipped\.wav: audio: .*% of samples are clipped .* data\.max_clipped"):
        read_audio(path, 8000)
    assert read_audio(path, 8000, max_clipped=None).shape == (8000,)
    assert read_audio(path, 8000, max_clipped=1.0).shape == (8000,)


def test_missing_and_unreadable_files(tmp_path):
    with pytest.raises(UserError, match=r"nope\.wav: audio: file not found"):
        read_audio(tmp_path / "nope.wav")
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio at all")
    with pytest.raises(UserError, match=r"bad\.wav: audio: not a readable audio file"):
        read_audio(bad)


@pytest.mark.parametrize("rates", [(16000, 8000), (8000, 16000), (44100, 8000), (8000, 44100), (22050, 16000)])
def test_long_signals_resample_block_by_block_exactly_as_one_call(rates):
    import torch
    import torchaudio.functional as AF

    x = np.random.default_rng(0).standard_normal((2, 12345)).astype(np.float32)
    whole = AF.resample(torch.from_numpy(x), *rates).numpy()
    blocks = resample(x, *rates, block=1000)  # 13 blocks, each with its own context
    assert blocks.shape == whole.shape and blocks.dtype == np.float32
    np.testing.assert_allclose(blocks, whole, atol=1e-6)


def test_read_downmixed_averages_channels_block_by_block(tmp_path):
    from sigplex.datasets.audio import read_downmixed

    left, right = tone(5000), tone(5000, f=300.0, amp=0.25)
    sf.write(tmp_path / "st.wav", np.stack([left, right], 1), 16000, subtype="FLOAT")
    wav, rate, channels = read_downmixed(tmp_path / "st.wav", block=777)
    assert (rate, channels, wav.dtype) == (16000, 2, np.float32)
    np.testing.assert_allclose(wav, (left + right) / 2, atol=1e-7)
    sf.write(tmp_path / "mono.flac", left, 8000)
    wav, rate, channels = read_downmixed(tmp_path / "mono.flac")
    assert (rate, channels) == (8000, 1) and np.abs(wav - left).max() < 1 / 2**14
    sf.write(tmp_path / "empty.wav", np.zeros((0, 2), dtype=np.float32), 8000)
    with pytest.raises(UserError, match=r"empty\.wav: input: holds no samples"):
        read_downmixed(tmp_path / "empty.wav", field="input")
    with pytest.raises(UserError, match=r"nope\.wav: input: file not found"):
        read_downmixed(tmp_path / "nope.wav", field="input")


def test_trim_silence_keeps_the_speech_between_quiet_edges():
    from sigplex.datasets.audio import trim_silence

    rng = np.random.default_rng(0)
    speech = (0.3 * rng.standard_normal(1600)).astype(np.float32)
    hiss = (1e-4 * rng.standard_normal(800)).astype(np.float32)  # -70 dB under the speech
    out = trim_silence(np.concatenate([hiss, speech, hiss]), frame=160)
    assert len(out) == 1600 and np.array_equal(out, speech)
    assert trim_silence(np.concatenate([hiss, speech]), threshold_db=-80.0, frame=160).size == 2400
    assert trim_silence(np.zeros(100, np.float32), frame=160).size == 0  # shorter than a frame
