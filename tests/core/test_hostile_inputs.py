"""Hostile inputs: the input limit, safe NumPy reading, and the harness over the example plugin and a v1 plugin."""
import gzip
import io
import tracemalloc
import warnings
import zipfile
from importlib.metadata import entry_points

import numpy as np
import pytest
from helpers import needs_example, run_cli

from sigplex.core.arrays import check_input, load_npy, load_npz, require_numeric
from sigplex.core.errors import UserError, one_line
from sigplex.core.hostile import array_variants, generic_variants
from sigplex.core.limits import InputTooLarge, check_size, gzip_size, input_limit, max_input_bytes


def _bomb(path, nbytes):
    """A .npz whose one member expands from a few KB to ``nbytes`` of zeros."""
    from numpy.lib import format as npy

    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf, zf.open("x.npy", "w", force_zip64=True) as fh:
        npy.write_array_header_1_0(fh, {"descr": "<f4", "fortran_order": False, "shape": (nbytes // 4,)})
        for _ in range(nbytes // (1 << 20)):
            fh.write(bytes(1 << 20))


def test_the_limit_is_a_setting_with_a_scope():
    default = max_input_bytes()
    with input_limit(1):
        assert max_input_bytes() == 1 << 20
        check_size(1 << 20, "a.npy", "x")
        with pytest.raises(InputTooLarge, match=r"a.npy: x would take 2.0 MB of memory; the input limit is 1 MB"):
            check_size(2 << 20, "a.npy", "x")
    assert max_input_bytes() == default
    with pytest.raises(UserError, match="expected a positive number"):
        with input_limit(0):
            pass


def test_bombs_are_refused_from_their_declarations_without_allocating(tmp_path):
    _bomb(tmp_path / "bomb.npz", 64 << 20)
    packed = tmp_path / "bomb.csv.gz"
    with gzip.open(packed, "wb") as fh:
        for _ in range(64):
            fh.write(bytes(1 << 20))
    assert (tmp_path / "bomb.npz").stat().st_size < 1 << 20
    tracemalloc.start()
    with input_limit(16):
        with pytest.raises(InputTooLarge, match=r"bomb.npz: the members of the archive would take 64.0 MB"):
            load_npz(tmp_path / "bomb.npz")
        with pytest.raises(InputTooLarge, match=r"bomb.csv.gz: decompresses to more than the input limit of 16 MB"):
            check_input(packed)
        cut = tmp_path / "cut.csv.gz"  # its last bytes are compressed data, not a size: no refusal for size
        cut.write_bytes(gzip.compress(np.random.default_rng(0).bytes(1 << 20))[: 600_000])
        check_input(cut)
        lying = tmp_path / "lying.csv.gz"  # a trailer that understates the size: the stream still stops it
        lying.write_bytes(packed.read_bytes()[:-4] + (1000).to_bytes(4, "little"))
        with pytest.raises(InputTooLarge, match=r"lying.csv.gz: decompresses to more than the input limit of 16"):
            check_input(lying)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 8 << 20  # refused from headers and a bounded stream, never materialised
    assert gzip_size(packed) == 64 << 20  # under the default limit it is counted, in a stream


def test_numpy_files_are_read_without_unpickling(tmp_path):
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(UserError, match="holds Python objects"):
        load_npy(tmp_path / "obj.npy")
    np.save(tmp_path / "ok.npy", np.arange(10, dtype=np.float32))
    data = (tmp_path / "ok.npy").read_bytes()
    (tmp_path / "cut.npy").write_bytes(data[:-8])
    with pytest.raises(UserError, match=r"cut.npy: truncated: holds 32 of the 40 bytes"):
        load_npy(tmp_path / "cut.npy")
    np.testing.assert_array_equal(load_npy(tmp_path / "ok.npy"), np.arange(10, dtype=np.float32))
    fortran = np.asfortranarray(np.arange(12.0).reshape(3, 4))
    np.save(tmp_path / "f.npy", fortran)
    np.testing.assert_array_equal(load_npy(tmp_path / "f.npy"), fortran)
    buf = io.BytesIO()
    np.savez(buf, a=np.ones(3), b=np.zeros((2, 2), np.complex64))
    (tmp_path / "ab.npz").write_bytes(buf.getvalue())
    arrays = load_npz(tmp_path / "ab.npz")
    assert set(arrays) == {"a", "b"} and arrays["b"].dtype == np.complex64
    assert set(load_npz(tmp_path / "ab.npz", keys=["b"])) == {"b"}
    (tmp_path / "bad.npz").write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(UserError, match=r"bad.npz: not a readable .npz file"):
        load_npz(tmp_path / "bad.npz")
    with pytest.raises(UserError, match="NaN or infinite values in key 'x'"):
        require_numeric(np.array([1.0, np.nan]), "f.npz", "key 'x'")
    with pytest.raises(UserError, match="<U1 values in key 'x'; expected numbers"):
        require_numeric(np.array(["a"]), "f.npz", "key 'x'")


def test_one_line_escapes_what_a_damaged_file_puts_in_a_message():
    assert one_line("columns: a\nb\r\x00") == "columns: a\\nb\\r\\x00"
    assert one_line("Größe") == "Größe"


def test_generic_variants_cover_the_containers(tmp_path):
    np.savez(tmp_path / "s.npz", ls=np.ones((2, 3), np.complex64), snr=np.array([1.0, 2.0]))
    np.save(tmp_path / "s.npy", np.ones((2, 8), np.float32))
    (tmp_path / "s.csv").write_text("date,a\n2020-01-01,1\n2020-01-02,2\n2020-01-03,3\n")
    with input_limit(4):
        names = {p: [v.name for v in generic_variants(tmp_path / p, tmp_path / f"out-{p}")]
                 for p in ("s.npz", "s.npy", "s.csv")}
    assert {"empty", "truncated-50%", "random-bytes", "symlink-loop"} <= set(names["s.csv"])
    assert {"zip:ls.npy:missing", "npz:ls:nan", "npz:ls:pickled-object", "npz:ls:bomb"} <= set(names["s.npz"])
    assert {"npy:rank-up", "npy:text", "npy:declares-over-limit"} <= set(names["s.npy"])
    assert {"csv:100000-columns", "csv:duplicate-timestamps", "csv:no-rows"} <= set(names["s.csv"])
    assert set(array_variants(np.ones((2, 3)))) >= {"nan", "inf", "zeros", "one-sample", "rank-down", "int8"}


@needs_example
def test_example_plugin_passes_the_harness(tmp_path):
    import sigplex.core as sp
    from sigplex.core.testing import check_hostile_inputs

    run = tmp_path / "run"
    assert run_cli("train", "--plugin", "example", "--max-steps", 2, "--out", run, "--set", "model.channels=4",
                   "--set", "trainer.val_every=2").returncode == 0
    report = check_hostile_inputs(sp.load_run(run), tmp_path / "h", ["--checkpoint", run], evaluate=12)
    assert report["variants"] >= 25 and report["ok"] >= 2 and report["refused"] >= 15


@pytest.mark.skipif(not any(ep.name == "v1demo" for ep in entry_points(group="sigplex.plugins")),
                    reason="pip install --no-deps tests/fixtures/sigplex-v1-plugin (tox does)")
def test_v1_plugin_reader_failures_are_refusals_naming_the_plugin(tmp_path):
    import sigplex.core as sp
    from sigplex.core.testing import check_hostile_inputs

    run = tmp_path / "run"
    assert run_cli("train", "--plugin", "v1demo", "--max-steps", 2, "--out", run, "--set", "model.channels=4",
                   "--set", "trainer.val_every=2").returncode == 0
    np.save(tmp_path / "one.npy", np.sin(np.arange(64) / 3).astype(np.float32))
    np.save(tmp_path / "two.npy", np.sin(np.arange(128) / 5).reshape(2, 64).astype(np.float32))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the v1 notice, tested in test_contract_v1
        predictor = sp.load_run(run)
    report = check_hostile_inputs(predictor, tmp_path / "h", ["--checkpoint", run], evaluate=12,
                                  samples=[tmp_path / "one.npy", tmp_path / "two.npy"])
    assert report["variants"] >= 25 and report["ok"] >= 2
    (tmp_path / "text.npy").write_bytes(b"\x93NUMPY")  # the v1 reader's np.load raises; the core words it
    out = run_cli("predict", "--checkpoint", run, "--input", tmp_path / "text.npy", "--output", tmp_path / "o.npy")
    assert out.returncode == 2
    assert "plugin v1demo could not read it (" in out.stderr or "not a readable NPY array" in out.stderr
