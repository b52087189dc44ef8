"""The separate task: config, embedded data, training improves SI-SDRi, predict/write, errors."""
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

import sigplex.core as sp
from sigplex.core.config import resolve_config
from sigplex.core.errors import UserError
from sigplex.plugins.speech_sep import mossformer2  # noqa: F401  (registers the model, as the task spec does)
from sigplex.plugins.speech_sep.config import SeparationConfig
from sigplex.plugins.speech_sep.corpus import CORPUS, load_corpus
from sigplex.plugins.speech_sep.task import SeparationTask

TINY = {"model.dim": 32, "model.num_layers": 2, "model.group_size": 32, "model.query_key_dim": 16,
        "model.rotary_dim": 8, "model.fsmn_inner": 16, "model.fsmn_kernel": 9,
        "data.segment_seconds": 0.5, "data.eval_seconds": 1.0, "data.val_items": 8, "data.test_items": 4,
        "data.chunk_seconds": 1.0, "data.overlap_seconds": 0.25}


def config(**extra):
    items = {**TINY, **extra}
    return resolve_config(SeparationConfig, overrides=[f"{k}={v}" for k, v in items.items()])


def test_embedded_corpus_is_small_8khz_mono_with_held_out_voices():
    meta = json.loads((CORPUS / "voices.json").read_text())
    files = sorted(CORPUS.glob("*.flac"))
    assert sum(f.stat().st_size for f in files) < 3_000_000
    assert {sf.info(f).samplerate for f in files} == {8000} and {sf.info(f).channels for f in files} == {1}
    splits = {s: {v for v, i in meta["voices"].items() if i["split"] == s} for s in ("train", "val", "test")}
    assert len(splits["train"]) >= 8 and splits["val"] and splits["test"]
    assert not splits["train"] & splits["val"] and not splits["train"] & splits["test"]
    engines = {i["engine"] for i in meta["voices"].values()}
    assert engines == {"espeak", "flite"}
    assert (CORPUS / "make_corpus.py").is_file()


def test_embedded_data_mixes_on_the_fly_and_validation_is_fixed():
    task, cfg = SeparationTask(), config()
    prepared = task.build_data(cfg, None)
    np.random.seed(0)
    a = prepared.train[0]
    np.random.seed(1)
    b = prepared.train[0]
    assert a["mix"].shape == (4000,) and a["sources"].shape == (2, 4000)
    assert not torch.equal(a["mix"], b["mix"])
    assert torch.equal(prepared.val[3]["mix"], prepared.val[3]["mix"])
    assert prepared.val[0]["mix"].shape == (8000,)
    voices = prepared.state["voices"]
    assert set(voices["val"]).isdisjoint(voices["train"]) and set(voices["test"]).isdisjoint(voices["train"])
    assert prepared.state["sample_rate"] == 8000


def test_widened_preset_augments_training_mixtures_only():
    """--config widened: formant/tempo/EQ per voice, rooms and noise per mixture; validation stays clean and fixed."""
    task = SeparationTask()
    cfg = resolve_config(SeparationConfig, presets=dict(task.presets), config="widened",
                         overrides=["data.reverb=1.0", "data.noise=1.0", "data.train_items=4"])
    prepared = task.build_data(cfg, None)
    aug = prepared.train.augment
    assert (aug.formant, aug.tempo, aug.eq_db, aug.p_reverb, aug.p_noise) == (0.12, 0.1, 6.0, 1.0, 1.0)
    np.random.seed(0)
    item = prepared.train[0]
    residual = item["mix"] - item["sources"].sum(0)
    assert float(residual.pow(2).mean()) > 0  # noise in the mixture, not in the targets
    assert aug.rooms is not None and len(aug.rooms.rirs) > 0
    assert prepared.val.augment is None and torch.equal(prepared.val[0]["mix"], prepared.val[0]["sources"].sum(0))
    assert task.build_data(config(), None).train.augment is None  # the default is unchanged


def test_extra_voices_join_the_training_voices_trimmed_and_never_the_held_out_ones(tmp_path):
    """data.extra_voices: ROOT/SPEAKER/*.wav recordings are drawn as training talkers, silence trimmed at both ends."""
    rng = np.random.default_rng(0)
    tone = (0.3 * np.sin(2 * np.pi * 220 * np.arange(6000) / 8000)).astype(np.float32)
    for spk in ("real_a", "real_b"):
        (tmp_path / spk).mkdir()
        sf.write(tmp_path / spk / "u.wav", np.r_[np.zeros(4000, np.float32), tone, np.zeros(4000, np.float32)], 8000)
    task, cfg = SeparationTask(), config(**{"data.extra_voices": str(tmp_path)})
    prepared = task.build_data(cfg, None)
    voices = prepared.state["voices"]
    assert {"real_a", "real_b"} <= set(voices["train"]) and not {"real_a", "real_b"} & set(voices["val"] + voices["test"])
    utt = prepared.train.speakers["real_a"][0]()
    assert abs(len(utt) - 6000) <= 160  # the tone, without the two 0.5 s silences (to a 160-sample frame)
    assert float(np.abs(utt[:160]).max()) > 0.1
    # mixtures of the two real talkers only: every source is the (cropped) tone, never silence
    only = task.build_data(config(**{"data.extra_voices": str(tmp_path)}), None).train
    only.speakers = {k: only.speakers[k] for k in ("real_a", "real_b")}
    only.names = sorted(only.speakers)
    np.random.seed(int(rng.integers(1000)))
    item = only[0]
    assert item["sources"].shape == (2, 4000)
    assert all(float(s.pow(2).mean()) > 1e-4 for s in item["sources"])
    shared = task.build_data(config(**{"data.extra_voices": str(tmp_path), "data.extra_voices_share": 0.8}), None)
    p = dict(zip(shared.train.names, shared.train.p))
    assert abs(p["real_a"] + p["real_b"] - 0.8) < 1e-9 and abs(sum(p.values()) - 1) < 1e-9
    (tmp_path / "fl_kal").mkdir()
    sf.write(tmp_path / "fl_kal" / "u.wav", tone, 8000)
    with pytest.raises(UserError, match="fl_kal.*embedded voice"):
        task.build_data(config(**{"data.extra_voices": str(tmp_path)}), None)
    with pytest.raises(UserError, match="no such folder"):
        task.build_data(config(**{"data.extra_voices": str(tmp_path / "nope")}), None)


def test_corpus_resamples_for_16k_models():
    c8, c16 = load_corpus(8000), load_corpus(16000)
    a, b = c8["val"]["fl_slt"][0], c16["val"]["fl_slt"][0]
    assert abs(len(b) - 2 * len(a)) <= 2


def test_short_training_improves_si_sdri_on_held_out_voices(tmp_path):
    task, cfg = SeparationTask(), config()
    prepared = task.build_data(cfg, None)
    torch.manual_seed(0)
    with torch.no_grad():
        before = task.evaluate(task.build_model(cfg).eval(), prepared.val, prepared)["si_sdri"]
    overrides = {**TINY, "trainer.max_steps": 60, "trainer.val_every": 1000, "trainer.checkpoint_every": 1000,
                 "trainer.progress": "none", "trainer.tensorboard": False, "optim.lr": 0.003,
                 "optim.warmup_steps": 0, "optim.schedule": "constant"}
    run = sp.fit("speech_sep", overrides=overrides, out=tmp_path / "run")
    after = sp.load_run(run).evaluate(split="val")["si_sdri"]
    print("si_sdri before/after", before, after)
    assert after > before + 1.0, (before, after)
    assert after > 0.5


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("sep") / "run"
    overrides = {**TINY, "trainer.max_steps": 2, "trainer.val_every": 1000, "trainer.progress": "none",
                 "trainer.tensorboard": False, "data.val_items": 2}
    return sp.fit("speech_sep", overrides=overrides, out=out)


def test_predict_writes_one_wav_per_speaker_and_never_overwrites(trained_run, tmp_path):
    mix = (0.1 * np.random.default_rng(0).standard_normal(8000 * 3)).astype(np.float32)  # 3 chunks of 1 s
    sf.write(tmp_path / "meeting.wav", mix, 8000)
    out = tmp_path / "out" / "meeting.wav"
    written = sp.predict(trained_run, tmp_path / "meeting.wav", output=out)
    assert [p.name for p in written] == ["meeting_spk1.wav", "meeting_spk2.wav"]
    for p in written:
        wav, sr = sf.read(p)
        assert sr == 8000 and wav.shape == (len(mix),)
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no temp files
    separated = sp.load_run(trained_run).predict(tmp_path / "meeting.wav")
    np.testing.assert_allclose(sf.read(written[1], dtype="float32")[0], separated.sources[1], atol=1e-6)
    # any talker's file already there (from elsewhere) stops the prediction before anything is written
    taken = tmp_path / "taken_spk2.wav"
    taken.write_bytes(b"not ours")
    with pytest.raises(UserError, match="taken_spk2.wav: already exists"):
        sp.predict(trained_run, tmp_path / "meeting.wav", output=tmp_path / "taken.wav")
    assert taken.read_bytes() == b"not ours" and not (tmp_path / "taken_spk1.wav").exists()
    sp.predict(trained_run, tmp_path / "meeting.wav", output=tmp_path / "taken.wav", overwrite=True)
    assert sf.read(taken)[0].shape == (len(mix),)
    with pytest.raises(UserError, match=r"expected a file name ending in \.wav"):
        sp.predict(trained_run, tmp_path / "meeting.wav", output=tmp_path / "separated")


def test_output_files_name_one_file_per_talker():
    from sigplex.core.task import Prepared

    task = SeparationTask()
    prepared = Prepared(config=config(**{"model.num_spks": 3}))
    files = task.output_files(Path("/x/mix.wav"), prepared)
    assert [f.name for f in files] == ["mix_spk1.wav", "mix_spk2.wav", "mix_spk3.wav"]
    assert {f.parent for f in files} == {Path("/x")}
    assert task.is_input(CORPUS / "fl_slt_00.flac") and not task.is_input(CORPUS / "voices.json")


def test_predict_input_errors(trained_run, tmp_path):
    (tmp_path / "empty.wav").write_bytes(b"RIFF0000WAVE")
    with pytest.raises(UserError, match=r"empty\.wav: input: not a readable audio file"):
        sp.predict(trained_run, tmp_path / "empty.wav")
    pred = sp.load_run(trained_run).predict(np.zeros(500, dtype=np.float32))
    assert pred.sources.shape == (2, 500) and pred.sources.dtype == np.float32 and pred.sample_rate == 8000
    with pytest.raises(UserError, match="expected a mono waveform"):
        sp.load_run(trained_run).predict(np.zeros((2, 500), dtype=np.float32))


def test_predict_takes_any_rate_and_stereo_and_records_each_output_level(trained_run, tmp_path):
    """A 16 kHz stereo file: outputs at 16 kHz and the input's length, its downmix separated, levels in sidecars."""
    rng = np.random.default_rng(3)
    left, right = (0.1 * rng.standard_normal((2, 16000 * 2 + 7))).astype(np.float32)
    sf.write(tmp_path / "st.wav", np.stack([left, right], 1), 16000, subtype="FLOAT")
    sf.write(tmp_path / "mono.wav", (left + right) / 2, 16000, subtype="FLOAT")
    written = sp.predict(trained_run, tmp_path / "st.wav", output=tmp_path / "out" / "st.wav")
    outs = [sf.read(p, dtype="float32") for p in written]
    assert [(w.shape, sr) for w, sr in outs] == [((len(left),), 16000)] * 2
    mono = sp.load_run(trained_run).predict(tmp_path / "mono.wav")
    np.testing.assert_allclose(np.stack([w for w, _ in outs]), mono.sources, atol=1e-5)
    side = json.loads(written[0].with_name(written[0].name + ".json").read_text())["choices"]
    assert side["input_sample_rate"] == 16000 and side["model_sample_rate"] == 8000 and side["resampled"]
    assert side["input_channels"] == 2 and side["channels"] == "downmixed to mono (mean)"
    levels = [20 * np.log10(np.sqrt(np.mean(np.square(w, dtype=np.float64)))) for w, _ in outs]
    np.testing.assert_allclose(side["output_rms_dbfs"], levels, atol=0.01)
    np.testing.assert_allclose(side["output_db_below_loudest"], max(levels) - np.array(levels), atol=0.011)


def test_prepared_state_round_trips_and_predict_uses_the_trained_rate(trained_run, tmp_path):
    """load_run(run).prepared.state holds the model's sample rate; a data.sample_rate override cannot change it."""
    predictor = sp.load_run(trained_run)
    assert predictor.prepared.state["sample_rate"] == 8000 and predictor.prepared.train is None
    assert set(predictor.prepared.state["voices"]) == {"train", "val", "test"}
    sf.write(tmp_path / "m.wav", (0.1 * np.random.default_rng(2).standard_normal(6000)).astype(np.float32), 8000)
    expected = predictor.predict(tmp_path / "m.wav")
    moved = sp.load_run(trained_run, overrides={"data.sample_rate": 16000})
    np.testing.assert_allclose(moved.predict(tmp_path / "m.wav").sources, expected.sources, atol=1e-6)


def _write_mixtures(root, names, length=6000, seed=0):
    rng = np.random.default_rng(seed)
    for name in names:
        src = [(0.1 * rng.standard_normal(length)).astype(np.float32) for _ in range(2)]
        for k, s in enumerate(src, 1):
            (root / f"s{k}").mkdir(parents=True, exist_ok=True)
            sf.write(root / f"s{k}" / f"{name}.wav", s, 8000, subtype="FLOAT")
        (root / "mix").mkdir(exist_ok=True)
        sf.write(root / "mix" / f"{name}.wav", src[0] + src[1], 8000, subtype="FLOAT")


def test_evaluate_data_takes_a_bare_mix_s1_s2_folder(trained_run, tmp_path):
    _write_mixtures(tmp_path / "one", ["only"])
    metrics = sp.evaluate(trained_run, data=tmp_path / "one")
    assert metrics["n_items"] == 1.0 and np.isfinite(metrics["si_sdri"])
    _write_mixtures(tmp_path / "splits" / "tt", ["a", "b"])
    _write_mixtures(tmp_path / "splits" / "cv", ["c"])
    assert sp.evaluate(trained_run, data=tmp_path / "splits")["n_items"] == 3.0  # all of the folder
    (tmp_path / "bad" / "mix").mkdir(parents=True)
    with pytest.raises(UserError, match=r"bad: no s1/ folder; expected the folder layout mix/ \+ s1/"):
        sp.evaluate(trained_run, data=tmp_path / "bad")


def test_config_errors():
    with pytest.raises(UserError, match="model.rotary_dim=12: expected an even number <= model.query_key_dim=8"):
        config(**{"model.query_key_dim": 8, "model.rotary_dim": 12})
    with pytest.raises(UserError, match="data.overlap_seconds=0.75: expected at most half"):
        config(**{"data.chunk_seconds": 1.0, "data.overlap_seconds": 0.75})
    with pytest.raises(UserError, match="model.dim=33: expected an even number"):
        config(**{"model.dim": 33})
    with pytest.raises(UserError, match="unknown key"):
        resolve_config(SeparationConfig, overrides=["data.nope=1"])


def test_paper_preset_is_the_paper_model():
    cfg = resolve_config(SeparationConfig, presets=dict(SeparationTask.presets), config="paper")
    m = cfg.model
    assert (m.dim, m.num_layers, m.group_size, m.query_key_dim, m.fsmn_inner, m.fsmn_kernel) == (512, 24, 256, 128, 256, 39)
    assert cfg.optim.lr == 1.5e-4 and cfg.trainer.clip_grad_norm == 10.0


def test_user_folders_train_with_dynamic_mixing_and_validate_on_files(tmp_path):
    _write_mixtures(tmp_path / "train", ("a", "b", "c"))
    _write_mixtures(tmp_path / "val", ("d",), seed=1)
    task, cfg = SeparationTask(), config()
    prepared = task.build_data(cfg, tmp_path)
    np.random.seed(0)
    item = prepared.train[0]
    assert item["sources"].shape == (2, 4000)
    torch.testing.assert_close(item["sources"].sum(0), item["mix"])
    assert len(prepared.val) == 1 and prepared.test is None
    val = prepared.val[0]
    assert val["mix"].shape == (8000,)  # padded to data.eval_seconds
    no_dm = task.build_data(config(**{"data.dynamic_mixing": False}), tmp_path)
    assert len(no_dm.train) == 3


@pytest.mark.slow
def test_onnx_export_takes_any_batch_and_length(trained_run, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    sp.export(trained_run, format="onnx", output=tmp_path / "sep.onnx")
    session = ort.InferenceSession(str(tmp_path / "sep.onnx"))
    x = (0.1 * np.random.default_rng(0).standard_normal((2, 12345))).astype(np.float32)  # not the example's shape
    out = session.run(None, {session.get_inputs()[0].name: x})[0]
    with torch.no_grad():
        ref = sp.load_run(trained_run).model(torch.from_numpy(x)).numpy()
    assert out.shape == (2, 2, 12345)
    np.testing.assert_allclose(out, ref, atol=1e-4)


@pytest.mark.slow
def test_cli_predict_writes_one_file_per_talker_and_refuses_to_overwrite(trained_run, tmp_path):
    from helpers import run_cli

    sf.write(tmp_path / "mix.wav", (0.1 * np.random.default_rng(1).standard_normal(12000)).astype(np.float32), 8000)
    (tmp_path / "sep").mkdir()
    (tmp_path / "sep" / "mix_spk2.wav").write_bytes(b"someone else's")
    args = ["predict", "--plugin", "speech_sep", "--checkpoint", trained_run, "--input", tmp_path / "mix.wav",
            "--output", tmp_path / "sep" / "mix.wav"]
    first = run_cli(*args, env={"OMP_NUM_THREADS": "1"})
    assert first.returncode == 2 and "mix_spk2.wav: already exists" in first.stderr
    assert not (tmp_path / "sep" / "mix_spk1.wav").exists()
    second = run_cli(*args, "--overwrite", env={"OMP_NUM_THREADS": "1"})
    assert second.returncode == 0, second.stderr
    assert sorted(p.name for p in (tmp_path / "sep").glob("*.wav")) == ["mix_spk1.wav", "mix_spk2.wav"]


def test_hostile_inputs_are_answered_or_refused_in_one_line(trained_run, tmp_path):
    """The core's harness on this task's sample inputs and its format's variants: predict, serve, evaluate."""
    from helpers import check_hostile

    import sigplex.core as sp

    report = check_hostile(sp.load_run(trained_run), tmp_path, ["--checkpoint", trained_run], "mixture.wav")
    assert report["ok"] >= 4, report
