"""Radio-frequency IQ data: RadioML readers and a RadioML 2016.10A-like frame generator (the ``rf`` extra).

* :mod:`.radioml` — RadioML 2016.10A/B pickles (through a restricted unpickler) and 2018.01A HDF5 files.
* :mod:`.capture` — continuous captures (SigMF recordings, raw ``.cfile``/``.cs16``/``.cu8`` files) cut into frames.
* :mod:`.generator` — 11-class frames generated on the fly with channel impairments (the embedded default).
* :mod:`.modulation` / :mod:`.channel` — the modulators and impairments the generator is built from.

Importing this package imports neither sionna nor h5py; the submodules import them lazily.
"""
from __future__ import annotations
