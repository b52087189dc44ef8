"""core.device.cpu_fast_path: the one dispatch between CPU-tuned kernels and the standard PyTorch path.

Its decisions for CUDA and MPS are checked on the function itself (no such hardware here); every
CPU-tuned path is then checked to ask it, by turning it off on this CPU: the standard path runs and
gives the same numbers.
"""
import importlib
import subprocess
import sys
import textwrap

import pytest
import torch
import torch.nn.functional as F

from sigplex.core import device
from sigplex.core.ops import conv as conv_mod
from sigplex.core.ops import norm as norm_mod
from sigplex.core.ops import window_autograd

attention_mod = importlib.import_module("sigplex.core.ops.attention")  # the package re-exports a function by that name


@pytest.mark.parametrize("where, fast", [
    (torch.device("cpu"), True), ("cpu", True), (None, True), (torch.zeros(1), True),
    (torch.device("cuda"), False), (torch.device("cuda", 1), False), ("cuda", False), ("cuda:0", False),
    (torch.device("mps"), False), ("mps", False), (torch.device("meta"), False), ("xpu:0", False),
])
def test_cpu_fast_path_decisions(where, fast):
    assert device.cpu_fast_path(where) is fast


def test_auto_follows_the_device_auto_resolves_to():
    assert device.cpu_fast_path("auto") is (not torch.cuda.is_available())
    assert device.device_type(torch.device("cuda", 2)) == "cuda"


def test_malloc_tuning_is_cpu_only():
    child = textwrap.dedent("""
        import torch
        from sigplex.core.runtime import reuse_freed_memory, reusing_freed_memory
        assert reuse_freed_memory("cuda") is False and reuse_freed_memory(torch.device("mps")) is False
        assert not reusing_freed_memory()
        print("ok")
    """)
    out = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True)
    assert out.stdout.strip() == "ok", out.stderr


def graph_names(t: torch.Tensor) -> set[str]:
    """Names of every autograd node behind ``t``."""
    seen, stack, names = set(), [t.grad_fn], set()
    while stack:
        fn = stack.pop()
        if fn is None or fn in seen:
            continue
        seen.add(fn)
        names.add(type(fn).__name__)
        stack.extend(f for f, _ in fn.next_functions)
    return names


def standard_path(monkeypatch, *modules):
    """What another device would run, on this CPU: the dispatch says no in ``modules``."""
    for module in modules:
        monkeypatch.setattr(module, "cpu_fast_path", lambda _where, _kernel=None, custom_op=False: False)


def run_both(monkeypatch, modules, fn):
    fast = fn()
    with monkeypatch.context() as m:
        standard_path(m, *modules)
        slow = fn()
    return fast, slow


def test_instance_norm_asks_the_dispatch(monkeypatch):
    x = (torch.randn(1, 24, 6, 6, 6, generator=torch.Generator().manual_seed(0)) * 2 + 1)
    x = x.contiguous(memory_format=torch.channels_last_3d)

    def go():
        leaf = x.clone().requires_grad_()
        out = norm_mod.instance_norm(leaf)
        out.mul(torch.linspace(0, 1, out.numel()).view_as(out)).sum().backward()
        return out, leaf.grad, graph_names(out)

    (out, grad, names), (ref, ref_grad, ref_names) = run_both(monkeypatch, [norm_mod], go)
    assert any("ChannelsLastInstanceNorm" in n for n in names)
    assert not any("ChannelsLastInstanceNorm" in n for n in ref_names)
    torch.testing.assert_close(ref, F.instance_norm(x.contiguous()), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(grad, ref_grad, atol=1e-5, rtol=1e-5)


def test_window_attention_backwards_and_bias_gather_ask_the_dispatch(monkeypatch):
    from sigplex.core.ops.window import WindowAttention

    torch.manual_seed(0)
    attn = WindowAttention(dim=12, num_heads=3, window_size=(4, 4, 4), qkv_bias=True)
    x = torch.randn(2, 6, 5, 7, 12)

    def go():
        attn.zero_grad()
        leaf = x.clone().requires_grad_()
        out = attn.forward_grid(leaf, shift_size=(2, 2, 2))
        out.square().mean().backward()
        return out, leaf.grad, attn.relative_position_bias_table.grad.clone(), graph_names(out)

    (out, gx, gt, names), (ref, rgx, rgt, ref_names) = run_both(monkeypatch, [window_autograd], go)
    own = {"GatherRowsBackward", "TableRowsBackward", "BiasedAttentionBackward"}
    assert own <= names
    assert not own & ref_names
    for a, b in ((out, ref), (gx, rgx), (gt, rgt)):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_depth_split_conv_asks_the_dispatch(monkeypatch):
    torch.manual_seed(0)
    conv = torch.nn.Conv3d(4, 8, 3, padding=1)
    x = torch.randn(1, 4, 8, 8, 8)

    def go():
        leaf = x.clone().requires_grad_()
        out = conv_mod.conv_forward(conv, leaf)
        out.square().mean().backward()
        return out, leaf.grad, type(out.grad_fn).__name__

    (out, grad, fn), (ref, ref_grad, ref_fn) = run_both(monkeypatch, [conv_mod], go)
    assert fn != "ConvolutionBackward0" and ref_fn == "ConvolutionBackward0"  # split in two depth halves, or not
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(grad, ref_grad, atol=1e-5, rtol=1e-5)


def test_native_multi_head_attention_asks_the_dispatch(monkeypatch):
    mha = attention_mod.MultiHeadAttention(16, 4).eval()
    x = torch.randn(2, 10, 16)
    with torch.no_grad():
        assert mha._native_ok(x)
        fast = mha(x)
        monkeypatch.setattr(attention_mod, "cpu_fast_path", lambda _where, _kernel=None: False)
        assert not mha._native_ok(x)
        torch.testing.assert_close(fast, mha(x), atol=1e-5, rtol=1e-5)
