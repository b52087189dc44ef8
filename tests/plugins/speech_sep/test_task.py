"""The separate task: config, embedded data, training improves SI-SDRi, predict/write, errors."""
import json

import numpy as np
import pytest
import soundfile as sf
import torch

import sigplex.core as sp
from sigplex.core.config import resolve_config
from sigplex.core.errors import UserError
from sigplex.plugins.speech_sep.task import CORPUS, SeparationConfig, SeparationTask, load_corpus

TINY = {"model.dim": 32, "model.num_layers": 2, "model.group_size": 32, "model.query_key_dim": 16,
        "model.rotary_dim": 8, "model.fsmn_inner": 16, "model.fsmn_kernel": 9,
        "data.segment_seconds": 0.5, "data.eval_seconds": 1.0, "data.val_items": 8, "data.test_items": 4,
        "data.chunk_seconds": 1.0, "data.overlap_seconds": 0.25}


def config(**extra):
    items = {**TINY, **extra}
    return resolve_config(SeparationConfig, base=dict(SeparationTask.defaults),
                          overrides=[f"{k}={v}" for k, v in items.items()])


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
    splits = task.build_data(cfg, None)
    np.random.seed(0)
    a = splits.train[0]
    np.random.seed(1)
    b = splits.train[0]
    assert a["mix"].shape == (4000,) and a["sources"].shape == (2, 4000)
    assert not torch.equal(a["mix"], b["mix"])
    assert torch.equal(splits.val[3]["mix"], splits.val[3]["mix"])
    assert splits.val[0]["mix"].shape == (8000,)
    assert set(splits.info["voices"]["val"]).isdisjoint(splits.info["voices"]["train"])


def test_corpus_resamples_for_16k_models():
    c8, c16 = load_corpus(8000), load_corpus(16000)
    a, b = c8["val"]["fl_slt"][0], c16["val"]["fl_slt"][0]
    assert abs(len(b) - 2 * len(a)) <= 2


def test_short_training_improves_si_sdri_on_held_out_voices(tmp_path):
    task, cfg = SeparationTask(), config()
    splits = task.build_data(cfg, None)
    torch.manual_seed(0)
    before = task.evaluate(task.build_model(cfg).eval(), splits.val, cfg)["si_sdri"]
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
    out = tmp_path / "out"
    written = sp.predict(trained_run, tmp_path / "meeting.wav", output=out)
    assert [p.name for p in written] == ["meeting_spk1.wav", "meeting_spk2.wav"]
    for p in written:
        wav, sr = sf.read(p)
        assert sr == 8000 and wav.shape == (len(mix),)
    assert sorted(p.name for p in out.iterdir()) == ["meeting_spk1.wav", "meeting_spk2.wav"]  # no temp files
    before = [p.read_bytes() for p in written]
    with pytest.raises(UserError, match="meeting_spk1.wav: already exists"):
        sp.predict(trained_run, tmp_path / "meeting.wav", output=out)
    assert [p.read_bytes() for p in written] == before
    sp.predict(trained_run, tmp_path / "meeting.wav", output=out, overwrite=True)
    with pytest.raises(UserError, match="is a file; expected a folder"):
        sp.predict(trained_run, tmp_path / "meeting.wav", output=tmp_path / "meeting.wav", overwrite=True)


def test_predict_input_errors(trained_run, tmp_path):
    sf.write(tmp_path / "hi.wav", np.zeros(16000, dtype=np.float32) + 0.01, 16000)
    with pytest.raises(UserError, match=r"hi\.wav: input: sample rate is 16000 Hz; expected 8000 Hz .*data\.resample=true"):
        sp.predict(trained_run, tmp_path / "hi.wav")
    sf.write(tmp_path / "st.wav", np.zeros((800, 2), dtype=np.float32), 8000)
    with pytest.raises(UserError, match=r"st\.wav: input: has 2 channels; expected mono"):
        sp.predict(trained_run, tmp_path / "st.wav")
    pred = sp.load_run(trained_run).predict(np.zeros(500, dtype=np.float32))
    assert pred.sources.shape == (2, 500)
    with pytest.raises(UserError, match="expected a mono waveform"):
        sp.load_run(trained_run).predict(np.zeros((2, 500), dtype=np.float32))


def test_config_errors():
    task = SeparationTask()
    with pytest.raises(UserError, match="model.rotary_dim=12: expected an even number <= model.query_key_dim=8"):
        task.build_model(config(**{"model.query_key_dim": 8, "model.rotary_dim": 12}))
    cfg = config(**{"data.chunk_seconds": 1.0, "data.overlap_seconds": 0.75})
    with pytest.raises(UserError, match="data.overlap_seconds=0.75: expected at most half"):
        task.separate(task.build_model(cfg), np.zeros(20000, dtype=np.float32), cfg)
    with pytest.raises(UserError, match="unknown key"):
        resolve_config(SeparationConfig, overrides=["data.nope=1"])


def test_paper_preset_is_the_paper_model():
    cfg = resolve_config(SeparationConfig, presets=dict(SeparationTask.presets), config="paper")
    m = cfg.model
    assert (m.dim, m.num_layers, m.group_size, m.query_key_dim, m.fsmn_inner, m.fsmn_kernel) == (512, 24, 256, 128, 256, 39)
    assert cfg.optim.lr == 1.5e-4 and cfg.trainer.clip_grad_norm == 10.0


def test_user_folders_train_with_dynamic_mixing_and_validate_on_files(tmp_path):
    rng = np.random.default_rng(0)
    for split, names in (("train", ("a", "b", "c")), ("val", ("d",))):
        for name in names:
            src = [(0.1 * rng.standard_normal(6000)).astype(np.float32) for _ in range(2)]
            for k, s in enumerate(src, 1):
                (tmp_path / split / f"s{k}").mkdir(parents=True, exist_ok=True)
                sf.write(tmp_path / split / f"s{k}" / f"{name}.wav", s, 8000, subtype="FLOAT")
            (tmp_path / split / "mix").mkdir(exist_ok=True)
            sf.write(tmp_path / split / "mix" / f"{name}.wav", src[0] + src[1], 8000, subtype="FLOAT")
    task, cfg = SeparationTask(), config()
    splits = task.build_data(cfg, tmp_path)
    np.random.seed(0)
    item = splits.train[0]
    assert item["sources"].shape == (2, 4000)
    torch.testing.assert_close(item["sources"].sum(0), item["mix"])
    assert len(splits.val) == 1 and splits.test is None
    val = splits.val[0]
    assert val["mix"].shape == (8000,)  # padded to data.eval_seconds
    no_dm = task.build_data(config(**{"data.dynamic_mixing": False}), tmp_path)
    assert len(no_dm.train) == 3


@pytest.mark.slow
def test_cli_predict_writes_a_folder_and_refuses_to_overwrite(trained_run, tmp_path):
    from helpers import run_cli

    sf.write(tmp_path / "mix.wav", (0.1 * np.random.default_rng(1).standard_normal(12000)).astype(np.float32), 8000)
    args = ["predict", "--plugin", "speech_sep", "--checkpoint", trained_run, "--input", tmp_path / "mix.wav",
            "--output", tmp_path / "sep"]
    first = run_cli(*args, env={"OMP_NUM_THREADS": "1"})
    assert first.returncode == 0, first.stderr
    assert sorted(p.name for p in (tmp_path / "sep").iterdir()) == ["mix_spk1.wav", "mix_spk2.wav"]
    second = run_cli(*args, env={"OMP_NUM_THREADS": "1"})
    assert second.returncode == 2 and "already exists" in second.stderr
