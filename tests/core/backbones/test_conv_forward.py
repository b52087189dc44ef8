"""``conv_forward``: batch-1 convs through oneDNN (split into two depth halves) equal ``F.conv*``."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from sigplex.core.backbones.swin import _aten_prefers_mkldnn, conv_forward

CASES = [  # (spatial dims, in, out, kernel, padding, size, bias, groups)
    (3, 4, 6, 3, 1, (8, 9, 10), False, 1),    # even depth
    (3, 5, 4, 3, 1, (7, 6, 5), True, 1),      # odd depth: one zero row past the end, dropped
    (3, 3, 4, 3, 1, (1, 4, 4), False, 1),     # depth 1
    (3, 4, 4, 1, 0, (6, 5, 4), False, 1),     # 1x1 kernel
    (3, 4, 6, 3, 0, (9, 6, 6), False, 1),     # valid conv: the output is shorter than the input
    (3, 4, 6, 5, 2, (6, 7, 5), True, 2),      # wider kernel, grouped
    (2, 3, 5, 3, 1, (11, 7), True, 1),        # 2D
]


@pytest.mark.parametrize("nd,cin,cout,k,p,size,bias,groups", CASES)
def test_batch1_conv_matches_functional_forward_and_gradients(nd, cin, cout, k, p, size, bias, groups):
    torch.manual_seed(0)
    conv = (nn.Conv3d if nd == 3 else nn.Conv2d)(cin, cout, k, padding=p, bias=bias, groups=groups)
    fmt = torch.channels_last_3d if nd == 3 else torch.channels_last
    x = torch.randn(1, cin, *size).contiguous(memory_format=fmt).requires_grad_()
    assert not _aten_prefers_mkldnn(x)  # the batch-1 path under test
    out = conv_forward(conv, x)
    grad = torch.randn_like(out)
    gx, gw = torch.autograd.grad(out, (x, conv.weight), grad)

    # reference: the plain conv in float64 on the same values
    x64, w64 = x.detach().double().requires_grad_(), conv.weight.detach().double().requires_grad_()
    b64 = conv.bias.detach().double() if bias else None
    fn = F.conv3d if nd == 3 else F.conv2d
    ref = fn(x64, w64, b64, padding=p, groups=groups)
    rgx, rgw = torch.autograd.grad(ref, (x64, w64), grad.double())
    assert out.shape == ref.shape
    for got, want in ((out, ref), (gx, rgx), (gw, rgw)):
        scale = want.abs().max().item()
        torch.testing.assert_close(got.double(), want, rtol=0, atol=1e-5 * scale)


def test_batch1_conv_keeps_channels_last_and_bias_gradient():
    torch.manual_seed(1)
    conv = nn.Conv3d(4, 8, 3, padding=1, bias=True)
    x = torch.randn(1, 4, 6, 6, 6).contiguous(memory_format=torch.channels_last_3d)
    out = conv_forward(conv, x)
    assert out.is_contiguous(memory_format=torch.channels_last_3d)
    out.sum().backward()
    torch.testing.assert_close(conv.bias.grad, torch.full((8,), 216.0))


@pytest.mark.parametrize("size,stride", [((2, 2, 2), 1), ((2, 4, 4), 1), ((1, 1, 1), 2)],
                         ids=["bottleneck_2x2x2", "depth2", "stride2_of_1x1x1"])
def test_bf16_autocast_training_conv_gets_float32_weight_gradients(size, stride):
    """bf16 autocast on the CPU: the small convs whose bf16 weight gradient PyTorch gets wrong (inf/NaN or
    off by ~100 % on its im2col route) run in float32: gradients within bf16 rounding of float32's."""
    torch.manual_seed(0)
    conv = nn.Conv3d(96, 96, 3, padding=1, stride=stride, bias=False)
    x = torch.randn(1, 96, *size)
    grads = {}
    for precision in ("bf16", "fp32"):
        conv.zero_grad()
        leaf = x.clone().requires_grad_()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            out = conv_forward(conv, leaf)
        assert out.dtype == (torch.bfloat16 if precision == "bf16" else torch.float32)
        out.float().square().mean().backward()
        grads[precision] = (conv.weight.grad.clone(), leaf.grad.clone())
    for got, want in zip(grads["bf16"], grads["fp32"]):
        assert torch.isfinite(got).all()
        assert (got - want).abs().max() <= 0.05 * want.abs().max()
