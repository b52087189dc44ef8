"""The AdaFortiTran .mat reader: round trip through scipy.io.savemat and its errors."""
import numpy as np
import pytest

pytest.importorskip("scipy")

from sigplex.core.errors import UserError  # noqa: E402
from sigplex.datasets.ofdm import OFDMGrid, parse_name, read_mat, read_mat_files, write_mat  # noqa: E402

NAME = "1_SNR-10_DS-50_DOP-200_N-10_TDL-A.mat"


def random_grid(rng, g=OFDMGrid()):
    h = (rng.standard_normal((120, 14)) + 1j * rng.standard_normal((120, 14))).astype(np.complex64)
    ls = (rng.standard_normal(g.pilot_shape) + 1j * rng.standard_normal(g.pilot_shape)).astype(np.complex64)
    return h, ls


def test_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    h, ls = random_grid(rng)
    write_mat(tmp_path / NAME, h, ls)
    d = read_mat(tmp_path / NAME)
    np.testing.assert_array_equal(d["h"][0], h)
    np.testing.assert_array_equal(d["ls"][0], ls)
    np.testing.assert_array_equal(d["cond"][0], [0, 10, 50, 200])  # TDL-A, SNR, DS, Doppler
    h2, ls2 = random_grid(rng)
    write_mat(tmp_path / "2_SNR-25_DS-300_DOP-1000_N-10_TDL-C.mat", h2, ls2)
    both = read_mat_files(tmp_path)
    assert both["h"].shape == (2, 120, 14) and both["ls"].shape == (2, 12, 2)
    assert both["cond"][1].tolist() == [2, 25, 300, 1000]


def test_errors_name_file_key_and_expectation(tmp_path):
    from scipy.io import savemat

    savemat(tmp_path / NAME, {"X": np.zeros((120, 14, 2))})
    with pytest.raises(UserError, match=r"1_SNR-10.*key 'H' is missing.*found: X"):
        read_mat(tmp_path / NAME)
    savemat(tmp_path / NAME, {"H": np.zeros((64, 14, 2))})
    with pytest.raises(UserError, match=r"key 'H' has shape \[64, 14, 2\]; expected \[120, 14, >=2\]"):
        read_mat(tmp_path / NAME)
    full = np.ones((120, 14, 2), complex)  # LS non-zero off the pilot grid
    savemat(tmp_path / NAME, {"H": full})
    with pytest.raises(UserError, match="not zero off the pilot grid"):
        read_mat(tmp_path / NAME)
    with pytest.raises(UserError, match="file name does not give the conditions"):
        parse_name(tmp_path / "channel.mat")
    with pytest.raises(UserError, match="not found"):
        read_mat(tmp_path / "missing.mat")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no .mat files"):
        read_mat_files(tmp_path / "empty")
