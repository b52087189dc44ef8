"""NMSE of every estimator (the model, LS, LMMSE, genie LMMSE), overall and per condition bin.

NMSE = E‖H − Ĥ‖² / E‖H‖² in dB, summed over every grid of a bin.
"""
from __future__ import annotations

import torch

SNR_BINS = [(0, 5), (5, 10), (10, 15), (15, 20), (20, 25), (25, 30)]
DOPPLER_BINS = [(200, 400), (400, 600), (600, 800), (800, 1000), (1000, 1400)]
DS_BINS = [(50, 100), (100, 150), (150, 200), (200, 250), (250, 300), (300, 350)]
BIN_AXES = (("snr_db", 1, SNR_BINS), ("doppler_hz", 3, DOPPLER_BINS), ("delay_spread_ns", 2, DS_BINS))


def nmse_db(h_hat, h) -> float:
    """NMSE = E‖H − Ĥ‖² / E‖H‖² in dB (sums over every grid given)."""
    h_hat, h = torch.as_tensor(h_hat), torch.as_tensor(h)
    return float(10 * torch.log10((h_hat - h).abs().square().sum() / h.abs().square().sum()))


def to_complex(x: torch.Tensor) -> torch.Tensor:
    """``[B, 2, ...]`` real/imag -> complex ``[B, ...]``."""
    return torch.complex(x[:, 0].float(), x[:, 1].float())


def baseline_estimates(dataset, ls: torch.Tensor, cond, names, grid, batch_size: int) -> dict:
    """Complex ``[N, F, S]`` estimates of the classical estimators ``names``.

    They do not change during training, so they are kept on the dataset object and computed once.
    """
    from .baselines import BASELINES

    cache = getattr(dataset, "_baseline_cache", None)
    if cache is None:
        cache = {}
        try:
            dataset._baseline_cache = cache
        except AttributeError:
            pass
    for name in names:
        if name not in cache:
            cache[name] = torch.cat([BASELINES[name](ls[i:i + batch_size], cond[i:i + batch_size], grid)
                                     for i in range(0, len(ls), batch_size)])
    return {name: cache[name] for name in names}


def nmse_metrics(est: dict, h: torch.Tensor, cond, names) -> dict[str, float]:
    """``nmse_db[_<estimator>]`` overall and per SNR bin (``..._snr0_5``) for each name (``model`` unsuffixed)."""
    metrics = {}
    for name in names:
        suffix = "" if name == "model" else f"_{name}"
        metrics[f"nmse_db{suffix}"] = nmse_db(est[name], h)
        for lo, hi in SNR_BINS:
            sel = torch.as_tensor((cond[:, 1] >= lo) & (cond[:, 1] < hi))
            if sel.any():
                metrics[f"nmse_db{suffix}_snr{lo}_{hi}"] = nmse_db(est[name][sel], h[sel])
    return metrics


def nmse_table(est: dict, h: torch.Tensor, cond, names) -> list[list]:
    """Rows ``[axis, lo, hi, n, nmse per estimator...]`` for SNR, Doppler and delay-spread bins."""
    rows = []
    for axis, col, bins in BIN_AXES:
        for lo, hi in bins:
            sel = (cond[:, col] >= lo) & (cond[:, col] < hi)
            if sel.any():
                s = torch.as_tensor(sel)
                rows.append([axis, lo, hi, int(sel.sum()), *[round(nmse_db(est[n][s], h[s]), 3) for n in names]])
    return rows
