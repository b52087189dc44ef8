"""The RadioML-like generator: every modulator against its definition, the channel impairments, the frames."""
import math

import numpy as np
import pytest
import torch

pytest.importorskip("sionna")

from sigplex.datasets.rf import channel as C
from sigplex.datasets.rf import modulation as M
from sigplex.datasets.rf.generator import RADIOML_CLASSES, RADIOML_SNRS, Impairments, generate


def rng(seed=0):
    return np.random.default_rng(seed)


def phase_steps(x):
    """Instantaneous frequency in cycles/sample between consecutive samples."""
    return torch.angle(x[:, 1:] * x[:, :-1].conj()).double() / (2 * math.pi)


# --- analog classes -------------------------------------------------------------------
def test_message_is_band_limited_zero_mean_unit_peak():
    m = M.message(64, 256, rng(), bandwidth=(0.02, 0.02))
    assert m.shape == (64, 256) and m.dtype == torch.float32
    torch.testing.assert_close(m.abs().amax(1), torch.ones(64))
    assert m.mean(1).abs().max() < 1e-5
    spectrum = torch.fft.rfft(m.double()).abs().square()
    f = torch.fft.rfftfreq(256)
    # a 4th-order roll-off at 0.02 cycles/sample: almost no energy above 0.06
    assert spectrum[:, f > 0.06].sum() / spectrum.sum() < 1e-3


def test_am_dsb_is_carrier_plus_message_on_the_real_axis():
    m = M.message(16, 128, rng())
    mu = np.linspace(0.5, 1.0, 16)
    x = M.am_dsb(m, mu)
    assert torch.equal(x.imag, torch.zeros_like(m))
    torch.testing.assert_close(x.real, 1 + torch.from_numpy(mu).float()[:, None] * m)
    assert (x.abs() >= 0).all() and (x.real >= -1e-6).all()  # index <= 1: no over-modulation
    spectrum = torch.fft.fft(x)
    torch.testing.assert_close(spectrum[:, 1:], spectrum[:, 1:].flip(1).conj(), atol=1e-3, rtol=1e-4)  # two sidebands
    torch.testing.assert_close(spectrum[:, 0].real, torch.full((16,), 128.0), atol=1e-3, rtol=1e-4)  # the carrier


def test_am_ssb_has_a_one_sided_spectrum_and_the_message_as_real_part():
    m = M.message(16, 128, rng(1))
    x = M.am_ssb(m)
    torch.testing.assert_close(x.real, m, atol=1e-5, rtol=1e-5)
    power = torch.fft.fft(x.to(torch.complex128)).abs().square()
    f = torch.fft.fftfreq(128)
    assert power[:, f < 0].sum() / power.sum() < 1e-10  # upper sideband only
    assert power[:, f > 0].sum() / power.sum() > 0.999


def test_fm_has_constant_envelope_and_the_message_as_instantaneous_frequency():
    m = M.message(8, 128, rng(2))
    dev = np.linspace(0.03, 0.08, 8)
    x = M.fm(m, dev)
    torch.testing.assert_close(x.abs(), torch.ones(8, 128), atol=1e-5, rtol=0)
    expected = torch.from_numpy(dev)[:, None] * m[:, 1:].double()
    torch.testing.assert_close(phase_steps(x), expected, atol=1e-5, rtol=0)


def test_cpfsk_holds_plus_minus_h_over_2sps_per_symbol_with_continuous_phase():
    sps, h = 8, 0.5
    x, symbols = M.cpfsk(8, 128, rng(3), sps=sps, h=h, return_symbols=True)
    torch.testing.assert_close(x.abs(), torch.ones(8, 128), atol=1e-5, rtol=0)
    expected = M.nrz(symbols, sps)[:, 1:128] * h / (2 * sps)
    torch.testing.assert_close(phase_steps(x), expected, atol=1e-5, rtol=0)
    # continuous phase: no step larger than the tone's own phase increment
    assert phase_steps(x).abs().max() <= h / (2 * sps) + 1e-6


def test_gaussian_filter_has_the_3db_bandwidth_given_by_bt():
    sps, bt = 8, 0.35
    g = M.gaussian_taps(bt, sps, span=8)
    assert abs(float(g.sum()) - 1) < 1e-12 and torch.allclose(g, g.flip(0))
    t = torch.arange(len(g), dtype=torch.float64) - len(g) // 2
    response = (g * torch.exp(-2j * math.pi * (bt / sps) * t)).sum().abs()  # |H(f)| at f = BT / T
    assert abs(float(response) - 1 / math.sqrt(2)) < 1e-4
    wider = M.gaussian_taps(1.0, sps, span=8)
    assert wider.max() > g.max()  # a larger BT is a shorter pulse


def test_gfsk_is_cpfsk_with_a_gaussian_smoothed_frequency_pulse():
    sps, h = 8, 1.0
    x, freq = M.gfsk(8, 128, rng(4), sps=sps, h=h, bt=0.35, return_frequency=True)
    torch.testing.assert_close(x.abs(), torch.ones(8, 128), atol=1e-5, rtol=0)
    torch.testing.assert_close(phase_steps(x), freq[:, 1:], atol=1e-5, rtol=0)
    assert freq.abs().max() <= h / (2 * sps) + 1e-9
    # smoothed: frequency moves by less than the full +-h/(2 sps) swing of CPFSK between samples
    assert (freq[:, 1:] - freq[:, :-1]).abs().max() < 0.5 * h / sps


# --- linear classes through sionna ------------------------------------------------------
@pytest.mark.parametrize("name,size,real", [("BPSK", 2, True), ("QPSK", 4, False), ("8PSK", 8, False),
                                            ("PAM4", 4, True), ("QAM16", 16, False), ("QAM64", 64, False)])
def test_linear_symbols_come_from_the_constellation_and_the_matched_filter_recovers_them(name, size, real):
    from sionna.phy.signal import RootRaisedCosineFilter

    sps, span = 8, 8
    x, symbols = M.linear(name, 32, 256, rng(5), sps=sps, beta=0.35, span=span, return_symbols=True)
    points = M.constellation(name).points
    assert len(points) == size
    assert abs(float(points.abs().square().mean()) - 1) < 1e-5  # unit average power
    assert torch.cdist(torch.view_as_real(symbols.reshape(-1, 1)).reshape(-1, 2),
                       torch.view_as_real(points.reshape(-1, 1)).reshape(-1, 2)).min(1).values.max() < 1e-5
    if real:
        assert symbols.imag.abs().max() < 1e-6
    if name.endswith("PSK"):
        torch.testing.assert_close(symbols.abs(), torch.ones_like(symbols.abs()), atol=1e-5, rtol=0)
    # RRC (transmit) * RRC (matched) is a Nyquist pulse: sampling at k*sps gives the symbols back (up to scale)
    y = RootRaisedCosineFilter(span, sps, 0.35)(x, padding="same")
    k = torch.arange(span, 256 // sps - span)  # away from the frame edges
    got = y[:, k * sps]
    want = symbols[:, span // 2 + k]
    scale = (got * want.conj()).sum() / want.abs().square().sum()
    assert float((got / scale - want).abs().max()) < 0.05


# --- channel ------------------------------------------------------------------------------
def test_resample_reads_a_signal_at_fractional_positions():
    n = torch.arange(256, dtype=torch.float64)
    f = 0.03
    x = torch.polar(torch.ones(2, 256, dtype=torch.float64), 2 * math.pi * f * n.expand(2, -1)).to(torch.complex64)
    eps = torch.tensor([[0.004], [-0.004]], dtype=torch.float64)
    pos = 20.3 + torch.arange(128, dtype=torch.float64)[None] * (1 + eps)
    want = torch.polar(torch.ones_like(pos), 2 * math.pi * f * pos).to(torch.complex64)
    torch.testing.assert_close(C.resample(x, pos), want, atol=2e-3, rtol=0)


def test_taps_apply_as_a_convolution():
    x = torch.randn(3, 40, dtype=torch.complex64)
    identity = torch.zeros(3, 5, dtype=torch.complex64)
    identity[:, 1] = 1  # lag 0 when l_min = -1
    torch.testing.assert_close(C.apply_taps(x, identity, -1), x)
    delayed = torch.zeros(3, 5, dtype=torch.complex64)
    delayed[:, 3] = 0.5j  # lag 2
    y = C.apply_taps(x, delayed, -1)
    torch.testing.assert_close(y[:, 2:], 0.5j * x[:, :-2])
    assert y[:, :2].abs().max() == 0


def test_multipath_taps_have_unit_energy_and_differ_per_frame():
    taps, l_min = C.multipath_taps(500, rng(6), max_delay=2.5)
    assert l_min == -3 and taps.shape == (500, 10)
    torch.testing.assert_close(taps.abs().square().sum(1), torch.ones(500), atol=1e-5, rtol=0)
    assert taps[:, 3].abs().std() > 0.1  # Rayleigh: the main tap's magnitude varies between frames
    single, _ = C.multipath_taps(4, rng(7), max_delay=2.5, n_paths=1)
    assert (single[:, 3].abs() > 0.999).all()  # one path at delay 0: a flat channel


def test_rotate_shifts_the_spectrum_by_the_carrier_offset():
    x = torch.ones(1, 128, dtype=torch.complex64)
    y = C.rotate(x, [4 / 128], [0.3])
    assert int(torch.fft.fft(y).abs().argmax()) == 4
    assert abs(float(torch.angle(y[0, 0])) - 0.3) < 1e-6


def test_awgn_at_the_requested_snr():
    x = torch.ones(3, 20000, dtype=torch.complex64)
    y = C.awgn(x, [0.0, 10.0, -10.0], torch.Generator().manual_seed(0))
    noise = (y - x).abs().square().mean(1)
    torch.testing.assert_close(10 * torch.log10(1 / noise), torch.tensor([0.0, 10.0, -10.0]), atol=0.1, rtol=0)


# --- frames ---------------------------------------------------------------------------------
def test_generate_radioml_conventions():
    d = generate(2, seed=3)
    n = 2 * len(RADIOML_CLASSES) * len(RADIOML_SNRS)
    assert d["x"].shape == (n, 2, 128) and d["x"].dtype == np.float32
    assert RADIOML_SNRS[0] == -20 and RADIOML_SNRS[-1] == 18 and len(RADIOML_SNRS) == 20
    np.testing.assert_allclose(np.square(d["x"]).sum(1).mean(1), 1.0, rtol=1e-4)  # unit frame power
    np.testing.assert_allclose(np.square(d["clean"]).sum(1).mean(1), 1.0, rtol=1e-4)
    assert np.bincount(d["y"]).tolist() == [2 * len(RADIOML_SNRS)] * len(RADIOML_CLASSES)
    assert d["snr"][:4].tolist() == [-20, -20, -18, -18]
    # noise at the frame's SNR: at 18 dB the frame is almost its clean version, at -20 dB almost pure noise
    err = np.square(d["x"] - d["clean"]).sum(1).mean(1)
    assert err[d["snr"] == 18].max() < 0.1 and err[d["snr"] == -20].min() > 1.0


def test_generate_is_deterministic_and_classes_draw_from_their_own_streams():
    a = generate(3, snrs=(0.0, 10.0), seed=5)
    b = generate(3, snrs=(0.0, 10.0), seed=5)
    np.testing.assert_array_equal(a["x"], b["x"])
    only = generate(3, snrs=(0.0, 10.0), classes=("QPSK",), seed=5)
    np.testing.assert_array_equal(only["x"], a["x"][a["y"] == RADIOML_CLASSES.index("QPSK")])
    assert not np.array_equal(generate(3, snrs=(0.0, 10.0), seed=6)["x"], a["x"])


def test_constant_envelope_classes_stay_constant_envelope_without_fading_and_noise():
    imp = Impairments(fading=False)
    d = generate(4, snrs=(100.0,), classes=("CPFSK", "GFSK", "WBFM", "QAM16"), seed=0, imp=imp)
    env = np.sqrt(np.square(d["clean"]).sum(1))
    # the interpolator (sample-rate offset) leaves the envelope flat to within a few percent
    assert env[d["y"] < 3].std(1).max() < 0.05
    assert env[d["y"] == 3].std(1).min() > 0.2  # QAM16 is not constant-envelope
