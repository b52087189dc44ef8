"""Permutation-invariant training: the best assignment of estimates to references, around any pairwise loss.

:class:`PITLossWrapper` takes a pairwise loss ``(est, ref) -> [B, S_est, S_ref]`` and, for
every batch item, finds the assignment of estimates to references with the lowest total cost:
all permutations for up to ``exhaustive_max`` (3) sources, the Hungarian algorithm
(``scipy.optimize.linear_sum_assignment``, imported only then) beyond.

Convention: ``perm[b, j]`` is the estimate assigned to reference ``j``, so
``reorder(est, perm)[:, j]`` lines up with ``ref[:, j]``.

>>> import torch
>>> cost = torch.tensor([[[5.0, 1.0], [0.0, 5.0]]])  # estimate 1 fits reference 0, estimate 0 reference 1
>>> best_permutation(cost)
tensor([[1, 0]])
"""
from __future__ import annotations

import itertools
from typing import Callable

import torch
from torch import nn

from .pairwise_sdr import pairwise_neg_sisdr


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
    try:
        from scipy.optimize import linear_sum_assignment
    except ImportError:
        raise ImportError(f"permutation search over {cost.shape[-1]} sources needs scipy (pip install scipy); "
                          "up to 3 sources need nothing") from None

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


__all__ = ["PITLossWrapper", "best_perm_exhaustive", "best_perm_hungarian", "best_permutation", "reorder"]
