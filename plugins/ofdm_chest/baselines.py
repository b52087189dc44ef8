"""Classical OFDM channel estimators in the same evaluation: LS + linear interpolation, LMMSE, genie LMMSE.

* ``ls_linear`` — LS at the pilots (the input) interpolated by sionna's ``LSChannelEstimator``
  with ``interpolation_type="lin"`` (linear across subcarriers then symbols, held at the edges).
* ``lmmse`` — sionna's ``LMMSEChannelEstimator`` (frequency then time filtering) with one fixed
  covariance for the whole set, designed for the worst case of the evaluation range
  (TDL-A, 300 ns, 1000 Hz) and the per-grid noise variance: what a receiver can run.
* ``genie_lmmse`` — 2D LMMSE ``R_hp (R_pp + σ² I)^-1 ĥ_LS`` with each grid's *true* covariance
  ``R = R_t ⊗ R_f`` from sionna's ``tdl_time_cov_mat``/``tdl_freq_cov_mat`` (its own model,
  delay spread and Doppler): the linear-estimation bound. For CDL grids the TDL of the same
  letter stands in (an approximation).
Inputs: ``ls`` complex ``[B, n_pf, n_ps]``; ``cond`` ``[B, 4]`` (model index, SNR dB, DS ns, Doppler Hz).
Outputs: complex ``[B, F, S]``.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from sigplex.core.ops.linalg import solve_psd
from sigplex.datasets.ofdm import CHANNEL_MODELS, OFDMGrid
from sigplex.datasets.ofdm.channels import SPEED_OF_LIGHT

LMMSE_DESIGN = ("A", 300.0, 1000.0)  # TDL letter, delay spread ns, Doppler Hz of the fixed-covariance LMMSE


def noise_var(cond) -> torch.Tensor:
    """Complex noise variance per grid from its SNR (unit-power pilots and channel)."""
    return torch.as_tensor(10.0 ** (-np.asarray(cond)[:, 1] / 10.0), dtype=torch.float32)


def _rx_grid(ls, grid: OFDMGrid):
    """Received pilot symbols placed on a sionna grid ``[B, 1, 1, S, F]`` (so that y / x = ls)."""
    B = ls.shape[0]
    y = torch.zeros(B, 1, 1, grid.n_symbols, grid.n_subcarriers, dtype=torch.complex64)
    mask = torch.as_tensor(grid.pilot_mask().T)
    x = torch.as_tensor(grid.pilots())
    yp = (torch.as_tensor(ls, dtype=torch.complex64) * x).transpose(1, 2).reshape(B, -1)  # (symbol, subcarrier) order
    y[:, 0, 0][:, mask] = yp
    return y


@lru_cache(maxsize=4)
def _sionna_estimators(grid: OFDMGrid):
    from sionna.phy.ofdm import LMMSEChannelEstimator, LSChannelEstimator, tdl_freq_cov_mat, tdl_time_cov_mat

    rg = grid.resource_grid()
    letter, ds, dop = LMMSE_DESIGN
    rf = tdl_freq_cov_mat(letter, grid.subcarrier_spacing, grid.n_subcarriers, ds * 1e-9)
    rt = tdl_time_cov_mat(letter, dop * SPEED_OF_LIGHT / grid.carrier_frequency, grid.carrier_frequency,
                          grid.symbol_duration, grid.n_symbols)
    return LSChannelEstimator(rg, interpolation_type="lin"), LMMSEChannelEstimator(rg, rt, rf, order="f-t")


def _run_sionna(est, ls, cond, grid):
    h, _ = est(_rx_grid(ls, grid), noise_var(cond))
    return h.reshape(-1, grid.n_symbols, grid.n_subcarriers).transpose(1, 2)


def ls_linear(ls, cond, grid: OFDMGrid = OFDMGrid()) -> torch.Tensor:
    """LS at the pilots + sionna's linear interpolation."""
    return _run_sionna(_sionna_estimators(grid)[0], ls, cond, grid)


def lmmse(ls, cond, grid: OFDMGrid = OFDMGrid()) -> torch.Tensor:
    """sionna's LMMSE estimator with the fixed design covariance and each grid's noise variance."""
    return _run_sionna(_sionna_estimators(grid)[1], ls, cond, grid)


@lru_cache(maxsize=4096)
def _covariances(letter: str, ds_ns: float, dop_hz: float, grid: OFDMGrid):
    from sionna.phy.ofdm import tdl_freq_cov_mat, tdl_time_cov_mat

    rf = tdl_freq_cov_mat(letter, grid.subcarrier_spacing, grid.n_subcarriers, ds_ns * 1e-9, precision="double")
    rt = tdl_time_cov_mat(letter, dop_hz * SPEED_OF_LIGHT / grid.carrier_frequency, grid.carrier_frequency,
                          grid.symbol_duration, grid.n_symbols, precision="double")
    return rf, rt


def true_covariances(cond, grid: OFDMGrid = OFDMGrid()):
    """Per-grid frequency ``[B, F, F]`` and time ``[B, S, S]`` covariances from sionna (complex128)."""
    pairs = [_covariances(CHANNEL_MODELS[int(c[0])][-1], float(c[2]), float(c[3]), grid) for c in np.asarray(cond)]
    return torch.stack([p[0] for p in pairs]), torch.stack([p[1] for p in pairs])


def lmmse_2d(ls, rf, rt, no, grid: OFDMGrid = OFDMGrid()) -> torch.Tensor:
    """Batched 2D LMMSE with Kronecker covariance ``R[(f,s),(f',s')] = Rf[f,f'] Rt[s,s']``."""
    pf = torch.as_tensor(grid.pilot_subcarriers)
    ps = torch.as_tensor(list(grid.pilot_symbols))
    B, P = rf.shape[0], len(pf) * len(ps)
    rhp = (rf[:, :, None, pf, None] * rt[:, None, :, None, ps]).reshape(B, grid.n_subcarriers * grid.n_symbols, P)
    rpp = (rf[:, pf][:, :, None, pf, None] * rt[:, ps][:, None, :, None, ps]).reshape(B, P, P)
    eye = torch.eye(P, dtype=rpp.dtype)
    a = rpp + torch.as_tensor(no, dtype=torch.float64).reshape(B, 1, 1) * eye
    x = solve_psd(a, torch.as_tensor(ls).reshape(B, P, 1).to(rpp.dtype))  # Hermitian PD: Cholesky
    return (rhp @ x).reshape(B, grid.n_subcarriers, grid.n_symbols).to(torch.complex64)


def genie_lmmse(ls, cond, grid: OFDMGrid = OFDMGrid()) -> torch.Tensor:
    """2D LMMSE with every grid's true covariance and noise variance (the linear bound)."""
    rf, rt = true_covariances(cond, grid)
    return lmmse_2d(ls, rf, rt, noise_var(cond).double(), grid)


BASELINES = {"ls": ls_linear, "lmmse": lmmse, "genie": genie_lmmse}

__all__ = ["BASELINES", "genie_lmmse", "lmmse", "lmmse_2d", "ls_linear", "noise_var", "true_covariances"]
