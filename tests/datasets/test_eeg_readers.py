"""sigplex.datasets.eeg readers: round trips through files the tests write (FIF, EDF+, BrainVision, BIDS)."""
from pathlib import Path

import numpy as np
import pytest

mne = pytest.importorskip("mne")

from sigplex.core.errors import UserError
from sigplex.datasets.eeg import find_recordings, load_raw, read_raw, subject_of

CH = ["C3", "Cz", "C4"]
SFREQ = 100.0


def make_raw(seed=0, seconds=10.0, channels=CH, sfreq=SFREQ):
    rng = np.random.default_rng(seed)
    data = rng.standard_normal((len(channels), int(seconds * sfreq))) * 1e-5
    raw = mne.io.RawArray(data, mne.create_info(list(channels), sfreq, "eeg"), verbose="error")
    raw.set_annotations(mne.Annotations([1.0, 4.0], [2.0, 2.0], ["left_hand", "right_hand"]))
    return raw


def write_edf(path: Path, raw) -> None:
    """A minimal EDF+C writer (1-s records, 16-bit, one 'EDF Annotations' signal)."""
    data = raw.get_data() * 1e6  # µV
    sf = int(raw.info["sfreq"])
    n_rec = data.shape[1] // sf
    pmin, pmax = -1000.0, 1000.0
    ann_bytes = 120
    labels = list(raw.ch_names) + ["EDF Annotations"]
    spr = [sf] * len(raw.ch_names) + [ann_bytes // 2]

    def f(v, n):
        return str(v).ljust(n)[:n].encode("ascii")

    ns = len(labels)
    head = f("0", 8) + f("X X X X", 80) + f("Startdate X X X X", 80) + f("01.01.20", 8) + f("00.00.00", 8)
    head += f(256 * (ns + 1), 8) + f("EDF+C", 44) + f(n_rec, 8) + f(1, 8) + f(ns, 4)
    head += b"".join(f(lab, 16) for lab in labels) + b"".join(f("", 80) for _ in labels)
    head += b"".join(f("uV" if i < ns - 1 else "", 8) for i in range(ns))
    head += b"".join(f(pmin if i < ns - 1 else -1, 8) for i in range(ns))
    head += b"".join(f(pmax if i < ns - 1 else 1, 8) for i in range(ns))
    head += b"".join(f(-32768, 8) for _ in labels) + b"".join(f(32767, 8) for _ in labels)
    head += b"".join(f("", 80) for _ in labels) + b"".join(f(n, 8) for n in spr) + b"".join(f("", 32) for _ in labels)
    digital = np.round((data - pmin) / (pmax - pmin) * 65535 - 32768).clip(-32768, 32767).astype("<i2")
    body = b""
    for r in range(n_rec):
        for c in range(len(raw.ch_names)):
            body += digital[c, r * sf:(r + 1) * sf].tobytes()
        tal = f"+{r}\x14\x14\x00".encode()
        if r == 0:
            for o, d, s in zip(raw.annotations.onset, raw.annotations.duration, raw.annotations.description):
                tal += f"+{o:g}\x15{d:g}\x14{s}\x14\x00".encode()
        body += tal.ljust(ann_bytes, b"\x00")
    path.write_bytes(head + body)


def write_brainvision(path: Path, raw) -> None:
    """A minimal BrainVision writer (.vhdr/.vmrk/.eeg, float32, multiplexed)."""
    stem = path.stem
    data = (raw.get_data() * 1e6).astype("<f4")
    (path.parent / f"{stem}.eeg").write_bytes(data.T.tobytes())
    chans = "\n".join(f"Ch{i + 1}={c},,1,µV" for i, c in enumerate(raw.ch_names))
    path.write_text(
        "Brain Vision Data Exchange Header File Version 1.0\n\n[Common Infos]\nCodepage=UTF-8\n"
        f"DataFile={stem}.eeg\nMarkerFile={stem}.vmrk\nDataFormat=BINARY\nDataOrientation=MULTIPLEXED\n"
        f"NumberOfChannels={len(raw.ch_names)}\nSamplingInterval={1e6 / raw.info['sfreq']:g}\n\n"
        f"[Binary Infos]\nBinaryFormat=IEEE_FLOAT_32\n\n[Channel Infos]\n{chans}\n", encoding="utf-8")
    marks = "\n".join(f"Mk{i + 2}=Stimulus,{s},{int(round(o * raw.info['sfreq'])) + 1},1,0"
                      for i, (o, s) in enumerate(zip(raw.annotations.onset, raw.annotations.description)))
    (path.parent / f"{stem}.vmrk").write_text(
        "Brain Vision Data Exchange Marker File, Version 1.0\n\n[Common Infos]\nCodepage=UTF-8\n"
        f"DataFile={stem}.eeg\n\n[Marker Infos]\nMk1=New Segment,,1,1,0\n{marks}\n", encoding="utf-8")


def test_fif_round_trip_keeps_data_channels_and_annotations(tmp_path):
    raw = make_raw()
    raw.save(tmp_path / "sub-07_task-mi_raw.fif", fmt="double", verbose="error")
    back = read_raw(tmp_path / "sub-07_task-mi_raw.fif")
    assert back.ch_names == CH and back.info["sfreq"] == SFREQ
    np.testing.assert_allclose(back.get_data(), raw.get_data(), rtol=0, atol=1e-20)
    assert list(back.annotations.description) == ["left_hand", "right_hand"]
    assert [r.subject for r in find_recordings(tmp_path)] == ["07"]


def test_edf_round_trip_within_quantisation(tmp_path):
    raw = make_raw(seconds=6)
    write_edf(tmp_path / "rec.edf", raw)
    back = read_raw(tmp_path / "rec.edf")
    assert back.ch_names == CH
    step = 2000e-6 / 65535
    assert np.abs(back.get_data() - raw.get_data()).max() <= step
    assert list(back.annotations.description) == ["left_hand", "right_hand"]
    np.testing.assert_allclose(back.annotations.onset, [1.0, 4.0])


def test_brainvision_round_trip(tmp_path):
    raw = make_raw(seconds=6)
    write_brainvision(tmp_path / "rec.vhdr", raw)
    back = read_raw(tmp_path / "rec.vhdr")
    assert back.ch_names == CH
    np.testing.assert_allclose(back.get_data(), raw.get_data(), atol=1e-12)
    descr = [d for d in back.annotations.description if "left" in d or "right" in d]
    assert len(descr) == 2


def test_bids_root_is_read_through_mne_bids(tmp_path):
    mne_bids = pytest.importorskip("mne_bids")
    src = tmp_path / "src"
    src.mkdir()
    for sub in ("01", "02"):
        write_brainvision(src / f"s{sub}.vhdr", make_raw(seed=int(sub)))
        raw = mne.io.read_raw_brainvision(src / f"s{sub}.vhdr", verbose="error")
        raw.set_annotations(mne.Annotations([1.0, 4.0], [2.0, 2.0], ["left_hand", "right_hand"]))
        bp = mne_bids.BIDSPath(subject=sub, task="mi", datatype="eeg", root=tmp_path / "bids")
        mne_bids.write_raw_bids(raw, bp, verbose=False, allow_preload=False)
    recs = find_recordings(tmp_path / "bids")
    assert [r.subject for r in recs] == ["01", "02"] and all(r.bids_path is not None for r in recs)
    raw = load_raw(recs[1])
    assert raw.ch_names == CH
    assert {"left_hand", "right_hand"} <= set(raw.annotations.description)


def test_subjects_from_entity_folder_or_stem(tmp_path):
    assert subject_of(Path("x/sub-A1_task-mi_eeg.edf")) == "A1"
    (tmp_path / "alice").mkdir()
    p = tmp_path / "alice" / "run1.edf"
    assert subject_of(p, tmp_path) == "alice"
    assert subject_of(tmp_path / "bob_raw.fif", tmp_path) == "bob"


def test_reader_errors_are_one_line_user_errors(tmp_path):
    with pytest.raises(UserError, match="no such file or folder"):
        find_recordings(tmp_path / "missing")
    with pytest.raises(UserError, match="no EEG recordings found"):
        find_recordings(tmp_path)
    bad = tmp_path / "x.txt"
    bad.write_text("hi")
    with pytest.raises(UserError, match="unsupported file type"):
        read_raw(bad)
    broken = tmp_path / "broken.edf"
    broken.write_bytes(b"not an edf")
    with pytest.raises(UserError, match="broken.edf: MNE cannot read it"):
        read_raw(broken)
