"""Long-audio inference: chunk plan, speaker-order stitching, bounded chunk size, equality on short input."""
import numpy as np
import pytest
import torch

from sigplex.plugins.speech_sep.long_audio import chunk_starts, separate_long
from sigplex.plugins.speech_sep.mossformer2 import MossFormer2


def test_chunk_plan_covers_the_recording_with_the_overlap():
    starts = chunk_starts(10_000, 3000, 700)
    assert starts[0] == 0 and starts[-1] + 3000 == 10_000
    assert all(b - a <= 3000 - 700 for a, b in zip(starts, starts[1:]))
    assert chunk_starts(2000, 3000, 700) == [0]
    with pytest.raises(ValueError):
        chunk_starts(10_000, 3000, 1600)  # overlap above chunk / 2


class OracleSeparator:
    """Returns the true sources of each chunk, in a different order (and scale) on every other chunk."""

    def __init__(self, sources, mixture):
        self.sources, self.mixture, self.calls = sources, mixture, []

    def __call__(self, seg):
        t = seg.shape[-1]
        start = next(s for s in range(self.mixture.shape[-1] - t + 1)
                     if torch.equal(self.mixture[s:s + t], seg[0]))
        k = len(self.calls)
        self.calls.append((start, t))
        out = self.sources[:, start:start + t]
        if k % 2:
            out = out.roll(1, dims=0) * 2.5
        return out[None]


@pytest.mark.parametrize("n_spk", [2, 3])
def test_stitching_recovers_sources_when_chunk_orders_are_swapped(n_spk):
    torch.manual_seed(n_spk)
    length = 9_000
    sources = torch.randn(n_spk, length)
    mixture = sources.sum(0)
    oracle = OracleSeparator(sources, mixture)
    out = separate_long(oracle, mixture.numpy(), n_spk, chunk=2000, overlap=500)
    assert len(oracle.calls) >= 4  # several chunks, half of them permuted
    np.testing.assert_allclose(out, sources.numpy(), atol=1e-5)


def test_without_stitching_the_swaps_would_show():
    """Guard: the oracle really swaps, so the stitched result is not trivially right."""
    torch.manual_seed(0)
    sources = torch.randn(2, 6000)
    mixture = sources.sum(0)
    oracle = OracleSeparator(sources, mixture)
    second = oracle(mixture[None, 1000:3000])  # call 0 (unpermuted)
    second = oracle(mixture[None, 1000:3000])  # call 1 (permuted)
    assert not torch.allclose(second[0], sources[:, 1000:3000])


def test_model_never_sees_more_than_one_chunk():
    seen = []

    def fake(seg):
        seen.append(seg.shape[-1])
        return torch.stack([seg[0] * 0.5, seg[0] * 0.5])[None]

    out = separate_long(fake, np.random.default_rng(0).standard_normal(50_000).astype(np.float32), 2, 4000, 1000)
    assert max(seen) == 4000 and len(seen) == 17
    assert out.shape == (2, 50_000)


def test_short_input_equals_one_forward_pass():
    torch.manual_seed(0)
    model = MossFormer2(num_spks=2, dim=16, num_layers=1, group_size=16, query_key_dim=8, rotary_dim=4).eval()
    x = torch.randn(1500)
    out = separate_long(model, x.numpy(), 2, chunk=4000, overlap=1000)
    with torch.no_grad():
        direct = model(x[None])[0].numpy()
    np.testing.assert_allclose(out, direct, atol=1e-6)


def test_writes_into_a_preallocated_memmap(tmp_path):
    sources = torch.randn(2, 7000)
    mixture = sources.sum(0)
    target = np.lib.format.open_memmap(tmp_path / "out.npy", mode="w+", dtype=np.float32, shape=(2, 7000))
    separate_long(OracleSeparator(sources, mixture), mixture.numpy(), 2, 2000, 500, out=target)
    target.flush()
    np.testing.assert_allclose(np.load(tmp_path / "out.npy"), sources.numpy(), atol=1e-5)
