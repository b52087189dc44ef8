"""SigMF recordings and raw SDR sample files cut into IQ frames: datatypes, byte order, centring, errors."""
import json

import numpy as np
import pytest

from sigplex.core.errors import UserError
from sigplex.datasets.rf.capture import capture_frames, open_capture


def iq(n, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(n) + 1j * rng.standard_normal(n)).astype(np.complex64)


def sigmf(folder, name, values, datatype, **extra):
    values.tofile(folder / f"{name}.sigmf-data")
    meta = {"global": {"core:datatype": datatype, "core:version": "1.0.0", **extra}, "captures": [], "annotations": []}
    (folder / f"{name}.sigmf-meta").write_text(json.dumps(meta))
    return folder / f"{name}.sigmf-meta"


def test_raw_cfile_frames_are_consecutive_samples(tmp_path):
    x = iq(1000)
    x.tofile(tmp_path / "cap.cfile")
    frames, info = capture_frames(tmp_path / "cap.cfile", 128)
    assert frames.shape == (7, 2, 128) and frames.dtype == np.float32 and info["sample_rate"] is None
    np.testing.assert_array_equal(frames[3, 0], x.real[384:512])
    np.testing.assert_array_equal(frames[3, 1], x.imag[384:512])
    assert capture_frames(tmp_path / "cap.cfile", 128, max_frames=2)[0].shape == (2, 2, 128)


@pytest.mark.parametrize("datatype, dtype", [("ci16_be", ">i2"), ("ci16_le", "<i2"), ("cf64_le", "<f8"), ("ci8", "i1")])
def test_sigmf_datatypes_and_byte_order(tmp_path, datatype, dtype):
    ints = np.random.default_rng(1).integers(-100, 100, size=(300, 2))
    meta = sigmf(tmp_path, "rec", ints.astype(dtype), datatype, **{"core:sample_rate": 1e6})
    for path in (meta, meta.with_name("rec.sigmf-data")):      # either file of the pair names the recording
        frames, info = capture_frames(path, 100)
        assert info["sample_rate"] == 1e6 and info["datatype"] == datatype and frames.shape == (3, 2, 100)
        np.testing.assert_array_equal(frames.transpose(0, 2, 1).reshape(-1, 2), ints.astype(np.float32))


def test_unsigned_rtl_sdr_samples_are_centred(tmp_path):
    np.array([[0, 255], [127, 128]] * 64, np.uint8).tofile(tmp_path / "rtl.cu8")
    frames, _ = capture_frames(tmp_path / "rtl.cu8", 128)
    np.testing.assert_array_equal(frames[0, :, :2], [[-127.5, -0.5], [127.5, 0.5]])


def test_bad_captures_are_one_line_errors(tmp_path):
    meta = sigmf(tmp_path, "real", np.zeros(10, np.float32), "rf32_le")
    with pytest.raises(UserError, match=r"real\.sigmf-meta: core:datatype 'rf32_le' is a real datatype; expected complex"):
        open_capture(meta)
    meta = sigmf(tmp_path, "two", np.zeros(40, np.float32), "cf32_le", **{"core:num_channels": 2})
    with pytest.raises(UserError, match="core:num_channels is 2; expected one channel"):
        open_capture(meta)
    (tmp_path / "odd.cfile").write_bytes(iq(3).tobytes() + b"\0" * 4)  # cut mid-sample: that sample is lost
    values, info = open_capture(tmp_path / "odd.cfile")
    assert info["samples"] == 3 and values.shape == (3, 2)
    iq(50).tofile(tmp_path / "short.cfile")
    with pytest.raises(UserError, match=r"short\.cfile: holds 50 IQ samples; a frame needs 128"):
        capture_frames(tmp_path / "short.cfile", 128)
    iq(50).tofile(tmp_path / "lonely.sigmf-data")
    with pytest.raises(UserError, match=r"lonely\.sigmf-meta: SigMF metadata file not found"):
        open_capture(tmp_path / "lonely.sigmf-data")
    (tmp_path / "junk.sigmf-meta").write_text("{not json")
    with pytest.raises(UserError, match=r"junk\.sigmf-meta: not SigMF metadata"):
        open_capture(tmp_path / "junk.sigmf-meta")
