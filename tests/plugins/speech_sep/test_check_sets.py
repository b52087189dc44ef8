"""The real-speech check-set builders, run on recordings made here in the packages' formats."""
import json

import numpy as np
import pytest
import soundfile as sf

from sigplex.plugins.speech_sep.data import make_codec2_mixtures as codec2
from sigplex.plugins.speech_sep.data.make_real_mixtures import write_mixture

SR = 8000


def _talker(seed: int, seconds: float) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    return (0.3 * np.sin(2 * np.pi * (120 + 40 * seed) * t) * (0.6 + 0.4 * rng.random(t.size))).astype(np.float32)


def test_write_mixture_sets_sir_and_peak(tmp_path):
    a, b = _talker(0, 3.0), _talker(1, 5.0) * 0.1
    record = write_mixture(tmp_path, "m0", a, b, sir=5.0, seconds=4.0)
    s1, s2, mix = (sf.read(tmp_path / sub / "m0.wav")[0] for sub in ("s1", "s2", "mix"))
    assert record["seconds"] == 3.0 and len(mix) == 3 * SR  # cut to the shorter talker
    np.testing.assert_allclose(10 * np.log10(np.mean(s1 ** 2) / np.mean(s2 ** 2)), 5.0, atol=1e-4)
    np.testing.assert_allclose(np.abs(mix).max(), 10 ** (-1 / 20), rtol=1e-5)
    np.testing.assert_allclose(mix, s1 + s2, atol=1e-6)


def test_codec2_check_set_from_package_layout(tmp_path, monkeypatch):
    root = tmp_path / "codec2"
    (root / "raw").mkdir(parents=True)
    (root / "wav").mkdir()
    for k, rel in enumerate(codec2.RECORDINGS.values()):
        wav = _talker(k, 17.0)  # 4 segments: enough for every pair a talker is in
        if rel.endswith(".raw"):
            (wav * 32767).astype("<i2").tofile(root / rel)
        else:  # one 16 kHz WAV, as speech_orig_16k.wav is
            sr = 2 * SR if "16k" in rel else SR
            sf.write(root / rel, np.repeat(wav, 2) if sr == 2 * SR else wav, sr, subtype="PCM_16")
    silent = np.zeros(4 * SR, np.float32)  # a silent segment of ve9qrp is skipped
    (np.concatenate([silent, _talker(0, 17.0)]) * 32767).astype("<i2").tofile(root / "raw/ve9qrp.raw")
    codec2.main([str(root), str(tmp_path / "out"), "--per-pair", "1"])
    index = json.loads((tmp_path / "out" / "mixtures.json").read_text())
    assert index["sample_rate"] == SR and len(index["mixtures"]) == len(codec2.PAIRS)
    first = index["mixtures"][0]
    assert first["s1"] == "raw/ve9qrp.raw segment 0" and first["seconds"] == 4.0
    mix, sr = sf.read(tmp_path / "out" / "mix" / f"{first['name']}.wav")
    assert sr == SR and len(mix) == 4 * SR and np.abs(mix).max() > 0.5  # the silent segment was skipped
    names = [m["name"] for m in index["mixtures"]]
    assert len(set(names)) == len(names)


def test_codec2_missing_file_is_one_clear_error(tmp_path):
    with pytest.raises(SystemExit, match="ve9qrp.raw: missing; unpack codec2-examples"):
        codec2.main([str(tmp_path), str(tmp_path / "out")])
