"""sigplex.core.losses.pairwise_sdr: SI-SDR against a hand computation, scale invariance, the pairwise matrices."""
import numpy as np
import pytest
import torch

from sigplex.core.losses import pairwise_neg_sdr, pairwise_neg_sisdr, sdr, si_sdr


def hand_si_sdr(est, ref):
    est, ref = est - est.mean(), ref - ref.mean()
    target = (est @ ref) / (ref @ ref) * ref
    return 10 * np.log10((target @ target) / ((est - target) @ (est - target)))


def test_si_sdr_matches_hand_computation():
    rng = np.random.default_rng(0)
    ref = rng.standard_normal(1000)
    est = 0.7 * ref + 0.3 * rng.standard_normal(1000) + 0.2
    got = float(si_sdr(torch.tensor(est), torch.tensor(ref)))
    assert got == pytest.approx(hand_si_sdr(est, ref), abs=1e-6)
    # a known value: est = ref + orthogonal noise of a tenth of the energy -> 10 dB
    ref2 = np.array([1.0, -1.0, 1.0, -1.0])
    noise = np.array([1.0, 1.0, -1.0, -1.0]) * np.sqrt(0.1)
    assert float(si_sdr(torch.tensor(ref2 + noise), torch.tensor(ref2))) == pytest.approx(10.0, abs=1e-5)


def test_si_sdr_is_scale_invariant_and_sdr_is_not():
    torch.manual_seed(0)
    ref, est = torch.randn(500), torch.randn(500)
    est = ref + 0.5 * est
    assert float(si_sdr(3 * est, ref)) == pytest.approx(float(si_sdr(est, ref)), abs=1e-4)
    assert float(sdr(3 * est, ref)) < float(sdr(est, ref)) - 3


def test_pairwise_matrices_hold_every_estimate_reference_pair():
    torch.manual_seed(0)
    est, ref = torch.randn(2, 3, 200), torch.randn(2, 3, 200)
    for pairwise, single in ((pairwise_neg_sisdr, si_sdr), (pairwise_neg_sdr, sdr)):
        m = pairwise(est, ref)
        assert m.shape == (2, 3, 3)
        for i in range(3):
            for j in range(3):
                torch.testing.assert_close(m[:, i, j], -single(est[:, i], ref[:, j]))
