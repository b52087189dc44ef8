"""Separation metrics (BSS-eval SDR, SI-SDR/SDR improvements, PESQ/STOI) on the core's PIT losses.

The domain-free parts live in the core and are re-exported here under their old names:
pairwise SI-SDR / SDR in :mod:`sigplex.core.losses.pairwise_sdr` and the permutation-invariant
wrapper (:class:`PITLossWrapper`, exhaustive up to 3 sources, Hungarian beyond) in
:mod:`sigplex.core.losses.pit`. Convention: ``perm[b, j]`` is the estimate assigned to reference
``j``, so ``reorder(est, perm)[:, j]`` lines up with ``ref[:, j]``.
"""
from __future__ import annotations

import torch

from sigplex.core.losses.pairwise_sdr import EPS, pairwise_neg_sdr, pairwise_neg_sisdr, sdr, si_sdr
from sigplex.core.losses.pit import (
    PITLossWrapper,
    best_perm_exhaustive,
    best_perm_hungarian,
    best_permutation,
    reorder,
)
from sigplex.core.ops.linalg import solve_psd


def bss_sdr(est: torch.Tensor, ref: torch.Tensor, filter_length: int = 512) -> torch.Tensor:
    """BSS-eval v3 SDR in dB (the ``sdr`` of ``mir_eval.separation.bss_eval_sources``), batched.

    The allowed distortion is a time-invariant FIR filter of ``filter_length`` taps applied to
    the reference: with ``P`` the projection onto the reference's delayed copies (0 ..
    ``filter_length - 1`` samples, signals zero-padded by as many), SDR =
    ``10 log10(|P ŝ|^2 / |ŝ - P ŝ|^2)``. Solved per item in float64 from FFT correlations:
    ``G c = d`` with ``G`` the reference's Toeplitz autocorrelation and ``d`` its cross-correlation
    with ``ŝ``; then ``|P ŝ|^2 = c·d``. ``est``/``ref`` ``[..., T]`` -> ``[...]``.
    """
    shape = torch.broadcast_shapes(est.shape, ref.shape)
    est = est.expand(shape).reshape(-1, shape[-1]).double()
    ref = ref.expand(shape).reshape(-1, shape[-1]).double()
    length = shape[-1]
    taps = min(filter_length, length)
    n_fft = 1 << (length + taps - 2).bit_length()
    fr = torch.fft.rfft(ref, n_fft)
    auto = torch.fft.irfft(fr * fr.conj(), n_fft)[:, :taps]                # r[k] = sum_t s[t+k] s[t]
    cross = torch.fft.irfft(fr.conj() * torch.fft.rfft(est, n_fft), n_fft)  # x[k] = sum_t s[t] ŝ[t+k]
    lag = torch.arange(taps)
    gram = auto[:, (lag[:, None] - lag[None, :]).abs()]                     # G[a, b] = r[|a - b|]
    d = cross[:, :taps, None]                                               # d[a] = <s delayed by a, ŝ>
    c = solve_psd(gram, d)  # a Gram matrix; singular ones (silent reference) by least squares, as mir_eval
    target = (c * d).sum((1, 2))
    residual = (est.square().sum(-1) - target).clamp_min(1e-30)
    return (10 * torch.log10(target.clamp_min(1e-30) / residual)).float().reshape(shape[:-1])


@torch.no_grad()
def separation_metrics(est: torch.Tensor, ref: torch.Tensor, mix: torch.Tensor) -> dict[str, torch.Tensor]:
    """SI-SDR, SI-SDRi, SDR and SDRi per item after the best SI-SDR permutation.

    SDR is BSS-eval v3's (:func:`bss_sdr`, 512-tap distortion filter), as SpeechBrain and
    Asteroid report it through ``mir_eval``. ``est``/``ref`` ``[B, S, T]``, ``mix`` ``[B, T]``
    -> each value ``[B]`` (mean over sources).
    """
    perm = best_permutation(pairwise_neg_sisdr(est, ref))
    est = reorder(est, perm)
    mix = mix.unsqueeze(1).expand_as(ref)
    s_est, s_mix = si_sdr(est, ref), si_sdr(mix, ref)
    d_est, d_mix = bss_sdr(est, ref), bss_sdr(mix, ref)
    return {"si_sdr": s_est.mean(1), "si_sdri": (s_est - s_mix).mean(1),
            "sdr": d_est.mean(1), "sdri": (d_est - d_mix).mean(1), "perm": perm}


def perceptual_metrics(est, ref, sample_rate: int) -> dict[str, float]:
    """PESQ and STOI averaged over sources when ``pesq`` / ``pystoi`` are installed (else empty).

    ``est``/``ref``: aligned ``[S, T]`` numpy arrays. PESQ uses narrow-band mode at 8 kHz and
    wide-band at 16 kHz; other rates give no PESQ.
    """
    out: dict[str, float] = {}
    try:
        from pesq import pesq
    except ImportError:
        pesq = None
    try:
        from pystoi import stoi
    except ImportError:
        stoi = None
    if pesq is not None and sample_rate in (8000, 16000):
        mode = "nb" if sample_rate == 8000 else "wb"
        try:
            out["pesq"] = float(sum(pesq(sample_rate, r, e, mode) for r, e in zip(ref, est)) / len(ref))
        except Exception:  # pesq raises on silent or too-short signals
            pass
    if stoi is not None:
        out["stoi"] = float(sum(stoi(r, e, sample_rate) for r, e in zip(ref, est)) / len(ref))
    return out


__all__ = ["EPS", "PITLossWrapper", "best_perm_exhaustive", "bss_sdr", "best_perm_hungarian", "best_permutation",
           "pairwise_neg_sdr", "pairwise_neg_sisdr", "perceptual_metrics", "reorder", "sdr", "si_sdr",
           "separation_metrics"]
