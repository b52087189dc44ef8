"""Build a second real-speech check set from the connected speech in Debian's ``codec2-examples``.

The Asterisk check set (``make_real_mixtures.py``) is two professional female voices reading
prompts in a studio. This one is mostly men talking at length, several over amateur radio
(band-limited, some noise): the recordings the Codec2 project tests its speech codec on, 8 kHz
mono, LGPL-2.1 (David Rowe, see the package's copyright file). None of these speakers, nor
anything built from them, is in the shipped model's training data. Fetch and unpack (no install
needed)::

    apt-get download codec2-examples
    dpkg -x codec2-examples_*.deb codec2
    python plugins/speech_sep/data/make_codec2_mixtures.py codec2/usr/share/codec2 codec2mix

Each recording is cut into consecutive ``--seconds`` segments (segments quieter than -40 dBFS
RMS are skipped); each pair of talkers in ``PAIRS`` is mixed segment by segment (the k-th
unused segment of each, at most ``--per-pair`` mixtures) with ``make_real_mixtures.write_mixture``:
the second talker at ``--sir`` dB below the first, peak -1 dBFS. Writes ``OUT/{mix,s1,s2}/*.wav``
(the layout ``platform evaluate --data`` reads) and ``OUT/mixtures.json``.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from sigplex.datasets.audio import read_downmixed, resample
from sigplex.plugins.speech_sep.data.make_real_mixtures import write_index, write_mixture
from sigplex.plugins.speech_sep.data.make_real_voices import SR, rms_db

# talker -> file under usr/share/codec2 (".raw" is headerless 16-bit little-endian at 8 kHz)
RECORDINGS = {"ve9qrp": "raw/ve9qrp.raw", "david4": "wav/david4.wav", "vk2tpm": "wav/vk2tpm_004.wav",
              "vk5qi": "raw/vk5qi.raw", "hts": "raw/hts.raw", "cq_ref": "raw/cq_ref.raw",
              "speech16k": "raw/speech_orig_16k.wav"}
PAIRS = (("ve9qrp", "david4"), ("vk2tpm", "hts"), ("david4", "vk2tpm"), ("ve9qrp", "vk5qi"),
         ("hts", "speech16k"), ("ve9qrp", "cq_ref"), ("vk2tpm", "ve9qrp"))


def read_recording(path: Path) -> np.ndarray:
    """A recording as float32 mono at 8 kHz (16 kHz WAVs are resampled)."""
    if path.suffix == ".raw":
        return np.fromfile(path, dtype="<i2").astype(np.float32) / 32768
    wav, sr, _ = read_downmixed(path, field="recording")
    if sr not in (SR, 2 * SR):
        raise SystemExit(f"{path}: expected {SR} or {2 * SR} Hz, got {sr} Hz")
    return resample(wav, sr, SR) if sr != SR else wav


def segments(wav: np.ndarray, seconds: float) -> list[np.ndarray]:
    """Consecutive ``seconds``-long pieces, skipping those quieter than -40 dBFS RMS."""
    n = int(seconds * SR)
    pieces = (wav[i:i + n] for i in range(0, len(wav) - n + 1, n))
    return [p for p in pieces if rms_db(p) >= -40]


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("codec2", type=Path, help="the unpacked usr/share/codec2 folder")
    ap.add_argument("out", type=Path)
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--per-pair", type=int, default=4)
    ap.add_argument("--sir", type=float, default=0.0, help="dB, first talker over second")
    args = ap.parse_args(argv)
    pools = {}
    for talker, rel in RECORDINGS.items():
        path = args.codec2 / rel
        if not path.is_file():
            raise SystemExit(f"{path}: missing; unpack codec2-examples as this script's help shows")
        pools[talker] = segments(read_recording(path), args.seconds)
    used = {talker: 0 for talker in pools}
    records = []
    for first, second in PAIRS:
        for _ in range(args.per_pair):
            i, j = used[first], used[second]
            if i >= len(pools[first]) or j >= len(pools[second]):
                break
            used[first], used[second] = i + 1, j + 1
            record = write_mixture(args.out, f"{first}_{i:02d}__{second}_{j:02d}", pools[first][i],
                                   pools[second][j], args.sir, args.seconds)
            records.append({**record, "s1": f"{RECORDINGS[first]} segment {i}", "s2": f"{RECORDINGS[second]} segment {j}"})
    write_index(args.out, records)
    print(f"wrote {len(records)} mixtures of {len(PAIRS)} talker pairs at SIR {args.sir:g} dB to {args.out}")


if __name__ == "__main__":
    main()
