"""Reading the task's inputs: an ``.npz`` of LS estimates (with priors, optionally the true channel)
or an AdaFortiTran ``.mat`` file/folder, as an :class:`~sigplex.datasets.ofdm.ArrayOFDM`."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from sigplex.core.arrays import load_npz, require_numeric
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
    z = {k: require_numeric(v, source, f"key {k!r}") for k, v in load_npz(source).items()}
    if "ls" not in z:
        raise UserError(f"{source}: key 'ls' is missing; expected complex LS at the pilots [N, {n_pf}, {n_ps}]")
    ls = z["ls"][None] if z["ls"].ndim == 2 else z["ls"]
    if ls.ndim != 3 or ls.shape[1:] != grid.pilot_shape or not len(ls):
        raise UserError(f"{source}: key 'ls' has shape {list(ls.shape)}; expected [N, {n_pf}, {n_ps}]")
    n = len(ls)
    if "cond" in z:
        cond = z["cond"].astype(np.float32)
        if cond.size != n * 4:
            raise UserError(f"{source}: key 'cond' has shape {list(cond.shape)}; expected [{n}, 4] "
                            "(model index, snr_db, delay_spread_ns, doppler_hz)")
        cond = cond.reshape(n, 4)
    else:
        cond = np.full((n, 4), np.nan, np.float32)
        cond[:, 0] = 0
        for j, key in enumerate(PRIOR_KEYS, start=1):
            if key in z:
                if z[key].size not in (1, n):
                    raise UserError(f"{source}: key {key!r} has {z[key].size} values; expected 1 or {n}")
                cond[:, j] = np.broadcast_to(z[key].astype(np.float32).reshape(-1), (n,))
    if need_truth and "h" not in z:
        raise UserError(f"{source}: key 'h' (the true channel [N, {grid.n_subcarriers}, {grid.n_symbols}]) "
                        "is missing; evaluating needs it")
    h = z["h"] if "h" in z else np.zeros((n, grid.n_subcarriers, grid.n_symbols), np.complex64)
    if h.shape != (n, grid.n_subcarriers, grid.n_symbols):
        raise UserError(f"{source}: key 'h' has shape {list(h.shape)}; expected "
                        f"[{n}, {grid.n_subcarriers}, {grid.n_symbols}]")
    return ArrayOFDM({"h": h.astype(np.complex64), "ls": ls.astype(np.complex64), "cond": cond}, grid, str(source))


def missing_priors(ds: ArrayOFDM) -> bool:
    return bool(np.isnan(ds.cond[:, 1:]).any())


def write_samples(grid: OFDMGrid, conditions, folder: Path) -> list[Path]:
    """Valid inputs in both layouts, for self-checks: ``grids.npz`` (``ls``, priors by name, ``h``) and one
    AdaFortiTran ``.mat`` file named after its conditions."""
    from scipy.io import savemat

    from sigplex.datasets.ofdm import CHANNEL_MODELS, generate

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = generate(4, 7, grid, conditions)
    npz = folder / "grids.npz"
    np.savez(npz, ls=arrays["ls"], h=arrays["h"], **{k: arrays["cond"][:, j] for j, k in enumerate(PRIOR_KEYS, 1)})
    model, snr, ds, dop = arrays["cond"][0]
    ls_full = np.zeros_like(arrays["h"][0])
    ls_full[grid.pilot_mask()] = arrays["ls"][0].reshape(-1)
    mat = folder / f"1_SNR-{snr:.0f}_DS-{ds:.0f}_DOP-{dop:.0f}_N-{grid.pilot_every}_{CHANNEL_MODELS[int(model)]}.mat"
    savemat(mat, {"H": np.stack([arrays["h"][0], ls_full], -1)})
    return [npz, mat]
