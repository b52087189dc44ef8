"""core.backbones.swin.instance_norm: the channels-last inference path equals F.instance_norm."""
import pytest
import torch
import torch.nn.functional as F

from sigplex.core.backbones import swin


# tiled: rows of WIDE floats (16 voxels of 24 channels, 8 of 48); untiled: C does not divide
# WIDE, or the voxel count is not a multiple of the tile
@pytest.mark.parametrize("shape", [(2, 24, 8, 8, 8), (1, 48, 4, 4, 4), (2, 5, 3, 4, 5), (1, 24, 3, 3, 3), (1, 7, 9, 6)],
                         ids=["tiled_c24", "tiled_c48", "c5_untiled", "c24_27_voxels", "2d_odd"])
def test_channels_last_path_matches_instance_norm(shape):
    g = torch.Generator().manual_seed(len(shape) + shape[1])
    # per-channel offsets far from zero: E[x^2] - mean^2 must not lose the variance
    offsets = torch.arange(shape[1], dtype=torch.float64).view(1, -1, *[1] * (len(shape) - 2))
    x = torch.randn(*shape, generator=g, dtype=torch.float64) * 0.5 + offsets
    fmt = torch.channels_last_3d if x.ndim == 5 else torch.channels_last
    x = x.contiguous(memory_format=fmt)
    with torch.no_grad():
        out = swin.instance_norm(x, eps=1e-5)
        ref = F.instance_norm(x.contiguous(), eps=1e-5)
        torch.testing.assert_close(out, ref, atol=1e-10, rtol=1e-10)
        out32 = swin.instance_norm(x.float(), eps=1e-5)
    # float32 as close as F.instance_norm's own float32 (~5e-6 here; a one-pass sum of squares
    # was 5e-3 off, a plain float32 GEMV mean 3e-5)
    torch.testing.assert_close(out32.double(), ref, atol=1.5e-5, rtol=1e-5)
    assert out.shape == x.shape


@pytest.mark.parametrize("shape", [(2, 24, 4, 4, 4), (1, 5, 3, 4, 5), (2, 6, 5, 4)], ids=["tiled", "untiled", "2d"])
def test_channels_last_gradients_match_instance_norm(shape):
    g = torch.Generator().manual_seed(shape[1])
    x = (torch.randn(*shape, generator=g, dtype=torch.float64) * 2 + 1)
    x = x.contiguous(memory_format=torch.channels_last_3d if x.ndim == 5 else torch.channels_last)
    dy = torch.randn(*shape, generator=g, dtype=torch.float64)
    ours = x.clone().requires_grad_()
    out = swin.instance_norm(ours)
    assert out.is_contiguous(memory_format=torch.channels_last_3d if x.ndim == 5 else torch.channels_last)
    out.backward(dy)
    ref = x.contiguous().requires_grad_()
    F.instance_norm(ref).backward(dy.contiguous())
    torch.testing.assert_close(ours.grad, ref.grad, atol=1e-10, rtol=1e-10)
    assert ours.grad.is_contiguous(memory_format=torch.channels_last_3d if x.ndim == 5 else torch.channels_last)


def test_channels_last_gradcheck(monkeypatch):
    calls = []
    apply = swin._ChannelsLastInstanceNorm.apply
    monkeypatch.setattr(swin._ChannelsLastInstanceNorm, "apply", lambda *a: calls.append(1) or apply(*a))
    x = torch.randn(1, 3, 2, 3, 2, dtype=torch.float64).contiguous(memory_format=torch.channels_last_3d)
    assert torch.autograd.gradcheck(lambda t: swin.instance_norm(t), (x.requires_grad_(),))
    assert calls  # the hand-written backward was the one checked


def test_bf16_input_is_normalised_in_float32():
    """Near-constant channels (spread 0.01 on a mean of 4.75): a bf16 mean cannot resolve them, so the
    statistics are taken in float32 and the bf16 output is within its own rounding of the float32 one."""
    from sigplex.core.ops.norm import instance_norm

    g = torch.Generator().manual_seed(0)
    x = (torch.randn(1, 64, 2, 2, 2, generator=g) * 0.01 + 4.75).bfloat16()
    for layout in (torch.contiguous_format, torch.channels_last_3d):
        leaf = x.clone(memory_format=layout).requires_grad_()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = instance_norm(leaf)
        assert out.dtype == torch.bfloat16
        want = F.instance_norm(x.float())
        assert (out.float() - want).abs().max() < 0.02  # PyTorch's bf16 kernel: off by ~1.0
        out.float().square().sum().backward()
        assert torch.isfinite(leaf.grad).all()
