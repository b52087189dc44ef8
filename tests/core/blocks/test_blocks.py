"""sigplex.core.blocks: scale norm, offset-scale heads, the residual depthwise conv module and FFConvM."""
import math

import pytest
import torch

from sigplex.core.blocks import ConvModule, FFConvM, OffsetScale, ScaleNorm, depthwise_conv_channels_last

TOL = dict(atol=1e-5, rtol=1e-5)


def rand(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def test_scalenorm_and_offsetscale():
    x = rand(2, 5, 8, seed=1)
    norm = ScaleNorm(8)
    with torch.no_grad():
        norm.g.fill_(2.0)
    expected = 2.0 * x / (x.norm(dim=-1, keepdim=True) / math.sqrt(8))
    torch.testing.assert_close(norm(x), expected, **TOL)
    os_ = OffsetScale(8, heads=4)
    with torch.no_grad():
        os_.beta.normal_()
    out = os_(x)
    assert out.shape == (4, 2, 5, 8)
    for h in range(4):
        torch.testing.assert_close(out[h], x * os_.gamma[h] + os_.beta[h], **TOL)


@pytest.mark.parametrize("grad", [True, False], ids=["training_path", "inference_path"])
@pytest.mark.parametrize("causal", [False, True])
def test_conv_module_is_residual_depthwise_conv(causal, grad):
    m = ConvModule(4, kernel_size=5, causal=causal)
    x = rand(2, 11, 4, seed=1)
    pad = (4, 0) if causal else (2, 2)
    ref = torch.nn.functional.conv1d(torch.nn.functional.pad(x.transpose(1, 2), pad), m.conv.weight, groups=4)
    with torch.set_grad_enabled(grad):
        torch.testing.assert_close(m(x), x + ref.transpose(1, 2), **TOL)
    x2 = x.clone()
    x2[:, 6:] += rand(2, 5, 4, seed=2)  # change the future (t >= 6)
    change = (m(x2)[:, :6] - m(x)[:, :6]).abs().max().item()
    if causal:
        assert change <= 1e-6  # outputs before t = 6 do not see it
    else:
        assert change > 1e-2  # the centred kernel sees two frames ahead


def test_ffconvm_order():
    torch.manual_seed(0)
    m = FFConvM(6, 10, norm="layernorm", kernel_size=3, dropout=0.0).eval()
    x = rand(2, 7, 6, seed=1)
    h = torch.nn.functional.silu(m.linear(torch.nn.functional.layer_norm(x, (6,), m.norm.weight, m.norm.bias)))
    torch.testing.assert_close(m(x), m.conv(h), **TOL)
    assert isinstance(FFConvM(6, 10, norm="scalenorm").norm, ScaleNorm)
    with pytest.raises(ValueError):
        FFConvM(6, 10, norm="batch")


@pytest.mark.parametrize("t, k, dilation, pad", [
    (37, 5, 2, (4, 4)), (41, 3, 3, (3, 3)), (30, 7, 1, (6, 0)), (33, 4, 1, (1, 2)), (29, 5, 2, (2, 6)), (8, 17, 1, (8, 8)),
])
def test_depthwise_conv_channels_last_equals_conv1d(t, k, dilation, pad):
    """The [B, T, C] inference conv equals Conv1d(groups=C) on the transposed input: odd lengths,
    asymmetric pads, dilations (run as interleaved undilated convs), kernels longer than T."""
    x = rand(2, t, 6, seed=t).double()
    w = rand(6, 1, k, seed=k).double()
    ref = torch.nn.functional.conv1d(torch.nn.functional.pad(x.transpose(1, 2), pad), w, dilation=dilation, groups=6)
    got = depthwise_conv_channels_last(x, w, pad, dilation=dilation)
    torch.testing.assert_close(got, ref.transpose(1, 2), atol=1e-12, rtol=1e-12)


def test_depthwise_conv_channels_last_rejects_grouped_weights_and_odd_dilated_pads():
    x = rand(1, 10, 4)
    with pytest.raises(ValueError, match=r"depthwise weight expected \[C, 1, K\]"):
        depthwise_conv_channels_last(x, rand(2, 2, 3), (1, 1))
    with pytest.raises(ValueError, match="multiples of the dilation 2"):
        depthwise_conv_channels_last(x, rand(4, 1, 3), (1, 1), dilation=2)
