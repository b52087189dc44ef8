"""sigplex.datasets.dicom: series -> volume with a RAS affine, checked against nibabel and highdicom; the one-line errors."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

pydicom = pytest.importorskip("pydicom")
nib = pytest.importorskip("nibabel")

from sigplex.core.errors import UserError  # noqa: E402
from sigplex.datasets.dicom import (  # noqa: E402
    Study,
    is_dicom_file,
    is_study_folder,
    read_volume,
    scan_study,
    write_enhanced_series,
    write_series,
)


def oblique_affine(flip=(1, 1, 1), spacing=(0.9, 1.1, 2.5), degrees=(20.0, -12.0)) -> np.ndarray:
    """A RAS affine with rotation about z then x, anisotropic spacing and voxel-axis flips."""
    a, b = np.deg2rad(degrees)
    rz = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, np.cos(b), -np.sin(b)], [0, np.sin(b), np.cos(b)]])
    affine = np.eye(4)
    affine[:3, :3] = rz @ rx @ np.diag(spacing) @ np.diag(flip)
    affine[:3, 3] = [-12.5, 20.25, -31.0]
    return affine


def volume(shape=(20, 24, 12), seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 3000, size=shape).astype(np.float32)


def nifti_roundtrip(tmp_path, array, affine) -> tuple[np.ndarray, np.ndarray]:
    """The NIfTI file's array and affine as nibabel reads them (the reference convention)."""
    path = tmp_path / "ref.nii.gz"
    nib.save(nib.Nifti1Image(array, affine), str(path))
    img = nib.load(str(path))
    return np.asarray(img.dataobj), img.affine


def same_in_world(a, affine_a, b, affine_b) -> bool:
    """True if every voxel of ``a`` lands on a voxel of ``b`` (same world point, any voxel order) with the same value."""
    idx = np.stack(np.meshgrid(*[np.arange(n) for n in a.shape[:3]], indexing="ij"), -1).reshape(-1, 3)
    world = idx @ affine_a[:3, :3].T + affine_a[:3, 3]
    other = (world - affine_b[:3, 3]) @ np.linalg.inv(affine_b[:3, :3]).T
    rounded = np.rint(other).astype(int)
    if np.abs(other - rounded).max() > 1e-3 or (rounded < 0).any() or (rounded >= b.shape[:3]).any():
        return False
    return np.array_equal(a.reshape(-1, *a.shape[3:]), b[rounded[:, 0], rounded[:, 1], rounded[:, 2]])


@pytest.mark.parametrize("flip", [(1, 1, 1), (-1, -1, 1), (1, -1, 1)])
@pytest.mark.parametrize("kind", ["classic", "enhanced"])
def test_nifti_written_as_dicom_reads_back_with_its_affine_and_data(tmp_path, flip, kind):
    array, affine = nifti_roundtrip(tmp_path, volume(), oblique_affine(flip))
    if kind == "classic":
        write_series(array, affine, tmp_path / "study" / "s", description="AX T1")
    else:
        order = np.random.default_rng(1).permutation(array.shape[2])  # frames stored out of order
        write_enhanced_series(array, affine, tmp_path / "study" / "mf.dcm", description="AX T1", frame_order=order)
    (series,) = scan_study(tmp_path / "study")
    got = read_volume(series)
    if np.linalg.det(affine[:3, :3]) > 0:  # slices already run along row x column: the very same grid
        np.testing.assert_allclose(got.affine, affine, atol=1e-5)
        np.testing.assert_array_equal(got.array, array)
    else:  # left-handed grid: the reader sorts slices along the normal, i.e. k reversed
        flip_k = np.eye(4)
        flip_k[2, 2], flip_k[2, 3] = -1, array.shape[2] - 1
        np.testing.assert_allclose(got.affine, affine @ flip_k, atol=1e-5)
        np.testing.assert_array_equal(got.array, array[:, :, ::-1])
    assert same_in_world(got.array, got.affine, array, affine)


def test_affine_matches_nibabel_and_highdicom(tmp_path):
    """nibabel's DICOM wrapper (LPS, voxel order row, column) and highdicom's series volume agree with ours."""
    import highdicom as hd

    array, affine = volume(), oblique_affine()
    files = write_series(array, affine, tmp_path / "s", description="AX T1")
    got = read_volume(scan_study(tmp_path)[0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # nibabel calls its DICOM readers experimental
        from nibabel.nicom import dicomwrappers

        wrapper = dicomwrappers.wrapper_from_file(str(files[0]))
    lps = np.diag([-1.0, -1.0, 1.0, 1.0]) @ got.affine
    np.testing.assert_allclose(wrapper.affine[:3, [1, 0, 3]], lps[:3, [0, 1, 3]], atol=1e-5)  # rows/columns swapped
    np.testing.assert_array_equal(wrapper.get_data(), got.array[:, :, 0].T)
    theirs = hd.get_volume_from_series([pydicom.dcmread(f) for f in files])
    theirs_ras = np.diag([-1.0, -1.0, 1.0, 1.0]) @ theirs.affine  # highdicom: LPS, voxel order (slice, row, col)
    assert same_in_world(theirs.array.astype(np.float32), theirs_ras, got.array, got.affine)


def test_files_and_study_folders(tmp_path):
    study = Study()
    write_series(volume((8, 8, 3)), oblique_affine(), tmp_path / "a" / "s1", description="T1", study=study)
    write_series(volume((8, 8, 3)), oblique_affine(), tmp_path / "a" / "s2", description="T2", study=study,
                 series_number=2)
    write_series(volume((8, 8, 3)), oblique_affine(), tmp_path / "b" / "s1", description="T1")  # another study
    (tmp_path / "a" / "notes.txt").write_text("not dicom")
    (tmp_path / "a" / "DICOMDIR").write_bytes(b"\0" * 128 + b"DICM")
    assert is_dicom_file(tmp_path / "a" / "s1" / "IM0001.dcm") and not is_dicom_file(tmp_path / "a" / "notes.txt")
    assert not is_dicom_file(tmp_path / "a" / "DICOMDIR")
    assert is_study_folder(tmp_path / "a") and is_study_folder(tmp_path / "a" / "s1")
    assert not is_study_folder(tmp_path) and not is_study_folder(tmp_path / "a" / "notes.txt")
    assert [s.description for s in scan_study(tmp_path / "a")] == ["T1", "T2"]
    with pytest.raises(UserError, match="holds 2 studies"):
        scan_study(tmp_path)


def one_line(exc_info) -> str:
    text = str(exc_info.value)
    assert "\n" not in text
    return text


def test_mixed_orientations_are_one_line(tmp_path):
    files = write_series(volume(), oblique_affine(), tmp_path / "s", description="T1")
    ds = pydicom.dcmread(files[5])
    ds.ImageOrientationPatient = [0, 1, 0, 0, 0, -1]  # a sagittal slice in an oblique axial series
    ds.save_as(files[5])
    with pytest.raises(UserError, match="mixed orientations within the series") as exc:
        read_volume(scan_study(tmp_path)[0])
    assert "IM0006.dcm" in one_line(exc)


def test_duplicate_and_missing_slices_are_one_line(tmp_path):
    files = write_series(volume(), oblique_affine(), tmp_path / "dup" / "s", description="T1")
    ds = pydicom.dcmread(files[3])
    ds.SOPInstanceUID = pydicom.uid.generate_uid()
    ds.save_as(tmp_path / "dup" / "s" / "copy.dcm")
    with pytest.raises(UserError, match="duplicate slices") as exc:
        read_volume(scan_study(tmp_path / "dup")[0])
    assert "IM0004.dcm" in one_line(exc) and "copy.dcm" in one_line(exc)
    files = write_series(volume(), oblique_affine(), tmp_path / "gap" / "s", description="T1")
    files[6].unlink()
    files[7].unlink()
    with pytest.raises(UserError, match="missing slices") as exc:
        read_volume(scan_study(tmp_path / "gap")[0])
    assert "about 2 slice(s) missing" in one_line(exc) and "IM0006.dcm" in one_line(exc)


def test_duplicate_frames_of_a_multiframe_image(tmp_path):
    array = volume()
    write_enhanced_series(array, oblique_affine(), tmp_path / "mf.dcm", description="T1",
                          frame_order=[0, 1, 2, 3, 3, 5, 6, 7, 8, 9, 10, 11])
    with pytest.raises(UserError, match="duplicate slices: frame 4 and frame 5") as exc:
        read_volume(scan_study(tmp_path)[0])
    one_line(exc)


def test_an_undecodable_transfer_syntax_is_one_line(tmp_path):
    from pydicom.encaps import encapsulate

    files = write_series(volume((16, 16, 3)), oblique_affine(), tmp_path / "s", description="T1")
    for f in files:
        ds = pydicom.dcmread(f)
        ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.100"  # MPEG2 video: pydicom has no decoder
        ds.PixelData = encapsulate([b"\x00\x00\x01\xb3" + bytes(60)])
        ds["PixelData"].VR = "OB"
        ds.save_as(f, enforce_file_format=True)
    with pytest.raises(UserError, match="cannot be decoded by pydicom") as exc:
        read_volume(scan_study(tmp_path)[0])
    assert "1.2.840.10008.1.2.4.100" in one_line(exc) and "MPEG2" in one_line(exc)


def test_non_image_series_are_left_out(tmp_path):
    study = Study()
    write_series(volume((8, 8, 3)), oblique_affine(), tmp_path / "s1", description="T1", study=study)
    ds = pydicom.dcmread(tmp_path / "s1" / "IM0001.dcm", stop_before_pixels=True)
    for tag in ("Rows", "Columns", "PixelSpacing"):
        del ds[tag]
    ds.Modality, ds.SeriesInstanceUID = "SR", pydicom.uid.generate_uid()
    ds.save_as(tmp_path / "report.dcm")
    assert [s.description for s in scan_study(tmp_path)] == ["T1"]


def test_highdicom_legacy_converted_multiframe_reads_like_its_source(tmp_path):
    """A multi-frame MR written by highdicom (Legacy Converted Enhanced MR) gives the classic series' volume."""
    import highdicom as hd

    array, affine = volume(), oblique_affine()
    files = write_series(array, affine, tmp_path / "classic", description="AX T2")
    legacy = hd.legacy.LegacyConvertedEnhancedMRImage([pydicom.dcmread(f) for f in files],
                                                       series_instance_uid=hd.UID(), series_number=9,
                                                       sop_instance_uid=hd.UID(), instance_number=1)
    (tmp_path / "multi").mkdir()
    legacy.save_as(tmp_path / "multi" / "legacy.dcm")
    (series,) = scan_study(tmp_path / "multi")
    assert series.multiframe and series.frames == array.shape[2]
    got = read_volume(series)
    np.testing.assert_allclose(got.affine, affine, atol=1e-5)
    np.testing.assert_array_equal(got.array, array)


@pytest.mark.parametrize("layout", ["per-frame", "shared"])
def test_functional_group_layouts_read_alike_and_give_the_seg_writer_shared_geometry(tmp_path, layout):
    """Pixel measures and plane orientation per frame (Philips, Siemens XA) or shared (GE): the same volume;
    with_shared_geometry lays either out as highdicom expects, frame positions unchanged."""
    from sigplex.datasets.dicom import frame_geometry, functional_group, with_shared_geometry

    array, affine = volume(), oblique_affine()
    order = np.random.default_rng(2).permutation(array.shape[2])
    path = write_enhanced_series(array, affine, tmp_path / "s" / "mf.dcm", description="T1", frame_order=order,
                                 layout=layout)
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    kept = ds.PerFrameFunctionalGroupsSequence[0] if layout == "per-frame" else ds.SharedFunctionalGroupsSequence[0]
    assert "PixelMeasuresSequence" in kept and "PlaneOrientationSequence" in kept
    assert "PlanePositionSequence" not in ds.SharedFunctionalGroupsSequence[0]
    got = read_volume(scan_study(tmp_path)[0])
    np.testing.assert_allclose(got.affine, affine, atol=1e-5)
    np.testing.assert_array_equal(got.array, array)
    assert functional_group(ds, 3, "PixelMeasuresSequence").PixelSpacing == frame_geometry(ds, 3, "x")[2]
    shared = with_shared_geometry(ds, str(path))
    assert "PixelMeasuresSequence" in shared.SharedFunctionalGroupsSequence[0]
    assert all("PixelMeasuresSequence" not in f for f in shared.PerFrameFunctionalGroupsSequence)
    assert [frame_geometry(shared, i, "x") for i in range(len(order))] == \
        [frame_geometry(ds, i, "x") for i in range(len(order))]
    assert "PixelMeasuresSequence" in ds.PerFrameFunctionalGroupsSequence[0] or layout == "shared"  # not changed


def test_real_philips_enhanced_mr_matches_nibabel_in_either_layout(tmp_path):
    """nibabel's wheel ships a Philips Enhanced MR (geometry per frame); nibabel's own multi-frame wrapper is
    the reference. Moved to the shared layout (a GE-style stand-in), it reads the same."""
    from helpers import read_packaged
    from nibabel.nicom import dicomwrappers

    from sigplex.datasets.dicom import move_functional_groups

    ds = read_packaged("philips_mprage")
    assert "PixelMeasuresSequence" in ds.PerFrameFunctionalGroupsSequence[0]
    assert "PixelMeasuresSequence" not in ds.SharedFunctionalGroupsSequence[0]
    volumes = []
    for layout in ("as shipped", "shared"):
        if layout == "shared":
            move_functional_groups(ds, "shared")
            assert "PixelMeasuresSequence" in ds.SharedFunctionalGroupsSequence[0]
            assert "PlanePositionSequence" in ds.PerFrameFunctionalGroupsSequence[5]
        (tmp_path / layout).mkdir()
        ds.save_as(tmp_path / layout / "mf.dcm", enforce_file_format=True)
        volumes.append(read_volume(scan_study(tmp_path / layout)[0]))
    np.testing.assert_array_equal(volumes[0].affine, volumes[1].affine)
    assert volumes[0].frames == volumes[1].frames == list(range(176))  # stored in order along the normal
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # nibabel calls its DICOM readers experimental
        theirs = dicomwrappers.wrapper_from_data(ds).affine  # LPS; voxel order (row, column, frame)
    lps = np.diag([-1.0, -1.0, 1.0, 1.0]) @ volumes[0].affine
    np.testing.assert_allclose(theirs[:3, [1, 0]], lps[:3, [0, 1]], atol=1e-4)  # rows and columns swapped
    # nibabel stacks the frames the other way along the normal: same line, other end
    np.testing.assert_allclose(theirs[:3, 2], -lps[:3, 2], atol=1e-4)
    np.testing.assert_allclose(theirs[:3, 3], lps[:3, 3] + 175 * lps[:3, 2], atol=1e-3)


@pytest.mark.parametrize("name, match", [
    ("emri_small", "emri_small.dcm: frame 1: ImageOrientationPatient missing \\(not in the per-frame or shared "
                   "functional groups\\); cannot place the frame in space"),
    ("siemens_xa30_mpr", "mixed orientations within the series: frame 1 has ImageOrientationPatient .*, frame 2"),
])
def test_real_enhanced_mr_that_is_not_a_volume_is_one_line(tmp_path, name, match):
    """Packaged files that cannot be one 3D stack: pydicom-data's emri_small (its geometry was removed) and
    heudiconv's Siemens XA30 MPR scout (three frames in three planes, read from its per-frame groups)."""
    from helpers import read_packaged

    ds = read_packaged(name)
    (tmp_path / "s").mkdir()
    ds.save_as(tmp_path / "s" / f"{name}.dcm", enforce_file_format=True)
    with pytest.raises(UserError, match=match) as exc:
        read_volume(scan_study(tmp_path)[0])
    one_line(exc)
