"""Gather recorded human voices that ship in Debian packages into speaker folders for ``data.extra_voices``.

The shipped default model (``speech_sep/weights/``) was trained on the embedded synthetic corpus
plus these voices; the real-speech check set (``make_real_mixtures.py``) uses two *other* speakers
(Allison Smith's US English and Spanish prompts, Paola Dal Zot's Italian prompts), so no
evaluation speaker is trained on. Fetch and unpack (no install needed)::

    apt-get download asterisk-core-sounds-fr-wav asterisk-core-sounds-it-wav asterisk-core-sounds-ru-wav \\
        asterisk-prompt-es-co asterisk-prompt-fr-armelle
    for f in *.deb; do dpkg -x "$f" voices; done
    python plugins/speech_sep/data/make_real_voices.py voices/usr/share/asterisk/sounds real_voices

Speakers (see each package's copyright file): June (fr_CA_f_June), IvrvoiceRU (ru_RU_f_IvrvoiceRU) and
Carlo (it_IT_m_Carlo), CC BY-SA 3.0; the Colombian Spanish prompts of July E. Jimenez (``es/``, GSM), GPL-2;
Armelle Desjardins (``fr/``, GSM), a BSD-style licence. Every prompt is read at 8 kHz (raw GSM 6.10 decoded by libsndfile),
trimmed of leading and trailing silence, skipped if shorter than ``--min-seconds`` or quieter than
-45 dBFS RMS, and written as ``OUT/SPEAKER/NAME.flac``.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import soundfile as sf

from sigplex.datasets.audio import trim_silence

SR = 8000
SPEAKERS = {"fr_CA_f_June": "june_fr_ca", "ru_RU_f_IvrvoiceRU": "ivr_ru", "it_IT_m_Carlo": "carlo_it",
            "es": "asterisk_es_co", "fr": "armelle_fr"}
HELD_OUT = ("en_US_f_Allison", "es_MX_f_Allison", "it_IT_f_Menardi")  # the check set's speakers


def rms_db(wav: np.ndarray) -> float:
    """Level of ``wav`` in dB relative to full scale (RMS; ``-inf`` for digital silence)."""
    power = float(np.mean(np.square(wav, dtype=np.float64)))
    return 10 * np.log10(power) if power > 0 else float("-inf")


def read_prompt(path: Path) -> np.ndarray:
    """A prompt as float32 mono at 8 kHz: WAV, or Asterisk's header-less GSM 6.10 (``.gsm``)."""
    if path.suffix == ".gsm":
        wav, sr = sf.read(str(path), dtype="float32", format="RAW", subtype="GSM610", samplerate=SR, channels=1)
    else:
        wav, sr = sf.read(str(path), dtype="float32")
    if sr != SR or wav.ndim != 1:
        raise SystemExit(f"{path}: expected {SR} Hz mono, got {sr} Hz with shape {wav.shape}")
    return wav


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("sounds", type=Path, help="the unpacked usr/share/asterisk/sounds folder")
    ap.add_argument("out", type=Path)
    ap.add_argument("--min-seconds", type=float, default=0.8)
    args = ap.parse_args(argv)
    for folder, speaker in SPEAKERS.items():
        files = sorted(p for p in (args.sounds / folder).rglob("*") if p.suffix in (".wav", ".gsm"))
        if not files:
            raise SystemExit(f"{args.sounds / folder}: no prompts; unpack the packages named in this script's help")
        kept = 0
        for path in files:
            wav = trim_silence(read_prompt(path))
            if len(wav) < args.min_seconds * SR or rms_db(wav) < -45:
                continue
            name = "_".join(path.relative_to(args.sounds / folder).with_suffix("").parts)
            (args.out / speaker).mkdir(parents=True, exist_ok=True)
            sf.write(args.out / speaker / f"{name}.flac", wav, SR, subtype="PCM_16")
            kept += 1
        print(f"{speaker}: {kept} of {len(files)} prompts")


if __name__ == "__main__":
    main()
