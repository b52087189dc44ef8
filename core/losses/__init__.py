"""Domain-free losses: pairwise SI-SDR / SDR matrices and permutation-invariant training (PIT).

``PITLossWrapper(pairwise_neg_sisdr)`` trains any model whose outputs have no fixed order
(separated sources, set predictions): the pairwise loss builds a ``[B, S_est, S_ref]``
cost matrix and the wrapper picks the best assignment per item.
"""
from .pairwise_sdr import EPS, pairwise_neg_sdr, pairwise_neg_sisdr, sdr, si_sdr
from .pit import PITLossWrapper, best_perm_exhaustive, best_perm_hungarian, best_permutation, reorder

__all__ = ["EPS", "PITLossWrapper", "best_perm_exhaustive", "best_perm_hungarian", "best_permutation",
           "pairwise_neg_sdr", "pairwise_neg_sisdr", "reorder", "sdr", "si_sdr"]
