"""Reading the task's inputs: an ``.npz`` of LS estimates (with priors, optionally the true channel)
or an AdaFortiTran ``.mat`` file/folder, as an :class:`~sigplex.datasets.ofdm.ArrayOFDM`."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from sigplex.core.errors import UserError
from sigplex.datasets.ofdm import ArrayOFDM, OFDMGrid, read_mat_files

PRIOR_KEYS = ("snr_db", "delay_spread_ns", "doppler_hz")


def read_grids(source, grid: OFDMGrid, *, need_truth: bool = False) -> ArrayOFDM:
    """``.npz`` with ``ls`` ``[N, n_pf, n_ps]`` (complex), ``cond`` ``[N, 4]`` or the priors by name, ``h``
    (required with ``need_truth``); else a ``.mat`` file or folder."""
    source = Path(source)
    if not source.exists():
        raise UserError(f"{source}: not found")
    if source.suffix != ".npz":
        return ArrayOFDM(read_mat_files(source, grid), grid, str(source))
    n_pf, n_ps = grid.pilot_shape
    try:
        z = np.load(source, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise UserError(f"{source}: not a readable .npz file ({exc})") from None
    with z:
        if "ls" not in z:
            raise UserError(f"{source}: key 'ls' is missing; expected complex LS at the pilots [N, {n_pf}, {n_ps}]")
        ls = np.asarray(z["ls"])
        ls = ls[None] if ls.ndim == 2 else ls
        if ls.shape[1:] != grid.pilot_shape:
            raise UserError(f"{source}: key 'ls' has shape {list(ls.shape)}; expected [N, {n_pf}, {n_ps}]")
        n = len(ls)
        if "cond" in z:
            cond = np.asarray(z["cond"], np.float32)
            if cond.size != n * 4:
                raise UserError(f"{source}: key 'cond' has shape {list(cond.shape)}; expected [{n}, 4] "
                                "(model index, snr_db, delay_spread_ns, doppler_hz)")
            cond = cond.reshape(n, 4)
        else:
            cond = np.full((n, 4), np.nan, np.float32)
            cond[:, 0] = 0
            for j, key in enumerate(PRIOR_KEYS, start=1):
                if key in z:
                    cond[:, j] = np.broadcast_to(np.asarray(z[key], np.float32).reshape(-1), (n,))
        if need_truth and "h" not in z:
            raise UserError(f"{source}: key 'h' (the true channel [N, {grid.n_subcarriers}, {grid.n_symbols}]) "
                            "is missing; evaluating needs it")
        h = np.asarray(z["h"]) if "h" in z else np.zeros((n, grid.n_subcarriers, grid.n_symbols), np.complex64)
    if h.shape != (n, grid.n_subcarriers, grid.n_symbols):
        raise UserError(f"{source}: key 'h' has shape {list(h.shape)}; expected "
                        f"[{n}, {grid.n_subcarriers}, {grid.n_symbols}]")
    return ArrayOFDM({"h": h.astype(np.complex64), "ls": ls.astype(np.complex64), "cond": cond}, grid, str(source))


def missing_priors(ds: ArrayOFDM) -> bool:
    return bool(np.isnan(ds.cond[:, 1:]).any())
