"""Separation layouts: folder, LibriMix CSV, WSJ0-2mix scp, split discovery, datasets and their errors."""
import numpy as np
import pytest
import soundfile as sf
import torch

from sigplex.core.errors import UserError
from sigplex.datasets.audio import (
    DynamicMixDataset,
    SeparationDataset,
    discover_splits,
    read_folder,
    read_librimix_csv,
    read_wsj0_scp,
)

SR = 8000


def make_sources(rng, n_spk=2, length=4000):
    return [(0.15 * rng.standard_normal(length)).astype(np.float32) for _ in range(n_spk)]


def write_folder(root, names=("a", "b", "c"), n_spk=2, length=4000, mix_dir="mix", seed=0):
    rng = np.random.default_rng(seed)
    truth = {}
    for name in names:
        src = make_sources(rng, n_spk, length)
        for k, s in enumerate(src, 1):
            (root / f"s{k}").mkdir(parents=True, exist_ok=True)
            sf.write(root / f"s{k}" / f"{name}.wav", s, SR, subtype="FLOAT")
        if mix_dir:
            (root / mix_dir).mkdir(parents=True, exist_ok=True)
            sf.write(root / mix_dir / f"{name}.wav", sum(src), SR, subtype="FLOAT")
        truth[name] = np.stack(src)
    return truth


def test_folder_layout_round_trip(tmp_path):
    truth = write_folder(tmp_path, mix_dir="mix_clean")
    examples = read_folder(tmp_path)
    assert [e.id for e in examples] == ["a", "b", "c"]
    ds = SeparationDataset(examples, SR)
    item = ds[1]
    np.testing.assert_allclose(item["sources"].numpy(), truth["b"], atol=1e-7)
    np.testing.assert_allclose(item["mix"].numpy(), truth["b"].sum(0), atol=1e-6)


def test_folder_without_mixtures_sums_the_sources(tmp_path):
    truth = write_folder(tmp_path, mix_dir=None, n_spk=3)
    examples = read_folder(tmp_path, num_spks=3)
    assert examples[0].mixture is None and len(examples[0].sources) == 3
    np.testing.assert_allclose(SeparationDataset(examples, SR)[0]["mix"].numpy(), truth["a"].sum(0), atol=1e-6)


def test_librimix_csv_round_trip_with_relative_paths(tmp_path):
    truth = write_folder(tmp_path / "wav", names=("m1", "m2"))
    lines = ["mixture_ID,mixture_path,source_1_path,source_2_path,length"]
    for name in ("m1", "m2"):
        lines.append(f"{name},wav/mix/{name}.wav,wav/s1/{name}.wav,wav/s2/{name}.wav,4000")
    csv = tmp_path / "mixture_train_mix_clean.csv"
    csv.write_text("\n".join(lines) + "\n")
    examples = read_librimix_csv(csv)
    assert [e.id for e in examples] == ["m1", "m2"]
    np.testing.assert_allclose(SeparationDataset(examples, SR)[1]["sources"].numpy(), truth["m2"], atol=1e-7)
    splits = discover_splits(tmp_path)
    assert [e.id for e in splits["train"]] == ["m1", "m2"] and "val" not in splits


def test_wsj0_scp_round_trip(tmp_path):
    truth = write_folder(tmp_path / "wav", names=("u1", "u2"))
    tt = tmp_path / "tt"
    tt.mkdir()
    for key, folder in (("mix", "mix"), ("s1", "s1"), ("s2", "s2")):
        (tt / f"{key}.scp").write_text("".join(f"{u} {tmp_path / 'wav' / folder / (u + '.wav')}\n" for u in ("u1", "u2")))
    examples = read_wsj0_scp(tt)
    np.testing.assert_allclose(SeparationDataset(examples, SR)[0]["sources"].numpy(), truth["u1"], atol=1e-7)


def test_discover_splits_from_subfolders(tmp_path):
    write_folder(tmp_path / "tr", names=("a", "b"))
    write_folder(tmp_path / "cv", names=("c",))
    write_folder(tmp_path / "tt", names=("d",))
    splits = discover_splits(tmp_path, 2)
    assert {k: [e.id for e in v] for k, v in splits.items()} == {"train": ["a", "b"], "val": ["c"], "test": ["d"]}


def test_mismatched_source_lengths_name_both_files(tmp_path):
    write_folder(tmp_path)
    sf.write(tmp_path / "s2" / "b.wav", np.zeros(3000, dtype=np.float32) + 0.1, SR)
    ds = SeparationDataset(read_folder(tmp_path), SR)
    with pytest.raises(UserError, match=r"s2/b\.wav: source_2: 3000 samples; expected 4000 like source_1 .*s1/b\.wav"):
        ds[1]


def test_mixture_length_mismatch(tmp_path):
    write_folder(tmp_path)
    sf.write(tmp_path / "mix" / "a.wav", np.zeros(3900, dtype=np.float32) + 0.1, SR)
    with pytest.raises(UserError, match=r"s1/a\.wav: source_1: 4000 samples; expected 3900 like the mixture"):
        SeparationDataset(read_folder(tmp_path), SR)[0]


def test_layout_errors(tmp_path):
    write_folder(tmp_path / "x")
    (tmp_path / "x" / "s2" / "c.wav").unlink()
    with pytest.raises(UserError, match=r"s2/c\.wav: s2: file missing"):
        read_folder(tmp_path / "x")
    with pytest.raises(UserError, match="no s1/ folder"):
        read_folder(tmp_path)
    with pytest.raises(UserError, match="has 2 source folders .* expected 3"):
        read_folder(tmp_path / "x", num_spks=3)
    bad_csv = tmp_path / "m.csv"
    bad_csv.write_text("mixture_ID,mixture_path\nx,a.wav\n")
    with pytest.raises(UserError, match=r"m\.csv: columns: missing source_1_path, source_2_path"):
        read_librimix_csv(bad_csv)
    scp = tmp_path / "scp"
    scp.mkdir()
    (scp / "mix.scp").write_text("u1 /a.wav\nu2 /b.wav\n")
    (scp / "s1.scp").write_text("u1 /a1.wav\nu2 /b1.wav\n")
    (scp / "s2.scp").write_text("u1 /a2.wav\n")
    with pytest.raises(UserError, match=r"s2\.scp: utterance 'u2' missing"):
        read_wsj0_scp(scp)
    with pytest.raises(UserError, match="no such file or folder"):
        discover_splits(tmp_path / "absent")


def test_wrong_rate_in_a_dataset_names_the_field(tmp_path):
    write_folder(tmp_path)
    sf.write(tmp_path / "mix" / "a.wav", np.zeros(8000, dtype=np.float32) + 0.1, 16000)
    with pytest.raises(UserError, match=r"mix/a\.wav: mixture: sample rate is 16000 Hz; expected 8000 Hz .*resample=true"):
        SeparationDataset(read_folder(tmp_path), SR)[0]


def test_segments_are_cropped_or_padded(tmp_path):
    write_folder(tmp_path)
    ds = SeparationDataset(read_folder(tmp_path), SR, segment=1000, random_crop=True)
    item = ds[0]
    assert item["mix"].shape == (1000,) and item["sources"].shape == (2, 1000)
    # the crop is taken from mixture and sources at the same place
    np.testing.assert_allclose(item["sources"].sum(0).numpy(), item["mix"].numpy(), atol=1e-5)
    long = SeparationDataset(read_folder(tmp_path), SR, segment=6000)[0]
    assert long["mix"].shape == (6000,)


def test_dynamic_mixing_draws_distinct_speakers_and_is_reproducible():
    t = np.arange(4000) / SR
    # speaker k speaks a pure tone of 250 * (k + 1) Hz, so the tone identifies the speaker
    speakers = {f"spk{k}": [np.sin(2 * np.pi * 250 * (k + 1) * t[: 3000 + 400 * j]).astype(np.float32)
                            for j in range(3)] for k in range(4)}
    ds = DynamicMixDataset(speakers, num_spks=2, segment=2000, length=50, gain_db=3.0)
    np.random.seed(5)
    a = ds[0]
    np.random.seed(5)
    b = ds[0]
    assert torch.equal(a["mix"], b["mix"])
    np.random.seed(6)
    assert not torch.equal(a["mix"], ds[0]["mix"])
    pairs = set()
    for i in range(30):
        item = ds[i]
        tones = [int(np.argmax(np.abs(np.fft.rfft(s.numpy())))) * SR // 2000 for s in item["sources"]]
        assert tones[0] != tones[1], "the two sources of a mixture must be different speakers"
        pairs.add(tuple(tones))
        torch.testing.assert_close(item["sources"].sum(0), item["mix"])
        assert float(item["mix"].abs().max()) <= 0.9 + 1e-6
        db = 20 * np.log10(item["sources"].pow(2).mean(1).sqrt().numpy())
        assert abs(db[0] - db[1]) <= 6.0 + 1e-3  # gains within +-3 dB each
    assert len(pairs) > 3  # random pairs
    fixed = DynamicMixDataset(speakers, 2, 2000, 10, seed=1)
    assert torch.equal(fixed[3]["mix"], fixed[3]["mix"])
    assert not torch.equal(fixed[3]["mix"], fixed[4]["mix"])


def test_speed_perturbation_shifts_pitch_by_the_factor():
    t = np.arange(8000) / SR
    speakers = {"a": [np.sin(2 * np.pi * 250 * t).astype(np.float32)],
                "b": [np.sin(2 * np.pi * 1000 * t).astype(np.float32)]}
    ds = DynamicMixDataset(speakers, 2, 4000, 5, seed=0, speeds=(1.2,), sample_rate=SR)
    freqs = sorted(int(np.argmax(np.abs(np.fft.rfft(s.numpy())))) * SR // 4000 for s in ds[0]["sources"])
    assert freqs == [300, 1200]
    with pytest.raises(ValueError, match="sample_rate"):
        DynamicMixDataset(speakers, 2, 4000, 5, speeds=(0.9, 1.1))


def test_speaker_folders_list_each_speakers_recordings_at_any_depth(tmp_path):
    from sigplex.datasets.audio import read_speaker_folders

    for spk, rel in [("alice", "a1.wav"), ("alice", "book/ch1/a2.flac"), ("bob", "b1.wav")]:
        (tmp_path / spk / rel).parent.mkdir(parents=True, exist_ok=True)
        sf.write(tmp_path / spk / rel, np.zeros(800, np.float32), SR)
    (tmp_path / "carol").mkdir()  # no audio: not a speaker
    (tmp_path / "notes.txt").write_text("x")
    found = read_speaker_folders(tmp_path)
    assert sorted(found) == ["alice", "bob"]
    assert [p.name for p in found["alice"]] == ["a1.wav", "a2.flac"]
    with pytest.raises(UserError, match="no such folder"):
        read_speaker_folders(tmp_path / "missing")
    with pytest.raises(UserError, match="no speaker folder"):
        read_speaker_folders(tmp_path / "carol")


def test_dynamic_mixing_draws_speakers_by_their_weights_and_still_distinct():
    drawn = []
    tone = np.sin(np.arange(800) / 5).astype(np.float32)
    speakers = {name: [lambda name=name: (drawn.append(name), tone)[1]] for name in "abcd"}
    ds = DynamicMixDataset(speakers, 2, 400, 2000, gain_db=0, seed=0, speaker_weights={"a": 8, "b": 8, "c": 1, "d": 1})
    for i in range(len(ds)):
        ds[i]
    pairs = [drawn[k:k + 2] for k in range(0, len(drawn), 2)]
    assert all(x != y for x, y in pairs)  # two different talkers in every mixture
    share = sum(name in "ab" for name in drawn) / len(drawn)
    # a pair drawn without replacement from weights 8:8:1:1 is from {a, b} 0.852 of the time
    # ((16/18 + 16/18 * 8/10 + 2/18 * 16/17) / 2); uniform drawing would give 0.5
    assert 0.81 < share < 0.89, share
    with pytest.raises(ValueError, match="positive weight"):
        DynamicMixDataset(speakers, 2, 400, 10, speaker_weights={"a": 1})
