"""The four forecasters: shared constructor and shapes over horizons, normalisation, identity-initialised heads."""
import pytest
import torch

from sigplex.core.models import create_model
from sigplex.plugins.ts_forecast import dctnet, itransformer, ssmixer, tsmixer  # noqa: F401  (register)
from sigplex.plugins.ts_forecast.revin import RevIN, dft_bases, patch_index

SMALL = {"itransformer": {"d_model": 32, "n_heads": 4, "d_ff": 64},
         "tsmixer": {"d_model": 16, "patch_len": 16, "stride": 8, "reconcile": True},
         "dctnet": {"d_model": 16, "n_heads": 2, "d_ff": 32, "patch_len": 16, "stride": 8},
         "ssmixer": {"d_model": 8, "patch_len": 16, "stride": 8, "state_dim": 4}}


@pytest.mark.parametrize("name", sorted(SMALL))
@pytest.mark.parametrize("horizon", [96, 192, 336, 720])
def test_shapes_for_every_horizon(name, horizon):
    torch.manual_seed(0)
    model = create_model(name, n_vars=5, lookback=96, horizon=horizon, n_layers=1, **SMALL[name]).eval()
    out = model(torch.randn(3, 96, 5))
    assert out.shape == (3, horizon, 5)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", sorted(SMALL))
def test_scale_and_shift_equivariance_from_instance_norm(name):
    """Non-stationary normalisation: forecasting a*x+b gives a*f(x)+b (per-window statistics)."""
    torch.manual_seed(0)
    model = create_model(name, n_vars=4, lookback=96, horizon=24, n_layers=1, **SMALL[name]).eval()
    x = torch.randn(2, 96, 4)
    with torch.no_grad():
        torch.testing.assert_close(model(3.0 * x + 7.0), 3.0 * model(x) + 7.0, atol=2e-4, rtol=2e-4)


@pytest.mark.parametrize("name", sorted(SMALL))
def test_variates_interact(name):
    """Each model is multivariate: changing one input series changes another series' forecast."""
    torch.manual_seed(0)
    model = create_model(name, n_vars=4, lookback=96, horizon=24, n_layers=1, **SMALL[name]).eval()
    x = torch.randn(1, 96, 4)
    x2 = x.clone()
    x2[..., 0] = torch.randn(96)
    with torch.no_grad():
        assert not torch.allclose(model(x)[..., 1], model(x2)[..., 1])


def test_tsmixer_reconciliation_head_starts_as_identity():
    torch.manual_seed(0)
    base = create_model("tsmixer", n_vars=3, lookback=64, horizon=16, d_model=8, reconcile=False).eval()
    rec = create_model("tsmixer", n_vars=3, lookback=64, horizon=16, d_model=8, reconcile=True).eval()
    rec.load_state_dict(base.state_dict(), strict=False)
    x = torch.randn(2, 64, 3)
    with torch.no_grad():
        torch.testing.assert_close(rec(x), base(x))


def test_dctnet_frequency_correction_is_identity_at_init_and_filters_when_trained():
    torch.manual_seed(0)
    model = create_model("dctnet", n_vars=3, lookback=64, horizon=16, d_model=8, n_heads=2, d_ff=16).eval()
    y = torch.randn(2, 3, 16)
    torch.testing.assert_close(model.correction(y), y, atol=1e-5, rtol=1e-5)
    with torch.no_grad():
        model.correction.gain_re.zero_()
        model.correction.gain_re[0] = 1.0                   # keep only the mean
    torch.testing.assert_close(model.correction(y), y.mean(-1, keepdim=True).expand_as(y), atol=1e-5, rtol=1e-5)


def test_shared_parts():
    cos, sin, icos, isin = dft_bases(12)
    y = torch.randn(4, 12)
    spec = torch.fft.rfft(y)
    torch.testing.assert_close(y @ cos, spec.real, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(-(y @ sin), spec.imag, atol=1e-5, rtol=1e-5)
    idx = patch_index(20, 8, 4)                              # patches end on the last sample
    assert idx.shape == (4, 8) and int(idx[-1, -1]) == 19
    rev = RevIN(3)
    x = torch.randn(2, 30, 3) * 5 + 2
    xn, stats = rev.normalize(x)
    torch.testing.assert_close(xn.mean(1), torch.zeros(2, 3), atol=1e-5, rtol=0)
    torch.testing.assert_close(rev.denormalize(xn, stats), x, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("mixer", ["s4d", "mamba"])
def test_ssmixer_takes_long_lookbacks_and_both_mixers(mixer):
    """SSMixer at lookback 2000 in both layouts: shapes, finite gradients, and a patch is a token of each series."""
    torch.manual_seed(0)
    model = create_model("ssmixer", n_vars=3, lookback=2000, horizon=24, d_model=8, n_layers=2, patch_len=50,
                         stride=50, state_dim=4, mixer=mixer)
    assert model.patch_idx.shape == (40, 50)                  # 40 patches: cost grows with lookback / stride
    x = torch.randn(2, 2000, 3, requires_grad=True)
    out = model(x)
    assert out.shape == (2, 24, 3)
    out.sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad[:, :50].abs().sum() > 0   # the oldest patch reaches the forecast
    with pytest.raises(ValueError, match="mixer='gru': expected 's4d' or 'mamba'"):
        create_model("ssmixer", n_vars=3, lookback=96, horizon=24, mixer="gru")
