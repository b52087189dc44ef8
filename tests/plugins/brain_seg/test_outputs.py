"""brain_seg outputs: label NIfTI on the input grid (atomic, no overwrite) and overlay PNGs."""
from __future__ import annotations

import struct
import zlib
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from sigplex.core.errors import UserError
from sigplex.datasets.nifti import generate_phantom_case
from sigplex.plugins.brain_seg.outputs import (
    encode_png,
    overlay_png_size,
    write_label_nifti,
    write_overlay_png,
)

AFF = np.array([[-1.2, 0, 0, 30.0], [0, -1.0, 0, 40.0], [0, 0, 1.5, -20.0], [0, 0, 0, 1]])


@pytest.fixture
def reference(tmp_path) -> Path:
    img = nib.Nifti1Image(np.random.default_rng(0).random((10, 12, 8)).astype(np.float32), AFF)
    img.header.set_xyzt_units("mm")
    img.header.set_qform(AFF, code=1)
    path = tmp_path / "case_flair.nii.gz"
    nib.save(img, str(path))
    return path


def labels(shape=(10, 12, 8)) -> np.ndarray:
    lab = np.zeros(shape, np.int64)
    lab[2:5, 3:6, 2:4] = 2
    lab[3, 4, 3] = 1
    lab[4, 4, 2] = 4
    return lab


def test_writes_uint8_on_reference_grid(reference, tmp_path):
    out = write_label_nifti(labels(), reference, tmp_path / "pred" / "case_seg.nii.gz")
    img = nib.load(str(out))
    ref = nib.load(str(reference))
    assert img.get_data_dtype() == np.uint8 and img.shape == (10, 12, 8)
    np.testing.assert_allclose(img.affine, ref.affine, atol=1e-5)
    assert img.header.get_qform(coded=True)[1] == ref.header.get_qform(coded=True)[1]
    assert img.header.get_sform(coded=True)[1] == ref.header.get_sform(coded=True)[1]
    assert img.header.get_xyzt_units() == ref.header.get_xyzt_units() == ("mm", "unknown")
    np.testing.assert_array_equal(np.asarray(img.dataobj), labels())
    # uncompressed .nii too, and torch tensors with a leading channel
    torch = pytest.importorskip("torch")
    out2 = write_label_nifti(torch.from_numpy(labels())[None], reference, tmp_path / "b.nii")
    np.testing.assert_array_equal(np.asarray(nib.load(str(out2)).dataobj), labels())


def test_refuses_overwrite_unless_asked(reference, tmp_path):
    target = tmp_path / "seg.nii.gz"
    target.write_bytes(b"precious")
    with pytest.raises(UserError) as ei:
        write_label_nifti(labels(), reference, target)
    assert str(target) in str(ei.value) and "exists" in str(ei.value)
    assert target.read_bytes() == b"precious"
    write_label_nifti(labels(), reference, target, overwrite=True)
    assert nib.load(str(target)).shape == (10, 12, 8)


def test_atomic_no_partial_file_on_failure(reference, tmp_path, monkeypatch):
    target = tmp_path / "seg.nii.gz"

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("os.replace", boom)  # the final rename fails
    monkeypatch.setattr("os.link", boom)
    with pytest.raises(OSError):
        write_label_nifti(labels(), reference, target, overwrite=True)
    assert not target.exists()
    assert list(tmp_path.glob("*seg*")) == [], "temporary file left behind"


def test_bad_inputs(reference, tmp_path):
    with pytest.raises(UserError, match=r"shape.*\(10, 12, 8\).*\(10, 12, 9\)"):
        write_label_nifti(np.zeros((10, 12, 9)), reference, tmp_path / "a.nii.gz")
    bad = labels()
    bad[0, 0, 0] = 3
    with pytest.raises(UserError, match=r"a\.nii\.gz.*label values.*\[3\]"):
        write_label_nifti(bad, reference, tmp_path / "a.nii.gz")
    with pytest.raises(UserError, match=r"a\.png.*\.nii"):
        write_label_nifti(labels(), reference, tmp_path / "a.png")
    with pytest.raises(UserError, match="missing.nii.gz"):
        write_label_nifti(labels(), tmp_path / "missing.nii.gz", tmp_path / "a.nii.gz")
    assert not (tmp_path / "a.nii.gz").exists()


def read_png(path: Path):
    """(width, height, rgb array) of an 8-bit RGB/RGBA PNG; asserts the chunk CRCs."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, ihdr = 8, b"", None
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos:pos + 4])
        tag, payload = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + n]
        (crc,) = struct.unpack(">I", data[pos + 8 + n:pos + 12 + n])
        assert crc == zlib.crc32(tag + payload) & 0xFFFFFFFF
        if tag == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", payload)
        elif tag == b"IDAT":
            idat += payload
        pos += 12 + n
    w, h, depth, colour = ihdr[:4]
    assert depth == 8 and colour in (2, 6)
    return w, h, zlib.decompress(idat)


def test_encode_png_roundtrip(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    p = tmp_path / "x.png"
    p.write_bytes(encode_png(rgb))
    w, h, raw = read_png(p)
    assert (w, h) == (7, 5)
    rows = np.frombuffer(raw, np.uint8).reshape(5, 1 + 7 * 3)
    assert np.all(rows[:, 0] == 0)  # filter type 0
    np.testing.assert_array_equal(rows[:, 1:].reshape(5, 7, 3), rgb)


@pytest.mark.parametrize("use_matplotlib", [True, False])
def test_overlay_png(tmp_path, monkeypatch, use_matplotlib):
    from sigplex.plugins.brain_seg import outputs

    calls = []
    monkeypatch.setattr(outputs, "encode_png", lambda rgb: calls.append(1) or encode_png(rgb))
    if use_matplotlib:
        pytest.importorskip("matplotlib")
    else:  # no matplotlib: the numpy + zlib encoder is used
        monkeypatch.setitem(__import__("sys").modules, "matplotlib.image", None)
    case = generate_phantom_case((40, 44, 36), seed=1)
    image = np.stack([case[m] for m in ("t1", "t1ce", "t2", "flair")])
    out = write_overlay_png(image, case["seg"], tmp_path / "overlay.png", scale=2)
    assert len(calls) == (0 if use_matplotlib else 1)
    w, h, raw = read_png(out)
    assert (w, h) == overlay_png_size((40, 44, 36), 2) == ((40 + 40 + 44 + 4) * 2, 44 * 2)
    if use_matplotlib:
        import matplotlib.image as mpimg

        px = (mpimg.imread(str(out))[..., :3] * 255).astype(np.uint8)
    else:  # filter type 0 on every row: the bytes are the raw RGB pixels
        px = np.frombuffer(raw, np.uint8).reshape(h, 1 + w * 3)[:, 1:].reshape(h, w, 3)
    assert px.shape == (h, w, 3)
    # labels are coloured: many pixels far from grey; the background is black
    spread = px.max(axis=2).astype(int) - px.min(axis=2)
    assert (spread > 60).sum() > 50
    assert np.all(px[:4, :4] == 0)


def test_overlay_rejects_mismatched_shapes(tmp_path):
    with pytest.raises(UserError, match="overlay image"):
        write_overlay_png(np.zeros((8, 8, 9)), np.zeros((8, 8, 8)), tmp_path / "o.png")
