"""SI-SDR against a hand computation, PIT permutation search (exhaustive, Hungarian, brute force)."""
import itertools

import numpy as np
import pytest
import torch

from sigplex.plugins.speech_sep.losses import (
    PITLossWrapper,
    best_perm_exhaustive,
    best_perm_hungarian,
    best_permutation,
    bss_sdr,
    pairwise_neg_sisdr,
    reorder,
    sdr,
    separation_metrics,
    si_sdr,
)


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
    assert float(loss) == pytest.approx(float(expected), abs=1e-5)
    assert float(loss) < -15  # aligned: ~20 dB SI-SDR


def test_pit_loss_has_gradients_and_ignores_order():
    torch.manual_seed(0)
    ref = torch.randn(2, 2, 300)
    est = torch.randn(2, 2, 300, requires_grad=True)
    loss_fn = PITLossWrapper(pairwise_neg_sisdr)
    loss = loss_fn(est, ref)
    loss.backward()
    assert est.grad is not None and torch.isfinite(est.grad).all() and est.grad.abs().sum() > 0
    assert float(loss_fn(est.detach().flip(1), ref)) == pytest.approx(float(loss.detach()), abs=1e-6)


def test_hungarian_equals_exhaustive_for_three_speakers():
    torch.manual_seed(0)
    cost = torch.randn(200, 3, 3)
    assert torch.equal(best_perm_hungarian(cost), best_perm_exhaustive(cost))


def test_search_switches_to_hungarian_beyond_three_and_stays_optimal():
    torch.manual_seed(1)
    cost = torch.randn(20, 5, 5)
    perm = best_permutation(cost)
    assert torch.equal(perm, best_perm_exhaustive(cost))  # 120 permutations: still checkable
    assert all(sorted(p.tolist()) == list(range(5)) for p in perm)


def test_separation_metrics_improvement_is_relative_to_the_mixture():
    torch.manual_seed(0)
    ref = torch.randn(1, 2, 800)
    mix = ref.sum(1)
    perfect = separation_metrics(ref.flip(1) * 2, ref, mix)
    assert float(perfect["si_sdr"]) > 60 and torch.equal(perfect["perm"], torch.tensor([[1, 0]]))
    trivial = separation_metrics(torch.stack([mix, mix], 1), ref, mix)
    assert float(trivial["si_sdri"]) == pytest.approx(0.0, abs=1e-4)
    assert float(trivial["sdri"]) == pytest.approx(0.0, abs=1e-4)


def test_pesq_and_stoi_are_skipped_cleanly_when_missing(monkeypatch):
    import sys

    from sigplex.plugins.speech_sep.losses import perceptual_metrics

    monkeypatch.setitem(sys.modules, "pesq", None)  # import now raises ImportError
    monkeypatch.setitem(sys.modules, "pystoi", None)
    ref = np.random.default_rng(0).standard_normal((2, 8000))
    assert perceptual_metrics(ref, ref, 8000) == {}


def test_pesq_and_stoi_are_used_when_installed(monkeypatch):
    import sys
    import types

    from sigplex.plugins.speech_sep.losses import perceptual_metrics

    calls = []
    fake_pesq = types.ModuleType("pesq")
    fake_pesq.pesq = lambda fs, ref, deg, mode: calls.append((fs, mode)) or 3.0
    fake_stoi = types.ModuleType("pystoi")
    fake_stoi.stoi = lambda ref, deg, fs: 0.5
    monkeypatch.setitem(sys.modules, "pesq", fake_pesq)
    monkeypatch.setitem(sys.modules, "pystoi", fake_stoi)
    ref = np.zeros((2, 100))
    assert perceptual_metrics(ref, ref, 8000) == {"pesq": 3.0, "stoi": 0.5}
    assert perceptual_metrics(ref, ref, 16000)["pesq"] == 3.0
    assert calls == [(8000, "nb"), (8000, "nb"), (16000, "wb"), (16000, "wb")]
    assert "pesq" not in perceptual_metrics(ref, ref, 22050)  # PESQ is defined at 8 / 16 kHz only


def test_bss_sdr_equals_mir_eval_bss_eval_sources():
    import warnings

    separation = pytest.importorskip("mir_eval.separation")
    rng = np.random.default_rng(0)
    t = 3000
    ref = rng.standard_normal((2, t))
    ref[1] = np.convolve(ref[1], np.ones(5) / 5, "same")  # a coloured source too
    est = np.stack([0.7 * np.convolve(ref[0], [1, 0.5, 0.2], "same") + 0.3 * ref[1] + 0.1 * rng.standard_normal(t),
                    2 * ref[1] + 0.5 * ref[0]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = separation.bss_eval_sources(ref, est, compute_permutation=False)[0]
    got = bss_sdr(torch.tensor(est), torch.tensor(ref)).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-3)
    # a filtered copy of the reference is not distortion; plain SDR calls it one
    filtered = torch.tensor(np.convolve(ref[0], [0.9, 0.4, -0.2])[:t])  # causal FIR, as BSS-eval allows
    assert float(bss_sdr(filtered, torch.tensor(ref[0]))) > 40
    assert float(sdr(filtered, torch.tensor(ref[0]))) < 10
