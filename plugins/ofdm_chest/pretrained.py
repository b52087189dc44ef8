"""The shipped AdaFortiTran weights: the default model trained for 60 minutes on 2 CPU cores.

Trained by ``python -m benchmarks.ofdm_nmse --train 60`` on fresh TDL-A grids over the
paper's training ranges (SNR 0-30 dB, delay spread 50-350 ns, Doppler 200-1400 Hz) with the
``nmse_db`` loss (the ``cpu60`` preset's recipe), and stored in float16
(``weights/adafortitran.safetensors``). The task declares them as ``ChestTask.pretrained``, so
``platform predict --plugin ofdm_chest`` (no ``--checkpoint``) and
``sigplex.core.load_pretrained("ofdm_chest")`` use them; :func:`load_pretrained` here gives the
bare model. Or start a run from them: ``platform train --plugin ofdm_chest --init-from PATH``.

>>> from sigplex.plugins.ofdm_chest.pretrained import load_pretrained
>>> model = load_pretrained()  # doctest: +SKIP
"""
from __future__ import annotations

from pathlib import Path

RELATIVE_PATH = "weights/adafortitran.safetensors"  # inside this package (ChestTask.pretrained names it too)
WEIGHTS = Path(__file__).resolve().parent / RELATIVE_PATH


def load_pretrained(path: str | Path = WEIGHTS):
    """The default-size :class:`AdaFortiTran` (eval mode, float32) with the shipped (or given) weights."""
    from sigplex.core.api import load_state_strict
    from sigplex.core.fileio import load_weights_file

    from .adafortitran import AdaFortiTran

    model = AdaFortiTran(dropout=0.0)
    state = {k: v.float() for k, v in load_weights_file(path).items()}
    load_state_strict(model, state, str(path))
    return model.eval()


def save_half(state: dict, path: str | Path, metadata: dict | None = None) -> Path:
    """Write a state_dict as float16 safetensors, atomically (floating tensors only are cast)."""
    from safetensors.torch import save

    from sigplex.core.fileio import atomic_write_bytes

    half = {k: (v.half() if v.is_floating_point() else v).detach().contiguous() for k, v in state.items()}
    atomic_write_bytes(path, save(half, metadata={k: str(v) for k, v in (metadata or {}).items()}))
    return Path(path)


__all__ = ["RELATIVE_PATH", "WEIGHTS", "load_pretrained", "save_half"]
