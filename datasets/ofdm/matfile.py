"""Reader for the AdaFortiTran ``.mat`` layout: key ``H`` of shape ``[F, S, ≥2]`` (ideal channel, LS with zeros off-pilot).

Conditions come from the file name: ``{n}_SNR-{snr}_DS-{ns}_DOP-{hz}_N-{pilot_every}_{TYPE}.mat``
(e.g. ``1_SNR-10_DS-50_DOP-200_N-10_TDL-A.mat``). Errors name the file, the key and what was expected.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from sigplex.core.arrays import require_numeric
from sigplex.core.errors import UserError
from sigplex.core.limits import check_size

from .channels import CHANNEL_MODELS, OFDMGrid

NAME = re.compile(r"(\d+)_SNR-(-?\d+(?:\.\d+)?)_DS-(\d+(?:\.\d+)?)_DOP-(\d+(?:\.\d+)?)_N-(\d+)_([A-Za-z\-]+)\.mat$")


def parse_name(path: Path) -> np.ndarray:
    """``[model index, SNR dB, delay spread ns, Doppler Hz]`` from the file name."""
    m = NAME.match(Path(path).name)
    if m is None:
        raise UserError(f"{path}: file name does not give the conditions; expected "
                        "'{n}_SNR-{dB}_DS-{ns}_DOP-{Hz}_N-{pilot spacing}_{TDL-A..E|CDL-A..E}.mat'")
    kind = m.group(6).upper()
    idx = CHANNEL_MODELS.index(kind) if kind in CHANNEL_MODELS else -1
    return np.array([idx, float(m.group(2)), float(m.group(3)), float(m.group(4))], np.float32)


def read_mat(path: str | Path, grid: OFDMGrid = OFDMGrid()) -> dict[str, np.ndarray]:
    """One ``.mat`` file -> ``h`` ``[1, F, S]``, ``ls`` at the pilot grid ``[1, n_pf, n_ps]``, ``cond`` ``[1, 4]``."""
    from scipy.io import loadmat, whosmat

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: file not found")
    try:
        declared = whosmat(str(path))  # names and shapes, before anything is decompressed
        check_size(sum(16 * int(np.prod(shape, dtype=np.float64)) for _, shape, _ in declared), path,
                   "the variables of the .mat file")
        mat = loadmat(str(path))
    except UserError:
        raise
    except Exception as exc:
        raise UserError(f"{path}: not a readable .mat file ({type(exc).__name__}: {exc})") from None
    if "H" not in mat:
        keys = ", ".join(k for k in mat if not k.startswith("__")) or "none"
        raise UserError(f"{path}: key 'H' is missing (found: {keys}); expected H of shape "
                        f"[{grid.n_subcarriers}, {grid.n_symbols}, >=2] = (ideal channel, LS with zeros off-pilot)")
    H = require_numeric(mat["H"], path, "key 'H'")
    want = (grid.n_subcarriers, grid.n_symbols)
    if H.ndim != 3 or H.shape[:2] != want or H.shape[2] < 2:
        raise UserError(f"{path}: key 'H' has shape {list(H.shape)}; expected [{want[0]}, {want[1]}, >=2] "
                        "(subcarriers, symbols, [ideal, LS, ...])")
    ls_full = H[:, :, 1].astype(np.complex64)
    mask = grid.pilot_mask()
    off = np.abs(ls_full[~mask]).max() if (~mask).any() else 0.0
    if off > 0 or np.count_nonzero(ls_full[mask]) == 0:
        raise UserError(f"{path}: key 'H'[:, :, 1] (LS) is not zero off the pilot grid (every {grid.pilot_every}th "
                        f"subcarrier from {grid.pilot_offset}, symbols {list(grid.pilot_symbols)}); check the pilot "
                        "settings (data.pilot_every, data.pilot_symbols)")
    return {"h": H[None, :, :, 0].astype(np.complex64),
            "ls": ls_full[mask].reshape(1, *grid.pilot_shape),
            "cond": parse_name(path)[None]}


def read_mat_files(source: str | Path, grid: OFDMGrid = OFDMGrid()) -> dict[str, np.ndarray]:
    """A ``.mat`` file or a folder of them (sorted by name), stacked."""
    source = Path(source)
    files = sorted(source.glob("*.mat")) if source.is_dir() else [source]
    if not files:
        raise UserError(f"{source}: no .mat files in this folder")
    parts = [read_mat(f, grid) for f in files]
    return {k: np.concatenate([p[k] for p in parts]) for k in ("h", "ls", "cond")}


def write_mat(path: str | Path, h: np.ndarray, ls: np.ndarray, grid: OFDMGrid = OFDMGrid()) -> None:
    """Write one grid in the AdaFortiTran layout (``h`` ``[F, S]``, ``ls`` ``[n_pf, n_ps]``)."""
    from scipy.io import savemat

    full = np.zeros_like(h, dtype=np.complex64)
    full[grid.pilot_mask()] = np.asarray(ls).reshape(-1)
    savemat(str(path), {"H": np.stack([h, full], axis=2)})


__all__ = ["parse_name", "read_mat", "read_mat_files", "write_mat"]
