"""The shipped default model: small, declared through the v2 contract, used by predict with no --checkpoint."""
import json

import numpy as np
import pytest
import soundfile as sf
import torch

import sigplex.core as sp
from sigplex.core.config import resolve_config
from sigplex.plugins.speech_sep.config import SeparationConfig
from sigplex.plugins.speech_sep.losses import separation_metrics
from sigplex.plugins.speech_sep.pretrained import HERE, RELATIVE_PATH, export
from sigplex.plugins.speech_sep.task import SeparationTask

WEIGHTS = HERE / RELATIVE_PATH
# measured with the shipped weights: 3.5 dB on held_out_mixture(), 2.8 dB mean over the first 8 test mixtures;
# an identity or silent output scores <= 0 dB, so these floors catch a broken model, resampler or loader
SI_SDRI_FLOOR = 1.5
MEAN_FLOOR = 2.0


def held_out_mixture(seconds: float = 3.0):
    """A fixed 8 kHz mixture of the embedded test voices (never trained on), its sources."""
    task = SeparationTask()
    cfg = resolve_config(SeparationConfig, overrides=[f"data.eval_seconds={seconds}"])
    item = task.build_data(cfg, None).test[5]
    return item["mix"].numpy(), item["sources"].numpy()


def test_shipped_weights_are_small_and_declared():
    shipped = SeparationTask.pretrained
    assert shipped is not None and shipped.path() == WEIGHTS
    assert WEIGHTS.is_file() and WEIGHTS.stat().st_size <= 5 * 2 ** 20
    assert shipped.load_state()["sample_rate"] == 8000
    assert "Asterisk" in shipped.description and shipped.license


def test_shipped_model_separates_held_out_synthetic_voices():
    task = SeparationTask()
    predictor = sp.load_pretrained("speech_sep")
    assert predictor.source.startswith("pretrained:") and predictor.prepared.state["sample_rate"] == 8000
    test = task.build_data(resolve_config(SeparationConfig), None).test
    scores = []
    for i in range(8):
        item = test[i]
        est = torch.from_numpy(np.asarray(predictor.predict(item["mix"].numpy())))
        scores.append(float(separation_metrics(est[None], item["sources"][None], item["mix"][None])["si_sdri"][0]))
    assert np.mean(scores) > MEAN_FLOOR, scores


def test_predict_without_checkpoint_separates_with_the_shipped_model_and_says_so(tmp_path):
    """16 kHz stereo in, 16 kHz out, the shipped model named in the sidecar; it separates held-out voices."""
    from helpers import run_cli

    from sigplex.datasets.audio import resample

    mix, sources = held_out_mixture()
    mix16 = resample(mix, 8000, 16000)
    sf.write(tmp_path / "mix.wav", np.stack([mix16, mix16], 1), 16000, subtype="FLOAT")
    res = run_cli("predict", "--plugin", "speech_sep", "--input", tmp_path / "mix.wav", "--output", tmp_path / "out")
    assert res.returncode == 0, res.stderr
    outs = [tmp_path / "out" / f"mix_spk{k}.wav" for k in (1, 2)]
    est = np.stack([sf.read(p, dtype="float32")[0] for p in outs])
    assert sf.info(outs[0]).samplerate == 16000 and est.shape == (2, len(mix16))
    sidecar = json.loads(outs[0].with_name(outs[0].name + ".json").read_text())
    assert "pretrained" in json.dumps(sidecar) and RELATIVE_PATH.split("/")[-1] in json.dumps(sidecar)
    est8 = torch.from_numpy(np.stack([resample(e, 16000, 8000)[: len(mix)] for e in est]))
    m = separation_metrics(est8[None], torch.from_numpy(sources)[None], torch.from_numpy(mix)[None])
    assert float(m["si_sdri"][0]) > SI_SDRI_FLOOR, float(m["si_sdri"][0])


def test_a_folder_of_wav_flac_ogg_and_mp3_files_is_predicted_whole(tmp_path):
    """Compressed recordings (as phones and meeting tools save them) are inputs too, decoded by libsndfile."""
    from helpers import run_cli

    if not {"MP3", "OGG"} <= set(sf.available_formats()):
        pytest.skip(f"libsndfile {sf.__libsndfile_version__} reads no MP3/OGG")
    mix, _ = held_out_mixture()
    folder = tmp_path / "in"
    folder.mkdir()
    for name, fmt, subtype in [("a.wav", "WAV", "PCM_16"), ("b.flac", "FLAC", "PCM_16"), ("c.ogg", "OGG", "VORBIS"),
                               ("d.mp3", "MP3", None)]:
        sf.write(folder / name, mix, 8000, format=fmt, subtype=subtype)
    res = run_cli("predict", "--plugin", "speech_sep", "--input", folder, "--output", tmp_path / "out")
    assert res.returncode == 0, res.stderr
    assert "predicted 4, already done 0, failed 0 of 4 inputs" in res.stdout + res.stderr
    for stem in "abcd":
        est = sf.read(tmp_path / "out" / f"{stem}_spk1.wav", dtype="float32")[0]
        assert abs(len(est) - len(mix)) <= 2000 and np.abs(est).max() > 0      # a decoder may pad an MP3 a little


def test_export_copies_the_runs_best_checkpoint_and_state(tmp_path):
    """The exporter the recipe names: the best (not the last) checkpoint's weights and the prepared state."""
    from safetensors.torch import load_file

    from sigplex.core.run import save_checkpoint, write_best

    run = tmp_path / "run"
    for step in (10, 20):
        save_checkpoint(run, step, {"w": torch.full((3,), float(step))}, {"step": step})
    write_best(run, 10, "si_sdri", 5.0)
    (run / "prepared.json").write_text(json.dumps({"contract": 2, "values": {"sample_rate": 8000}, "arrays": {}}))
    out = export(run, tmp_path / "pkg")
    assert out == tmp_path / "pkg" / RELATIVE_PATH
    assert torch.equal(load_file(out)["w"], torch.full((3,), 10.0))
    state = json.loads((tmp_path / "pkg" / "weights" / "prepared.json").read_text())
    assert state["values"] == {"sample_rate": 8000}
