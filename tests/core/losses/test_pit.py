"""sigplex.core.losses.pit: PIT permutation search (exhaustive, Hungarian, brute force) and the wrapper."""
import itertools

import numpy as np
import pytest
import torch

from sigplex.core.losses import (
    PITLossWrapper,
    best_perm_exhaustive,
    best_perm_hungarian,
    best_permutation,
    pairwise_neg_sisdr,
    reorder,
    si_sdr,
)


def brute_force(est, ref):
    """Best permutation and loss by a Python loop over every permutation (reference)."""
    s = est.shape[1]
    best = []
    for b in range(est.shape[0]):
        scores = {p: np.mean([-float(si_sdr(est[b, p[j]], ref[b, j])) for j in range(s)])
                  for p in itertools.permutations(range(s))}
        best.append(min(scores, key=scores.get))
    return torch.tensor(best)


@pytest.mark.parametrize("n_src", [2, 3])
def test_pit_picks_the_right_permutation_and_equals_brute_force(n_src):
    torch.manual_seed(n_src)
    ref = torch.randn(6, n_src, 400)
    true_perm = torch.stack([torch.randperm(n_src) for _ in range(6)])  # est[:, true_perm[j]] ~ ref[:, j]
    est = torch.empty_like(ref)
    for b in range(6):
        est[b, true_perm[b]] = ref[b] + 0.1 * torch.randn(n_src, 400)
    loss, perm = PITLossWrapper()(est, ref, return_perm=True)
    assert torch.equal(perm, true_perm)
    assert torch.equal(perm, brute_force(est, ref))
    expected = -si_sdr(reorder(est, perm), ref).mean()
    assert float(loss) == pytest.approx(float(expected), rel=1e-6)  # another summation order: rounding only
    assert float(loss) < -15  # aligned: ~20 dB SI-SDR


def test_pit_loss_has_gradients_and_ignores_order():
    torch.manual_seed(0)
    ref = torch.randn(2, 2, 300)
    est = torch.randn(2, 2, 300, requires_grad=True)
    loss_fn = PITLossWrapper(pairwise_neg_sisdr)
    loss = loss_fn(est, ref)
    loss.backward()
    assert est.grad is not None and torch.isfinite(est.grad).all() and est.grad.abs().sum() > 0
    # the same pairs, averaged in another order: equal up to float32 rounding of a sum of ~25 dB values
    assert float(loss_fn(est.detach().flip(1), ref)) == pytest.approx(float(loss.detach()), rel=1e-6)


def test_hungarian_equals_exhaustive_for_three_speakers():
    pytest.importorskip("scipy")
    torch.manual_seed(0)
    cost = torch.randn(200, 3, 3)
    assert torch.equal(best_perm_hungarian(cost), best_perm_exhaustive(cost))


def test_search_switches_to_hungarian_beyond_three_and_stays_optimal():
    pytest.importorskip("scipy")
    torch.manual_seed(1)
    cost = torch.randn(20, 5, 5)
    perm = best_permutation(cost)
    assert torch.equal(perm, best_perm_exhaustive(cost))  # 120 permutations: still checkable
    assert all(sorted(p.tolist()) == list(range(5)) for p in perm)
