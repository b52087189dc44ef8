"""Generate the embedded speech corpus once: espeak-ng and flite voices, 8 kHz mono FLAC.

Run from the repository (needs ``apt-get install espeak-ng flite``):
``python plugins/speech_sep/data/make_corpus.py``. Writes ``<voice>_<nn>.flac`` and
``voices.json`` next to this file. Each utterance is trimmed of leading/trailing silence and
scaled to -25 dBFS RMS. CI never runs this; it uses the committed files.
"""
from __future__ import annotations

import json
import random
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF

HERE = Path(__file__).resolve().parent
SR = 8000
PER_VOICE = 8

SENTENCES = [
    "The birch canoe slid on the smooth planks.", "Glue the sheet to the dark blue background.",
    "It is easy to tell the depth of a well.", "These days a chicken leg is a rare dish.",
    "Rice is often served in round bowls.", "The juice of lemons makes fine punch.",
    "The box was thrown beside the parked truck.", "The hogs were fed chopped corn and garbage.",
    "Four hours of steady work faced us.", "A large size in stockings is hard to sell.",
    "The boy was there when the sun rose.", "A rod is used to catch pink salmon.",
    "The source of the huge river is the clear spring.", "Kick the ball straight and follow through.",
    "Help the woman get back to her feet.", "A pot of tea helps to pass the evening.",
    "Smoky fires lack flame and heat.", "The soft cushion broke the man's fall.",
    "The salt breeze came across from the sea.", "The girl at the booth sold fifty bonds.",
    "The small pup gnawed a hole in the sock.", "The fish twisted and turned on the bent hook.",
    "Press the pants and sew a button on the vest.", "The swan dive was far short of perfect.",
    "The beauty of the view stunned the young boy.", "Two blue fish swam in the tank.",
    "Her purse was full of useless trash.", "The colt reared and threw the tall rider.",
    "It snowed, rained, and hailed the same morning.", "Read verse out loud for pleasure.",
    "Hoist the load to your left shoulder.", "Take the winding path to reach the lake.",
    "Note closely the size of the gas tank.", "Wipe the grease off his dirty face.",
    "Mend the coat before you go out.", "The wrist was badly strained and hung limp.",
    "The stray cat gave birth to kittens.", "The young girl gave no clear response.",
    "The meal was cooked before the bell rang.", "What joy there is in living.",
]

# name, engine, arguments, split. Held-out voices (val, test) never appear in training.
VOICES = [
    ("es_us_m1", "espeak", ["-v", "en-us+m1", "-p", "45", "-s", "160"], "train"),
    ("es_gb_f2", "espeak", ["-v", "en-gb+f2", "-p", "60", "-s", "150"], "train"),
    ("es_scot_m3", "espeak", ["-v", "en-gb-scotland+m3", "-p", "35", "-s", "155"], "train"),
    ("es_029_f1", "espeak", ["-v", "en-029+f1", "-p", "70", "-s", "165"], "train"),
    ("es_rp_m7", "espeak", ["-v", "en-gb-x-rp+m7", "-p", "25", "-s", "145"], "train"),
    ("es_us_f4", "espeak", ["-v", "en-us+f4", "-p", "55", "-s", "170"], "train"),
    ("es_lanc_m2", "espeak", ["-v", "en-gb-x-gbclan+m2", "-p", "50", "-s", "150"], "train"),
    ("fl_kal", "flite", ["-voice", "kal"], "train"),
    ("fl_awb", "flite", ["-voice", "awb"], "train"),
    ("fl_rms", "flite", ["-voice", "rms"], "train"),
    ("fl_slt_hi", "flite", ["-voice", "slt", "--setf", "int_f0_target_mean=215"], "train"),
    ("es_wmid_f3", "espeak", ["-v", "en-gb-x-gbcwmd+f3", "-p", "65", "-s", "160"], "val"),
    ("fl_slt", "flite", ["-voice", "slt"], "val"),
    ("es_us_m4", "espeak", ["-v", "en-us+m4", "-p", "40", "-s", "175"], "test"),
    ("fl_awb_low", "flite", ["-voice", "awb", "--setf", "int_f0_target_mean=95"], "test"),
]


def synth(engine: str, args: list[str], text: str) -> np.ndarray:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "u.wav"
        if engine == "espeak":
            subprocess.run(["espeak-ng", *args, "-w", str(out), text], check=True)
        else:
            subprocess.run(["flite", *args, "-t", text, "-o", str(out)], check=True)
        wav, sr = sf.read(out, dtype="float32", always_2d=True)
    wav = torch.from_numpy(wav[:, 0].copy())
    return AF.resample(wav, sr, SR).numpy()


def tidy(wav: np.ndarray, floor_db: float = -40.0, target_db: float = -25.0) -> np.ndarray:
    frame = 160
    n = len(wav) // frame
    energy = 10 * np.log10(np.mean(wav[: n * frame].reshape(n, frame) ** 2, axis=1) + 1e-12)
    loud = np.nonzero(energy > energy.max() + floor_db)[0]
    wav = wav[max(0, loud[0] - 1) * frame: (loud[-1] + 2) * frame]
    rms = np.sqrt(np.mean(wav ** 2))
    return (wav * (10 ** (target_db / 20) / rms)).clip(-1, 1)


def main() -> None:
    rng = random.Random(0)
    meta = {"sample_rate": SR, "voices": {}}
    for old in HERE.glob("*.flac"):
        old.unlink()
    for name, engine, args, split in VOICES:
        texts = rng.sample(SENTENCES, PER_VOICE)
        files = []
        for k, text in enumerate(texts):
            wav = tidy(synth(engine, args, text))
            path = HERE / f"{name}_{k:02d}.flac"
            sf.write(path, wav, SR, subtype="PCM_16")
            files.append(path.name)
        meta["voices"][name] = {"engine": engine, "args": args, "split": split, "files": files}
    (HERE / "voices.json").write_text(json.dumps(meta, indent=1) + "\n")


if __name__ == "__main__":
    main()
