"""Batched solves of symmetric / Hermitian positive (semi-)definite systems, robust on CPU.

Why not ``torch.linalg.solve``: in the torch 2.14.1 CPU build pinned here, batched LU solves
of a few hundred unknowns fail ("Pivots given to lu_solve must all be greater or equal to
1", oneMKL ``DLASWP`` parameter errors) once ``torch.set_num_threads`` has been called, even
with the default thread count. Gram and covariance systems are positive definite, so a
Cholesky solve is both the right method and unaffected; singular items fall back to a
least-squares solve (``gelsd``, minimum norm), as ``numpy.linalg.lstsq`` would.

>>> import torch
>>> a = torch.tensor([[4.0, 1.0], [1.0, 3.0]], dtype=torch.float64)
>>> solve_psd(a, torch.tensor([[1.0], [2.0]], dtype=torch.float64)).squeeze(-1)
tensor([0.0909, 0.6364], dtype=torch.float64)
"""
from __future__ import annotations

import torch


def solve_psd(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``x`` with ``a x = b``: ``a`` ``[..., n, n]`` symmetric/Hermitian PSD, ``b`` ``[..., n, k]`` (same batch dims)."""
    if a.shape[:-2] != b.shape[:-2] or a.shape[-1] != a.shape[-2] or b.shape[-2] != a.shape[-1]:
        raise ValueError(f"solve_psd: a {tuple(a.shape)} and b {tuple(b.shape)}: expected [..., n, n] and [..., n, k]")
    batch = a.shape[:-2]
    a2, b2 = a.reshape(-1, *a.shape[-2:]), b.reshape(-1, *b.shape[-2:])
    factor, info = torch.linalg.cholesky_ex(a2)
    x = torch.cholesky_solve(b2, factor)
    bad = info != 0
    if bool(bad.any()):  # not positive definite (e.g. a silent reference): minimum-norm least squares
        x[bad] = torch.linalg.lstsq(a2[bad], b2[bad], driver="gelsd").solution
    return x.reshape(*batch, *x.shape[-2:])


__all__ = ["solve_psd"]
