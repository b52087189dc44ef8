"""predict around the model: any sample rate (resampled both ways), stereo downmixed, each output's level reported."""
import numpy as np
import pytest
import soundfile as sf
import torch
from torch import nn

from sigplex.core.config import resolve_config
from sigplex.core.task import Prepared
from sigplex.plugins.speech_sep.config import SeparationConfig
from sigplex.plugins.speech_sep.recording import SILENT_DB, dbfs, output_levels
from sigplex.plugins.speech_sep.task import SeparationTask


class Split(nn.Module):
    """A stand-in separator: output k is the input times gains[k] -- so every step around it can be checked."""

    def __init__(self, gains):
        super().__init__()
        self.register_buffer("gains", torch.tensor(gains, dtype=torch.float32))

    def forward(self, x):
        return x[:, None, :] * self.gains[None, :, None]


def prepared(rate=8000, **extra):
    over = {"data.chunk_seconds": 1.0, "data.overlap_seconds": 0.25, **extra}
    cfg = resolve_config(SeparationConfig, overrides=[f"{k}={v}" for k, v in over.items()])
    return Prepared(config=cfg, state={"sample_rate": rate})


def tone(freq, rate, seconds, amp=0.3):
    t = np.arange(int(round(seconds * rate))) / rate
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


@pytest.mark.parametrize("rate", [16000, 44100, 22050])
def test_any_rate_is_resampled_to_the_model_and_back_at_the_input_length(tmp_path, rate):
    x = tone(440, rate, 2.3) + tone(1234, rate, 2.3, 0.1)  # below the model's 4 kHz band edge
    sf.write(tmp_path / "in.wav", x, rate, subtype="FLOAT")
    seen = []

    class Recording(Split):
        def forward(self, x):
            seen.append(x.shape[-1])
            return super().forward(x)

    out = SeparationTask().predict(Recording([0.75, 0.25]), tmp_path / "in.wav", prepared())
    assert out.sample_rate == rate and out.sources.shape == (2, len(x)) and out.sources.dtype == np.float32
    assert max(seen) <= 8000  # the model saw 8 kHz chunks of 1 s
    inner = slice(rate // 10, -rate // 10)  # away from the resampler's edge transients
    np.testing.assert_allclose(out.sources[0][inner], 0.75 * x[inner], atol=3e-3)
    np.testing.assert_allclose(out.sources[1][inner], 0.25 * x[inner], atol=1e-3)
    assert out.provenance["input_sample_rate"] == rate and out.provenance["model_sample_rate"] == 8000
    assert out.provenance["resampled"] is True


def test_model_rate_input_is_not_resampled(tmp_path):
    x = tone(300, 8000, 1.7)
    sf.write(tmp_path / "in.wav", x, 8000, subtype="FLOAT")
    out = SeparationTask().predict(Split([1.0, 0.5]), tmp_path / "in.wav", prepared())
    np.testing.assert_allclose(out.sources, np.stack([x, 0.5 * x]), atol=1e-6)
    assert out.provenance["resampled"] is False and out.provenance["channels"] == "mono"


def test_stereo_is_downmixed_to_the_mean_of_its_channels(tmp_path):
    left, right = tone(300, 16000, 1.2), tone(700, 16000, 1.2, 0.2)
    sf.write(tmp_path / "st.wav", np.stack([left, right], 1), 16000, subtype="FLOAT")
    sf.write(tmp_path / "mono.wav", (left + right) / 2, 16000, subtype="FLOAT")
    task, model, prep = SeparationTask(), Split([0.6, 0.4]), prepared()
    stereo, mono = task.predict(model, tmp_path / "st.wav", prep), task.predict(model, tmp_path / "mono.wav", prep)
    np.testing.assert_allclose(stereo.sources, mono.sources, atol=1e-6)
    assert stereo.sources.shape == (2, len(left))  # one mono file per talker, not per channel
    assert stereo.provenance["input_channels"] == 2 and stereo.provenance["channels"] == "downmixed to mono (mean)"
    sf.write(tmp_path / "six.wav", np.stack([left] * 6, 1), 16000, subtype="FLOAT")
    six = task.predict(model, tmp_path / "six.wav", prep)
    assert six.provenance["input_channels"] == 6 and six.sources.shape == (2, len(left))


def test_a_single_talker_shows_up_as_one_silent_output(tmp_path):
    x = tone(220, 8000, 1.0)
    sf.write(tmp_path / "one.wav", x, 8000, subtype="FLOAT")
    out = SeparationTask().predict(Split([1.0, 0.001]), tmp_path / "one.wav", prepared())
    p = out.provenance
    assert p["silent_outputs"] == ["spk2"]
    np.testing.assert_allclose(p["output_rms_dbfs"], [dbfs(x), dbfs(0.001 * x)], atol=0.01)
    np.testing.assert_allclose(p["output_db_below_loudest"], [0.0, 60.0], atol=0.01)
    np.testing.assert_allclose(p["input_rms_dbfs"], dbfs(x), atol=0.01)
    two = SeparationTask().predict(Split([0.6, 0.4]), tmp_path / "one.wav", prepared())
    assert two.provenance["silent_outputs"] == []


def test_output_levels_flag_outputs_far_below_the_loudest_or_digitally_silent():
    loud = np.full(100, 0.5, dtype=np.float32)
    levels = output_levels(np.stack([loud, loud * 10 ** (-(SILENT_DB - 1) / 20), loud * 10 ** (-(SILENT_DB + 1) / 20)]))
    assert levels["silent_outputs"] == ["spk3"]
    assert output_levels(np.zeros((2, 50), dtype=np.float32))["silent_outputs"] == ["spk1", "spk2"]
    x = np.random.default_rng(1).standard_normal((2, 1000)).astype(np.float32)
    np.testing.assert_allclose(dbfs(x, block=7), 10 * np.log10(np.mean(x.astype(np.float64) ** 2, axis=-1)), atol=1e-9)


def test_in_memory_waveforms_are_taken_at_the_model_rate():
    x = tone(500, 16000, 0.5)
    out = SeparationTask().predict(Split([1.0, 0.0]), torch.from_numpy(x)[None], prepared(rate=16000))
    assert out.sample_rate == 16000 and out.provenance["resampled"] is False
    np.testing.assert_allclose(np.asarray(out)[0], x, atol=1e-6)
