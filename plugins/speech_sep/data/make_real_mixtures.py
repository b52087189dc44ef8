"""Build a small check set of real two-talker mixtures from recorded human voices that ship in Debian packages.

The embedded corpus is synthetic, so this is how the docs' real-speech number is measured. The
voices are the Asterisk telephone prompts of two professional speakers, 8 kHz mono recordings:

- ``asterisk-core-sounds-en-wav``: Allison Smith, US English (CC BY-SA 3.0);
- ``asterisk-prompt-it-menardi-wav``: Paola Dal Zot, Italian (CC BY-SA 3.0, Marco Menardi).

Neither voice, nor any synthetic voice built from it, is in the embedded training corpus.
Fetch and unpack them (no install needed)::

    apt-get download asterisk-core-sounds-en-wav asterisk-prompt-it-menardi-wav
    for f in *.deb; do dpkg -x "$f" voices; done
    python plugins/speech_sep/data/make_real_mixtures.py voices/usr/share/asterisk/sounds/en_US_f_Allison \\
        voices/usr/share/asterisk/sounds/it_IT_f_Menardi real2mix --sir 0

It writes ``real2mix/{mix,s1,s2}/NAME.wav`` (the folder layout ``platform evaluate --data`` reads)
and ``real2mix/mixtures.json`` (the source files, SIR and gain of every mixture). Each prompt is
trimmed of leading and trailing silence (prompts still quieter than -45 dBFS RMS, such as the
packages' ``silence/`` files, are skipped); the pair is cut to the shorter one (at most ``--seconds``),
the second talker is scaled to the SIR over the whole mixture, and both are scaled together so the
mixture peaks at -1 dBFS.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import soundfile as sf

from sigplex.datasets.audio import trim_silence
from sigplex.plugins.speech_sep.data.make_real_voices import SR, read_prompt, rms_db


def trimmed(path: Path) -> np.ndarray:
    """The recording without its leading and trailing silence (frames 40 dB below its loudest)."""
    return trim_silence(read_prompt(path))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("first", type=Path, help="folder of the first talker's .wav prompts")
    ap.add_argument("second", type=Path, help="folder of the second talker's .wav prompts")
    ap.add_argument("out", type=Path)
    ap.add_argument("--count", type=int, default=20)
    ap.add_argument("--sir", type=float, default=0.0, help="dB, first talker over second")
    ap.add_argument("--seconds", type=float, default=4.0, help="longest mixture")
    ap.add_argument("--min-seconds", type=float, default=2.5)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    rng = np.random.default_rng(args.seed)
    pools = []
    for folder in (args.first, args.second):
        usable = [(p, w) for p in sorted(folder.rglob("*.wav")) for w in [trimmed(p)]
                  if len(w) >= args.min_seconds * SR and rms_db(w) > -45]  # not silence
        order = rng.permutation(len(usable))
        pools.append([usable[i] for i in order])
    if min(len(p) for p in pools) < args.count:
        raise SystemExit(f"only {min(len(p) for p in pools)} prompts of >= {args.min_seconds} s per talker")
    records = []
    for k in range(args.count):
        (p1, a), (p2, b) = pools[0][k], pools[1][k]
        record = write_mixture(args.out, f"real{k:02d}", a, b, args.sir, args.seconds)
        records.append({"name": record.pop("name"), "s1": str(p1.relative_to(args.first.parent)),
                        "s2": str(p2.relative_to(args.second.parent)), **record})
    write_index(args.out, records)
    print(f"wrote {len(records)} mixtures at SIR {args.sir:g} dB to {args.out}")


def write_mixture(out: Path, name: str, a: np.ndarray, b: np.ndarray, sir: float, seconds: float) -> dict:
    """Write ``out/{s1,s2,mix}/NAME.wav``: both cut to the shorter (at most ``seconds``), ``b`` at
    ``sir`` dB below ``a`` over the whole mixture, scaled together to peak at -1 dBFS."""
    n = min(len(a), len(b), int(seconds * SR))
    a, b = a[:n].astype(np.float64), b[:n].astype(np.float64)
    b *= np.sqrt(np.mean(a ** 2) / np.mean(b ** 2)) * 10 ** (-sir / 20)
    gain = 10 ** (-1 / 20) / np.abs(a + b).max()
    for sub, wav in (("s1", a * gain), ("s2", b * gain), ("mix", (a + b) * gain)):
        (out / sub).mkdir(parents=True, exist_ok=True)
        sf.write(out / sub / f"{name}.wav", wav.astype(np.float32), SR, subtype="FLOAT")
    return {"name": name, "seconds": round(n / SR, 3), "sir_db": sir, "gain": round(float(gain), 5)}


def write_index(out: Path, records: list[dict]) -> None:
    """``out/mixtures.json``: the sample rate and every mixture's sources, SIR and gain."""
    (out / "mixtures.json").write_text(json.dumps({"sample_rate": SR, "mixtures": records}, indent=1))


if __name__ == "__main__":
    main()
