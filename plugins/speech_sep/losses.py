"""Separation losses and metrics: pairwise SI-SDR / SDR and a separate PIT wrapper (asteroid-style).

The pairwise loss builds a ``[B, S_est, S_ref]`` matrix; :class:`PITLossWrapper` finds the best
assignment of estimates to references for every batch item -- all permutations for up to
``exhaustive_max`` (3) speakers, the Hungarian algorithm (``scipy.optimize.linear_sum_assignment``)
beyond -- so every pairwise loss gets permutation-invariant training for free.

Convention: ``perm[b, j]`` is the estimate assigned to reference ``j``, so
``reorder(est, perm)[:, j]`` lines up with ``ref[:, j]``.
"""
from __future__ import annotations

import itertools
from typing import Callable

import torch
from torch import nn

from sigplex.core.ops.linalg import solve_psd

EPS = 1e-8


def si_sdr(est: torch.Tensor, ref: torch.Tensor, zero_mean: bool = True, eps: float = EPS) -> torch.Tensor:
    """Scale-invariant SDR in dB over the last axis: ``10 log10(|a s|^2 / |a s - ŝ|^2)``, ``a = <ŝ,s>/|s|^2``."""
    if zero_mean:
        est = est - est.mean(-1, keepdim=True)
        ref = ref - ref.mean(-1, keepdim=True)
    scale = (est * ref).sum(-1, keepdim=True) / (ref.square().sum(-1, keepdim=True) + eps)
    target = scale * ref
    noise = est - target
    return 10 * torch.log10((target.square().sum(-1) + eps) / (noise.square().sum(-1) + eps))


def sdr(est: torch.Tensor, ref: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    """Plain SDR (signal-to-distortion ratio, no scale or filter allowed) in dB over the last axis."""
    return 10 * torch.log10((ref.square().sum(-1) + eps) / ((ref - est).square().sum(-1) + eps))


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


def pairwise_neg_sisdr(est: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """``[B, S, T]`` estimates and references -> ``[B, S_est, S_ref]`` of negative SI-SDR."""
    return -si_sdr(est.unsqueeze(2), ref.unsqueeze(1))


def pairwise_neg_sdr(est: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """``[B, S, T]`` -> ``[B, S_est, S_ref]`` of negative plain SDR."""
    return -sdr(est.unsqueeze(2), ref.unsqueeze(1))


def _all_perms(n: int, device) -> torch.Tensor:
    return torch.tensor(list(itertools.permutations(range(n))), dtype=torch.long, device=device)


def best_perm_exhaustive(cost: torch.Tensor) -> torch.Tensor:
    """Minimum-cost assignment by trying every permutation: ``cost [B, S, S] -> perm [B, S]``."""
    b, s, _ = cost.shape
    perms = _all_perms(s, cost.device)  # [P, S]: perms[p, j] = estimate for reference j
    cols = torch.arange(s, device=cost.device)
    totals = cost[:, perms, cols].sum(-1)  # [B, P]
    return perms[totals.argmin(-1)]


def best_perm_hungarian(cost: torch.Tensor) -> torch.Tensor:
    """Minimum-cost assignment with the Hungarian algorithm (scipy): ``[B, S, S] -> [B, S]``."""
    from scipy.optimize import linear_sum_assignment

    out = torch.empty(cost.shape[:2], dtype=torch.long)
    for b, mat in enumerate(cost.detach().double().cpu().numpy()):
        rows, cols = linear_sum_assignment(mat)  # estimate rows[i] -> reference cols[i]
        out[b, torch.as_tensor(cols)] = torch.as_tensor(rows)
    return out.to(cost.device)


def best_permutation(cost: torch.Tensor, exhaustive_max: int = 3) -> torch.Tensor:
    """Exhaustive search up to ``exhaustive_max`` sources, Hungarian beyond."""
    cost = cost.detach()
    return best_perm_exhaustive(cost) if cost.shape[-1] <= exhaustive_max else best_perm_hungarian(cost)


def reorder(est: torch.Tensor, perm: torch.Tensor) -> torch.Tensor:
    """``est [B, S, ...]`` reordered so that ``out[:, j] = est[:, perm[:, j]]``."""
    index = perm.view(*perm.shape, *([1] * (est.dim() - 2))).expand(*perm.shape, *est.shape[2:])
    return torch.gather(est, 1, index)


class PITLossWrapper(nn.Module):
    """Permutation-invariant training around any pairwise loss ``(est, ref) -> [B, S, S]``.

    ``forward(est, ref, return_perm=False)`` -> mean over the batch of the best assignment's
    mean cost (and the permutations ``[B, S]`` if asked).
    """

    def __init__(self, pairwise_loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = pairwise_neg_sisdr,
                 exhaustive_max: int = 3):
        super().__init__()
        self.pairwise_loss = pairwise_loss
        self.exhaustive_max = exhaustive_max

    def forward(self, est, ref, return_perm: bool = False):
        if est.shape != ref.shape:
            raise ValueError(f"estimates {tuple(est.shape)} and references {tuple(ref.shape)} differ in shape")
        cost = self.pairwise_loss(est, ref)
        perm = best_permutation(cost, self.exhaustive_max)
        cols = torch.arange(cost.shape[-1], device=cost.device).expand_as(perm)
        per_item = cost[torch.arange(cost.shape[0], device=cost.device)[:, None], perm, cols]  # [B, S]
        loss = per_item.mean()
        return (loss, perm) if return_perm else loss


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


__all__ = ["PITLossWrapper", "best_perm_exhaustive", "bss_sdr", "best_perm_hungarian", "best_permutation",
           "pairwise_neg_sdr", "pairwise_neg_sisdr", "perceptual_metrics", "reorder", "sdr", "si_sdr",
           "separation_metrics"]
