"""speech_sep separation metrics: BSS-eval SDR, improvements over the mixture, PESQ/STOI; the core's PIT names."""
import numpy as np
import pytest
import torch

from sigplex.plugins.speech_sep.losses import bss_sdr, sdr, separation_metrics


def test_the_core_losses_keep_their_speech_sep_names():
    import sigplex.core.losses as core
    from sigplex.plugins.speech_sep import losses

    for name in ("PITLossWrapper", "best_perm_exhaustive", "best_perm_hungarian", "best_permutation", "reorder",
                 "pairwise_neg_sisdr", "pairwise_neg_sdr", "si_sdr", "sdr", "EPS"):
        assert getattr(losses, name) is getattr(core, name), name


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
