"""The long-sequence mixer blocks (S4D, Mamba, GLA, DeltaNet): manual composition, streaming, LoRA, ONNX export."""
import pytest
import torch
import torch.nn.functional as F
from mixer_reference import naive_delta_rule, naive_gla, naive_s4d, naive_selective_scan, rel_err

from sigplex.core.adapters import apply_adapter, merge_adapters, trainable_parameters
from sigplex.core.blocks import DeltaNetBlock, GLABlock, MambaBlock, S4DBlock


def rand(*shape, seed=0, dtype=torch.float64):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def s4d_block():
    torch.manual_seed(0)
    return S4DBlock(6, state_dim=4).double()


def mamba_block():
    torch.manual_seed(0)
    return MambaBlock(6, state_dim=3, expand=2, conv_kernel=3, chunk_size=4).double()


def gla_block():
    torch.manual_seed(0)
    return GLABlock(6, heads=2, gate_rank=3, chunk_size=4).double()


def delta_net_block():
    torch.manual_seed(0)
    return DeltaNetBlock(6, heads=2, chunk_size=4).double()


BLOCKS = {"s4d": s4d_block, "mamba": mamba_block, "gla": gla_block, "delta_net": delta_net_block}


def heads(t):
    return t.unflatten(-1, (2, 3)).transpose(1, 2)


def test_gla_and_delta_net_blocks_are_their_manual_recurrent_compositions():
    x = rand(2, 11, 6)
    block = gla_block()
    h = block.norm(x)
    log_g = F.logsigmoid(block.gk_up(block.gk_down(h))) / 16
    o, _ = naive_gla(heads(block.q_proj(h)), heads(block.k_proj(h)), heads(block.v_proj(h)), heads(log_g))
    o = F.layer_norm(o, (3,)).transpose(1, 2).flatten(-2)
    assert rel_err(block(x), x + block.out_proj(o * F.silu(block.g_proj(h)))) < 1e-6
    block = delta_net_block()
    h = block.norm(x)
    q, k = (F.normalize(heads(F.silu(p(h))), dim=-1) for p in (block.q_proj, block.k_proj))
    o, _ = naive_delta_rule(q, k, heads(block.v_proj(h)), torch.sigmoid(block.b_proj(h)).transpose(1, 2))
    assert rel_err(block(x), x + block.out_proj(F.layer_norm(o, (3,)).transpose(1, 2).flatten(-2))) < 1e-6


def test_s4d_block_is_its_manual_recurrent_composition():
    block, x = s4d_block(), rand(2, 17, 6)
    h = block.in_proj(block.norm(x)).transpose(1, 2)
    h = F.gelu(naive_s4d(h, block.log_dt, block.log_a_real, block.a_imag, block.c, block.d))
    expected = x + F.glu(block.out_proj(h.transpose(1, 2)), dim=-1)
    assert rel_err(block(x), expected) < 1e-6


def test_mamba_block_is_its_manual_recurrent_composition():
    block, x = mamba_block(), rand(2, 13, 6)
    xs, z = block.in_proj(block.norm(x)).chunk(2, -1)
    xs = F.silu(F.conv1d(F.pad(xs.transpose(1, 2), (2, 0)), block.conv.weight, block.conv.bias, groups=12))
    dt, b, c = block.x_proj(xs.transpose(1, 2)).split((1, 3, 3), -1)
    y, _ = naive_selective_scan(xs, block.dt_proj(dt).transpose(1, 2), -torch.exp(block.a_log), b.transpose(1, 2),
                                c.transpose(1, 2), block.d, z.transpose(1, 2), delta_softplus=True)
    assert rel_err(block(x), x + block.out_proj(y.transpose(1, 2))) < 1e-6


def test_mamba_block_streaming_equals_the_full_pass():
    block, x = mamba_block(), rand(2, 21, 6)
    full = block(x)
    y, state = block(x[:, :2], return_state=True)  # shorter than the conv's memory
    outs = [y]
    y, state = block(x[:, 2:10], state, return_state=True)
    outs.append(y)
    for t in range(10, 21):
        y_t, state = block.step(x[:, t], state)
        outs.append(y_t[:, None])
    assert rel_err(torch.cat(outs, 1), full) < 1e-6
    first, _ = block.step(x[:, 0])  # from no state at all
    assert rel_err(first, full[:, 0]) < 1e-6


@pytest.mark.parametrize("name", list(BLOCKS))
def test_blocks_are_causal_and_train(name):
    block, x = BLOCKS[name](), rand(1, 25, 6)
    x2 = x.clone()
    x2[:, 12:] += 1.0
    assert (block(x2)[:, :12] - block(x)[:, :12]).abs().max() < 1e-12
    block(x).square().mean().backward()
    for pname, p in block.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, pname


@pytest.mark.parametrize("name", list(BLOCKS))
def test_lora_on_the_projections(name):
    block, x = BLOCKS[name]().float(), rand(2, 11, 6, dtype=torch.float32)
    with torch.no_grad():
        y0 = block(x)
    report = apply_adapter(block, "lora:r=2")
    targets = {n.rsplit(".", 1)[0] for n, _ in block.named_parameters() if ".adapter_" in n}
    assert {t.split(".")[0] for t in targets} == {p[2:] for p in block.adapter_targets["lora"]}
    assert report.trainable == sum(p.numel() for p in trainable_parameters(block))
    with torch.no_grad():
        torch.testing.assert_close(block(x), y0)  # LoRA starts as a no-op
        for pname, p in block.named_parameters():
            if ".adapter_" in pname:
                p.normal_(std=0.1, generator=torch.Generator().manual_seed(1))
        y = block(x)
        assert (y - y0).abs().max() > 1e-3
        merge_adapters(block)
        torch.testing.assert_close(block(x), y, atol=1e-5, rtol=1e-5)
    assert not any(".adapter_" in k for k in block.state_dict())


@pytest.mark.parametrize("name", list(BLOCKS))
def test_onnx_export_at_a_fixed_length_matches_onnxruntime(name, tmp_path):
    pytest.importorskip("onnxruntime")
    from sigplex.core.exporter import export_model

    block = BLOCKS[name]().float().eval()
    res = export_model(block, torch.randn(2, 40, 6), format="onnx", output=tmp_path / "m.onnx", dynamic_axes={})
    assert res["max_abs_diff"] <= 1e-4, res


@pytest.mark.parametrize("name", list(BLOCKS))
def test_blocks_trace_as_one_graph_without_breaks(name):
    """Under torch.compile the mixers take their plain forms: Dynamo sees one graph (train mode)."""
    block, x = BLOCKS[name]().train(), rand(2, 37, 6)
    explained = torch._dynamo.explain(block)(x)
    assert explained.graph_count == 1 and explained.graph_break_count == 0, explained.break_reasons
    torch._dynamo.reset()
    captured = torch.compile(block, backend="eager", fullgraph=True)(x)  # the plain forms, run as captured
    assert rel_err(captured, block(x)) < 1e-6
