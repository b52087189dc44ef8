"""The shipped speech_sep default: a small MossFormer2 trained on synthetic and recorded voices.

Recipe (about 45 minutes on 2 CPU cores)::

    apt-get download asterisk-core-sounds-fr-wav asterisk-core-sounds-it-wav asterisk-core-sounds-ru-wav \
        asterisk-prompt-es-co asterisk-prompt-fr-armelle
    for f in *.deb; do dpkg -x "$f" voices; done
    python plugins/speech_sep/data/make_real_voices.py voices/usr/share/asterisk/sounds real_voices
    platform train --plugin speech_sep --config widened --set data.extra_voices=real_voices \
        --set trainer.max_steps=3000 --set trainer.val_every=500 --set trainer.checkpoint_every=500 --out stage1
    # stopped after the step-1000 checkpoint (the recorded voices were 5 of 16 talkers: too few draws)
    platform train --plugin speech_sep --config widened --init-from stage1/checkpoints/step-00001000 \
        --set data.extra_voices=real_voices --set data.extra_voices_share=0.85 --set trainer.max_steps=2200 \
        --set trainer.val_every=2200 --set trainer.checkpoint_every=550 --out stage2
    python -m sigplex.plugins.speech_sep.pretrained stage2

The last command copies the run's best checkpoint (``platform`` picks it the same way) into
``weights/mossformer2_default.safetensors`` and the run's prepared state (the model's sample rate)
into ``weights/`` beside them. ``SeparationTask.pretrained`` declares them, so
``platform predict --plugin speech_sep --input mix.wav --output out/`` works with no ``--checkpoint``.
"""
from __future__ import annotations

import sys
from pathlib import Path

RELATIVE_PATH = "weights/mossformer2_default.safetensors"
STATE_PATH = "weights"  # a package (its __init__.py), so wheels carry these files
HERE = Path(__file__).resolve().parent


def export(run_dir: str | Path, out: Path = HERE) -> Path:
    """Copy ``run_dir``'s best checkpoint weights and prepared state into ``out`` (atomically each)."""
    from sigplex.core import run as runs
    from sigplex.core.fileio import atomic_write_bytes
    from sigplex.core.train import checkpoint as ckpt

    run_dir = Path(run_dir)
    chosen = runs.pick_checkpoint(run_dir)
    target = out / RELATIVE_PATH
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(target, (chosen / ckpt.WEIGHTS).read_bytes())
    state = out / STATE_PATH
    state.mkdir(parents=True, exist_ok=True)
    for name in (runs.STATE_JSON, runs.STATE_TENSORS):
        if (run_dir / name).is_file():
            atomic_write_bytes(state / name, (run_dir / name).read_bytes())
    return target


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: python -m sigplex.plugins.speech_sep.pretrained RUN_DIR")
    print(export(sys.argv[1]))
