"""Label maps per source → TC/WT/ET channels and back, on exact small arrays."""
from __future__ import annotations

import numpy as np
import pytest

from sigplex.core.errors import UserError
from sigplex.datasets.nifti import channels_to_labels, get_source, labels_to_channels

# One voxel per label value, laid out on a line (spatial shape (1, 1, 5)).
CASES = {
    # source: (label values, expected TC, WT, ET for each value)
    "brats2021": ([0, 1, 2, 4, 0], [0, 1, 0, 1, 0], [0, 1, 1, 1, 0], [0, 0, 0, 1, 0]),
    "brats2023": ([0, 1, 2, 3, 0], [0, 1, 0, 1, 0], [0, 1, 1, 1, 0], [0, 0, 0, 1, 0]),
    # MSD: 1 oedema, 2 non-enhancing tumour, 3 enhancing
    "msd": ([0, 1, 2, 3, 0], [0, 0, 1, 1, 0], [0, 1, 1, 1, 0], [0, 0, 0, 1, 0]),
}


@pytest.mark.parametrize("source", sorted(CASES))
def test_labels_to_channels_exact(source):
    values, tc, wt, et = CASES[source]
    seg = np.array(values, np.uint8).reshape(1, 1, 5)
    out = labels_to_channels(seg, source)
    assert out.dtype == np.float32 and out.shape == (3, 1, 1, 5)
    np.testing.assert_array_equal(out.reshape(3, 5), np.array([tc, wt, et], np.float32))
    # a leading channel of 1 (as after EnsureChannelFirst) gives the same result
    np.testing.assert_array_equal(labels_to_channels(seg[None], source), out)


@pytest.mark.parametrize("source,bad", [("brats2021", 3), ("brats2023", 4), ("msd", 4)])
def test_labels_outside_set_rejected(source, bad):
    seg = np.array([0, 1, bad], np.uint8).reshape(1, 1, 3)
    with pytest.raises(UserError, match=f"label values.*{source}.*found {bad}"):
        labels_to_channels(seg, source)


def test_channels_to_brats_labels_standard_rule():
    # voxels: bg, WT only, WT+TC, WT+TC+ET, ET only (inconsistent: ET wins), TC only
    tc = [0.1, 0.2, 0.9, 0.9, 0.1, 0.8]
    wt = [0.2, 0.7, 0.9, 0.9, 0.1, 0.3]
    et = [0.0, 0.1, 0.4, 0.6, 0.9, 0.2]
    probs = np.array([tc, wt, et], np.float32).reshape(3, 1, 2, 3)
    out = channels_to_labels(probs)
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out.ravel(), [0, 2, 1, 4, 4, 1])


@pytest.mark.parametrize("source", sorted(CASES))
def test_roundtrip_per_source(source):
    values = CASES[source][0]
    seg = np.array(values, np.uint8).reshape(1, 1, 5)
    back_native = channels_to_labels(labels_to_channels(seg, source), source=source)
    src = get_source(source)
    if source == "msd":  # MSD's TC-not-ET class is "non-enhancing tumour" (2), oedema is 1
        np.testing.assert_array_equal(back_native.ravel(), values)
    else:
        np.testing.assert_array_equal(back_native.ravel(), values)
    # to BraTS 2021 values, whatever the source
    to_brats = channels_to_labels(labels_to_channels(seg, source))
    expected = {0: 0, src.oedema: 2, src.necrotic: 1, src.enhancing: 4}
    np.testing.assert_array_equal(to_brats.ravel(), [expected[v] for v in values])


def test_channels_to_labels_torch_and_bad_shape():
    torch = pytest.importorskip("torch")
    probs = torch.zeros(3, 2, 2, 2)
    probs[1, 0, 0, 0] = 0.9
    assert channels_to_labels(probs)[0, 0, 0] == 2
    with pytest.raises(UserError, match=r"expected \(3, \*spatial\)"):
        channels_to_labels(np.zeros((4, 2, 2, 2)))
    with pytest.raises(UserError, match="data.source"):
        labels_to_channels(np.zeros((2, 2, 2)), "brats2019")
