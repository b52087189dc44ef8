"""sigplex's SwinUNETR against MONAI 1.6.1's: weights, outputs, gradients, errors, export."""
from __future__ import annotations

import pytest
import torch

monai_nets = pytest.importorskip("monai.networks.nets")

from sigplex.core.errors import UserError  # noqa: E402
from sigplex.core.models import create_model, model_entry  # noqa: E402
from sigplex.plugins.brain_seg.swin_unetr import SwinUNETR  # noqa: E402

CONFIGS = [
    (dict(feature_size=12), (1, 4, 64, 32, 32)),
    (dict(feature_size=24, depths=(1, 1, 1, 1)), (2, 4, 32, 64, 32)),
    (dict(feature_size=12, depths=(1, 1, 1, 1), use_v2=True, downsample="mergingv2"), (1, 4, 64, 32, 32)),
    (dict(feature_size=12, depths=(1, 1, 1, 1), use_v2=True), (1, 4, 32, 32, 64)),
    (dict(feature_size=12, depths=(2, 1, 1, 1), normalize=False), (1, 4, 64, 64, 32)),
    (dict(feature_size=12, spatial_dims=2), (2, 4, 64, 96)),
    (dict(feature_size=12, spatial_dims=2, use_v2=True, downsample="mergingv2"), (1, 4, 64, 64)),
    (dict(feature_size=12, depths=(1, 1, 1, 1), norm_name="batch"), (2, 4, 32, 32, 32)),  # MONAI's decoder blocks
]


def _pair(**kw):
    torch.manual_seed(0)
    theirs = monai_nets.SwinUNETR(in_channels=4, out_channels=3, **kw)
    ours = SwinUNETR(in_channels=4, out_channels=3, **kw)
    ours.load_state_dict(theirs.state_dict(), strict=True)
    return ours, theirs


@pytest.mark.parametrize("kw,shape", CONFIGS, ids=[str(i) for i in range(len(CONFIGS))])
def test_matches_monai_outputs(kw, shape):
    ours, theirs = _pair(**kw)
    assert set(ours.state_dict()) == set(theirs.state_dict())
    ours.eval(), theirs.eval()
    x = torch.randn(shape)
    with torch.no_grad():
        ref = theirs(x)
        out = ours(x)
    assert out.shape == ref.shape
    assert (out - ref).abs().max().item() <= 1e-4


def test_swinvit_state_dict_loads_strict_into_encoder():
    torch.manual_seed(0)
    theirs = monai_nets.SwinUNETR(in_channels=4, out_channels=3, feature_size=12, use_v2=True)
    ours = SwinUNETR(in_channels=4, out_channels=3, feature_size=12, use_v2=True)
    ours.swinViT.load_state_dict(theirs.swinViT.state_dict(), strict=True)
    x = torch.randn(1, 4, 64, 64, 32)
    with torch.no_grad():
        for a, b in zip(ours.swinViT(x), theirs.swinViT(x)):
            assert a.shape == b.shape
            assert (a - b).abs().max().item() <= 1e-4
    shapes = ours.swinViT.feature_shapes((64, 64, 32))
    assert shapes == [(1, 12 * 2**i, 32 // 2**i, 32 // 2**i, 16 // 2**i) for i in range(5)]
    assert shapes == [tuple(h.shape) for h in ours.swinViT(x)]


def _grads(model, x, target) -> dict:
    model.train()
    torch.nn.functional.mse_loss(model(x), target).backward()
    return {n: p.grad.double() for n, p in model.named_parameters()}


def test_training_step_gradients_match_monai():
    """Every parameter's gradient against MONAI's computed in float64 (the ground truth).

    float64: the same math, so each gradient tensor matches to ~1e-14 of its own norm, the tiny
    ones of the 2x2x1 bottleneck (~1e-6) included. float32 (the oneDNN conv paths and the custom
    conv backward run only there): each tensor's error is measured against its own norm, or
    1e-3 of the largest gradient norm if smaller, since float32 sums over 10^5 voxels round at
    ~1e-3 of a tensor and tiny gradients only carry that noise. A sign error or a dropped
    gradient gives an error of 2 or 1: the test asserts it would fail for the tensors it covers.
    """
    torch.manual_seed(0)
    theirs = monai_nets.SwinUNETR(in_channels=4, out_channels=3, feature_size=12, depths=(1, 1, 1, 1)).double()
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(1, 4, 64, 64, 32, generator=gen, dtype=torch.float64)  # stage 4 needs no padding, the others do
    target = torch.rand(1, 3, 64, 64, 32, generator=gen, dtype=torch.float64)
    truth = _grads(theirs, x, target)
    biggest = max(float(g.norm()) for g in truth.values())
    for dtype, tol, floor in ((torch.float64, 1e-9, 1e-12 * biggest), (torch.float32, 2e-2, 1e-3 * biggest)):
        ours = SwinUNETR(in_channels=4, out_channels=3, feature_size=12, depths=(1, 1, 1, 1)).to(dtype)
        ours.load_state_dict(theirs.state_dict(), strict=True)
        got = _grads(ours, x.to(dtype), target.to(dtype))
        scale = {n: max(float(t.norm()), floor) for n, t in truth.items()}
        errors = {n: float((got[n] - t).norm()) / scale[n] for n, t in truth.items()}
        worst = max(errors, key=errors.get)
        assert errors[worst] < tol, (dtype, worst, errors[worst])
        sharp = {n for n, t in truth.items() if 2 * float(t.norm()) / scale[n] > tol}  # a sign flip would fail
        if dtype == torch.float64:
            assert sharp == set(truth)
        else:  # every conv outside the encoder, where the float32-only kernels run
            assert {n for n in truth if not n.startswith("swinViT.") and n.endswith("conv.weight")} <= sharp


def test_gradient_checkpointing_same_gradients():
    torch.manual_seed(0)
    plain = SwinUNETR(4, 3, feature_size=12, depths=(1, 1, 1, 1))
    ckpt = SwinUNETR(4, 3, feature_size=12, depths=(1, 1, 1, 1), use_checkpoint=True)
    ckpt.load_state_dict(plain.state_dict())
    x = torch.randn(1, 4, 64, 64, 32)
    grads = []
    for m in (plain, ckpt):
        m.train()
        m(x).square().mean().backward()
        grads.append({n: p.grad.clone() for n, p in m.named_parameters()})
    assert all(blk.use_checkpoint for blk in ckpt.swinViT.layers1[0].blocks)
    for name, g in grads[0].items():
        torch.testing.assert_close(grads[1][name], g, atol=1e-6, rtol=1e-5)


def _monai_ssl_checkpoint(monai_swin_vit: torch.nn.Module) -> dict:
    """A checkpoint shaped like MONAI's self-supervised ``model_swinvit.pt``."""
    sd = {}
    for k, v in monai_swin_vit.state_dict().items():
        k = k.replace("mlp.linear1", "mlp.fc1").replace("mlp.linear2", "mlp.fc2")
        sd["module." + k] = v.clone()
    sd["module.norm.weight"] = torch.ones(3)  # extra keys of the SSL head are ignored
    return {"state_dict": sd, "epoch": 100}


def test_load_swin_vit_from_ssl_checkpoint():
    torch.manual_seed(1)
    donor = monai_nets.SwinUNETR(in_channels=4, out_channels=3, feature_size=12)
    net = SwinUNETR(4, 3, feature_size=12)
    report = net.load_swin_vit(_monai_ssl_checkpoint(donor.swinViT))
    assert not report["missing"] and "module.norm.weight" in report["ignored"]
    for k, v in donor.swinViT.state_dict().items():
        assert torch.equal(net.swinViT.state_dict()[k], v), k
    # decoder untouched, swinViT.* prefixed dicts also load
    net2 = SwinUNETR(4, 3, feature_size=12)
    net2.load_swin_vit({f"swinViT.{k}": v for k, v in donor.swinViT.state_dict().items()})
    assert torch.equal(net2.swinViT.patch_embed.proj.weight, donor.swinViT.patch_embed.proj.weight)


def test_load_swin_vit_errors():
    net = SwinUNETR(4, 3, feature_size=12)
    with pytest.raises(UserError, match="no key"):
        net.load_swin_vit({"foo.bar": torch.zeros(1)})
    wrong = SwinUNETR(4, 3, feature_size=24)
    with pytest.raises(UserError, match="shape"):
        net.load_swin_vit(wrong.swinViT.state_dict())
    partial = {k: v for k, v in net.swinViT.state_dict().items() if "layers4" not in k}
    with pytest.raises(UserError, match="lacks"):
        net.load_swin_vit(partial)
    assert net.load_swin_vit(partial, strict=False)["missing"]


@pytest.mark.parametrize("kw,match", [
    (dict(feature_size=13), "divisible by 12"),
    (dict(use_hyena=True), "use_hyena"),
    (dict(spatial_dims=4), "spatial_dims"),
    (dict(drop_rate=1.5), "drop_rate"),
    (dict(downsample="nearest"), "downsample"),
    (dict(hyena_bogus=1), "unexpected"),
    (dict(norm_layer=torch.nn.BatchNorm1d), "norm_layer"),
    (dict(window_size=(7, 7)), "window_size"),
])
def test_bad_arguments_raise_clear_errors(kw, match):
    with pytest.raises(UserError, match=match) as info:
        SwinUNETR(4, 3, **kw)
    assert isinstance(info.value, ValueError)  # MONAI raises ValueError for these


def test_monai_only_arguments_accepted():
    net = SwinUNETR(4, 3, feature_size=12, depths=(1, 1, 1, 1), use_flash_attention=True, patch_norm=True,
                    window_size=(5, 5, 5), qkv_bias=False, mlp_ratio=2.0, hyena_kernel_size=5)
    assert net.swinViT.patch_embed.norm is not None
    assert net.swinViT.layers1[0].blocks[0].attn.qkv.bias is None
    with torch.no_grad():
        assert net.eval()(torch.randn(1, 4, 64, 32, 32)).shape == (1, 3, 64, 32, 32)


@pytest.mark.parametrize("shape,match", [
    ((1, 4, 48, 64, 64), r"spatial dimensions \[2\].*divisible by 2\*\*5"),
    ((1, 4, 32, 32, 32), "single voxel"),
    ((1, 3, 64, 64, 64), "in_channels=4"),
    ((4, 64, 64, 64), "5 dims"),
])
def test_bad_inputs_raise_clear_errors(shape, match):
    net = SwinUNETR(4, 3, feature_size=12, depths=(1, 1, 1, 1)).eval()
    with pytest.raises(UserError, match=match):
        net(torch.randn(shape))


def test_registered_with_model_registry():
    entry = model_entry("swin_unetr")
    assert entry.domain == "brain_seg" and entry.cls is SwinUNETR
    net = create_model("swin_unetr", **entry.tiny).eval()
    with torch.no_grad():
        assert net(entry.example_input()).shape == (1, 3, 64, 64, 64)
    names = [n for n, _ in net.named_modules()]
    import fnmatch

    for kind, globs in SwinUNETR.adapter_targets.items():
        if kind == "conv":
            continue  # layers*c only exist with use_v2
        for g in globs:
            assert fnmatch.filter(names, g), (kind, g)


@pytest.mark.slow
def test_onnx_export_matches_pytorch(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    torch.manual_seed(0)
    net = SwinUNETR(4, 3, feature_size=12, depths=(1, 1, 1, 1)).eval()
    x = torch.randn(1, 4, 64, 64, 64)
    path = tmp_path / "swin_unetr.onnx"
    with torch.no_grad():
        torch.onnx.export(net, (x,), str(path), input_names=["image"], output_names=["logits"],
                          opset_version=17, dynamo=False,
                          dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}})
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for batch in (x, torch.randn(2, 4, 64, 64, 64)):  # the batch axis is dynamic
        with torch.no_grad():
            ref = net(batch).numpy()
        out = sess.run(None, {"image": batch.numpy()})[0]
        assert out.shape == ref.shape
        assert abs(out - ref).max() <= 1e-4
