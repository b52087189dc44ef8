"""RadioML readers: the restricted unpickler (accepts numpy arrays and plain containers, refuses the rest), 2018 HDF5."""
import os
import pickle
import struct

import numpy as np
import pytest

from sigplex.core.errors import UserError
from sigplex.datasets.rf.generator import RADIOML_CLASSES
from sigplex.datasets.rf.radioml import (
    RADIOML2018_CLASSES,
    read_frames,
    read_radioml2016,
    read_radioml2018,
    safe_load,
)


def radioml_dict(n=3, length=128, mods=("QPSK", "8PSK", "WBFM"), snrs=(-2, 4)):
    r = np.random.default_rng(0)
    return {(m, s): r.standard_normal((n, 2, length)).astype(np.float32) for m in mods for s in snrs}


def one_line_error(fn, *args, **kwargs) -> str:
    with pytest.raises(UserError) as info:
        fn(*args, **kwargs)
    message = str(info.value)
    assert "\n" not in message, message
    return message


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_reads_a_radioml2016_dict_in_every_pickle_protocol(tmp_path, protocol):
    data = radioml_dict()
    path = tmp_path / "RML2016.10a_dict.pkl"
    path.write_bytes(pickle.dumps(data, protocol=protocol))
    f = read_radioml2016(path)
    assert f.classes == ("8PSK", "QPSK", "WBFM")  # sorted by name, as RadioML 2016.10A's class order
    assert f.x.shape == (18, 2, 128) and f.x.dtype == np.float32
    assert f.y.tolist() == [0] * 6 + [1] * 6 + [2] * 6
    assert f.snr.tolist() == [-2] * 3 + [4] * 3 + [-2] * 3 + [4] * 3 + [-2] * 3 + [4] * 3
    np.testing.assert_array_equal(f.x[6:9], data[("QPSK", -2)])


def test_reads_numpy1_and_python2_style_pickles(tmp_path):
    """Files written by numpy 1 name numpy.core.multiarray; Python 2 pickles hold byte strings (latin-1)."""
    blob = pickle.dumps(radioml_dict(mods=("BPSK",), snrs=(0,)), protocol=2)
    blob = blob.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    path = tmp_path / "old.pkl"
    path.write_bytes(blob)
    assert read_radioml2016(path).classes == ("BPSK",)
    # a byte-string key (how Python 2 str keys arrive without latin-1 decoding) is accepted too
    path.write_bytes(pickle.dumps({(b"GFSK", 2): np.zeros((1, 2, 16), np.float32)}, protocol=2))
    assert read_radioml2016(path).classes == ("GFSK",)


def _u(s):  # SHORT_BINSTRING / BINSTRING: a Python 2 str
    b = s if isinstance(s, bytes) else s.encode("latin1")
    return (b"U" + bytes([len(b)]) + b) if len(b) < 256 else (b"T" + struct.pack("<i", len(b)) + b)


def python2_pickle(d) -> bytes:
    """The bytes Python 2's cPickle (protocol 2) writes for a RadioML 2016 dict of float32 arrays, opcode by opcode:
    str keys and the array's raw data as byte strings, numpy.core names, the dtype rebuilt from ('f4', 0, 1)."""
    out = b"\x80\x02}("
    for (mod, snr), arr in d.items():
        arr = np.ascontiguousarray(arr, "<f4")
        out += _u(mod) + b"J" + struct.pack("<i", snr) + b"\x86"
        out += b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85" + _u("b") + b"\x87R"
        out += b"(K\x01" + b"".join(b"J" + struct.pack("<i", n) for n in arr.shape) + b"\x87"
        out += b"cnumpy\ndtype\n" + _u("f4") + b"K\x00K\x01\x87R(K\x03" + _u("<")
        out += b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb\x89" + _u(arr.tobytes()) + b"tb"
    return out + b"u."


def test_reads_a_file_in_python2_cpickle_bytes(tmp_path):
    """RML2016.10a_dict.pkl was written by Python 2: its exact opcodes load through the restricted unpickler."""
    rng = np.random.default_rng(0)
    data = {("BPSK", -2): rng.standard_normal((3, 2, 128)).astype(np.float32),
            ("QAM16", 18): rng.standard_normal((2, 2, 128)).astype(np.float32)}
    path = tmp_path / "RML2016.10a_dict.pkl"
    path.write_bytes(python2_pickle(data))
    f = read_radioml2016(path)
    assert f.classes == ("BPSK", "QAM16") and f.snr.tolist() == [-2] * 3 + [18] * 2
    np.testing.assert_array_equal(f.x[:3], data[("BPSK", -2)])
    np.testing.assert_array_equal(f.x[3:], data[("QAM16", 18)])


class Evil:
    def __reduce__(self):
        return (os.system, ("touch hacked",))


class Custom:
    pass


@pytest.mark.parametrize("payload", [os.system, Evil(), Custom(), {("QPSK", 0): Custom()}, print,
                                     {("QPSK", 0): np.array([1, "a"], dtype=object)}],
                         ids=["function", "reduce-exploit", "custom-class", "nested-custom", "builtin", "object-array"])
def test_restricted_unpickler_refuses_everything_but_arrays_and_containers(tmp_path, payload, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps(payload))
    message = one_line_error(safe_load, path)
    assert str(path) in message
    assert not (tmp_path / "hacked").exists()


def test_refuses_codecs_other_than_latin1(tmp_path):
    import _codecs

    class Rot13:
        def __reduce__(self):
            return (_codecs.encode, ("payload", "rot13"))

    path = tmp_path / "codec.pkl"
    path.write_bytes(pickle.dumps([Rot13()], protocol=2))
    assert "rot13" in one_line_error(safe_load, path)


def test_radioml2016_structure_errors_name_the_key_and_shape(tmp_path):
    path = tmp_path / "bad.pkl"
    path.write_bytes(pickle.dumps({("QPSK", 2): np.zeros((4, 3, 128), np.float32)}))
    assert "key ('QPSK', 2) has shape [4, 3, 128]; expected [n, 2, L]" in one_line_error(read_radioml2016, path)
    path.write_bytes(pickle.dumps({"QPSK": np.zeros((4, 2, 128), np.float32)}))
    assert "is not (modulation, snr_db)" in one_line_error(read_radioml2016, path)
    path.write_bytes(pickle.dumps([1, 2, 3]))
    assert "holds list" in one_line_error(read_radioml2016, path)
    path.write_bytes(pickle.dumps(np.zeros((4, 2, 128), np.float32)))
    assert "holds ndarray" in one_line_error(read_radioml2016, path)
    path.write_bytes(pickle.dumps({}))
    assert "holds an empty dict" in one_line_error(read_radioml2016, path)
    path.write_bytes(pickle.dumps({("A", 0): np.zeros((1, 2, 8)), ("B", 0): np.zeros((1, 2, 16))}))
    assert "different lengths [8, 16]" in one_line_error(read_radioml2016, path)
    path.write_bytes(pickle.dumps(radioml_dict())[:100])
    assert "not a readable pickle" in one_line_error(read_radioml2016, path)
    path.write_bytes(b"not a pickle at all")
    assert str(path) in one_line_error(read_radioml2016, path)


def write_2018(path, n=12, length=64, k=24, layout="NL2", drop=None):
    h5py = pytest.importorskip("h5py")
    r = np.random.default_rng(1)
    x = r.standard_normal((n, length, 2)).astype(np.float32)
    y = np.eye(k, dtype=np.int64)[np.arange(n) % k]
    z = (np.arange(n) % 3 * 10 - 10).reshape(n, 1).astype(np.int64)
    with h5py.File(path, "w") as f:
        for key, value in {"X": x if layout == "NL2" else x.transpose(0, 2, 1), "Y": y, "Z": z}.items():
            if key != drop:
                f.create_dataset(key, data=value)
    return x, y, z


def test_reads_radioml2018_hdf5(tmp_path):
    path = tmp_path / "GOLD_XYZ_OSC.0001_1024.hdf5"
    x, y, z = write_2018(path)
    f = read_radioml2018(path)
    assert f.classes == RADIOML2018_CLASSES
    assert f.x.shape == (12, 2, 64)
    np.testing.assert_array_equal(f.x, x.transpose(0, 2, 1))
    assert f.y.tolist() == list(range(12)) and f.snr.tolist() == z.reshape(-1).tolist()
    sub = read_frames(path, max_frames=4)
    assert len(sub) == 4 and sub.y.tolist() == [0, 3, 7, 11]
    unlabelled = read_radioml2018(path, labels=False)
    assert unlabelled.y is None and unlabelled.x.shape == (12, 2, 64)


def test_radioml2018_with_11_classes_gets_the_2016_names(tmp_path):
    path = tmp_path / "small.h5"
    write_2018(path, n=11, k=11, layout="N2L")
    assert read_frames(path).classes == RADIOML_CLASSES


def test_radioml2018_errors_are_one_line_and_name_the_key(tmp_path):
    path = tmp_path / "bad.h5"
    write_2018(path, drop="Y")
    assert "key 'Y' is missing" in one_line_error(read_radioml2018, path)
    write_2018(path, drop="X")
    assert "key 'X' is missing" in one_line_error(read_radioml2018, path, labels=False)
    h5py = pytest.importorskip("h5py")
    with h5py.File(path, "w") as f:
        f["X"] = np.zeros((4, 64, 3), np.float32)
        f["Y"] = np.eye(24)[:4]
        f["Z"] = np.zeros((4, 1))
    assert "key 'X' has shape [4, 64, 3]; expected IQ frames [N, 2, L] or [N, L, 2]" in one_line_error(
        read_radioml2018, path)
    with h5py.File(path, "w") as f:
        f["X"] = np.zeros((4, 64, 2), np.float32)
        f["Y"] = np.zeros((3, 24))
        f["Z"] = np.zeros((4, 1))
    assert "key 'Y' has shape [3, 24]" in one_line_error(read_radioml2018, path)
    path.write_bytes(b"not hdf5")
    assert "not a readable HDF5 file" in one_line_error(read_radioml2018, path)
    other = tmp_path / "frames.txt"
    other.write_text("1 2 3")
    assert "expected a RadioML file" in one_line_error(read_frames, other)
