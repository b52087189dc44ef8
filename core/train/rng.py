"""Random number generators of a run: seeding, saving and restoring every stream, and isolation.

The Trainer seeds Python, NumPy and torch from ``trainer.seed``, saves all three (and CUDA's) in
each checkpoint and restores them on resume, so a resumed run draws the same numbers. A task
that wants a generator of its own (augmentation in ``training_step``) asks for a named one with
:func:`generator`: it is seeded, saved and restored the same way.

>>> import torch
>>> seed_everything(0)
>>> a = torch.rand(2, generator=generator("augment"))
>>> seed_everything(0)
>>> torch.equal(a, torch.rand(2, generator=generator("augment")))
True
"""
from __future__ import annotations

import contextlib
import random
import zlib

_GENERATORS: dict = {}  # name -> torch.Generator
_SEED = {"value": 0}


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy, torch and every named generator from ``seed``."""
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    _SEED["value"] = int(seed)
    for name, gen in _GENERATORS.items():
        gen.manual_seed(_named_seed(name))


def generator(name: str):
    """The run's ``torch.Generator`` called ``name``: seeded from ``trainer.seed`` and the name, saved in
    every checkpoint and restored on resume (the same object for the same name)."""
    import torch

    if name not in _GENERATORS:
        gen = torch.Generator()
        gen.manual_seed(_named_seed(name))
        _GENERATORS[name] = gen
    return _GENERATORS[name]


def _named_seed(name: str) -> int:
    return (_SEED["value"] * 1_000_003 + zlib.crc32(name.encode())) % 2**63


def rng_state() -> dict:
    import numpy as np
    import torch

    np_state = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy_keys": torch.from_numpy(np_state[1].astype("int64")),
        "numpy_pos": int(np_state[2]),
        "numpy_gauss": [int(np_state[3]), float(np_state[4])],
        "python": list(_py_state_to_list(random.getstate())),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    if _GENERATORS:
        state["generators"] = {name: gen.get_state() for name, gen in _GENERATORS.items()}
    return state


def _py_state_to_list(state):
    version, internal, gauss = state
    return [version, list(internal), gauss]


def set_rng_state(state: dict) -> None:
    import numpy as np
    import torch

    torch.set_rng_state(state["torch"])
    np.random.set_state(("MT19937", state["numpy_keys"].numpy().astype("uint32"), state["numpy_pos"],
                         int(state["numpy_gauss"][0]), float(state["numpy_gauss"][1])))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    for name, saved in state.get("generators", {}).items():
        generator(name).set_state(saved)


@contextlib.contextmanager
def isolated_rng():
    """Run a block (e.g. validation) without disturbing any RNG of the run, named generators included."""
    import numpy as np
    import torch

    py, npy = random.getstate(), np.random.get_state()
    named = {name: gen.get_state() for name, gen in _GENERATORS.items()}
    with torch.random.fork_rng(devices=list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []):
        try:
            yield
        finally:
            random.setstate(py)
            np.random.set_state(npy)
            for name, saved in named.items():
                _GENERATORS[name].set_state(saved)
