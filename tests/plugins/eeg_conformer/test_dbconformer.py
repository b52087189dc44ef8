"""DBConformer: parameter counts (absolute and against braindecode's EEGConformer), shapes, branches."""
import pytest
import torch

pytest.importorskip("mne")

from sigplex.plugins.eeg_conformer import dbconformer as D
from sigplex.plugins.eeg_conformer.dbconformer import DBConformer


def n_params(m):
    return sum(p.numel() for p in m.parameters())


def test_parameter_count_matches_the_paper_size():
    # 22 channels, 2 classes, 4 s at 250 Hz, depth 2 + 2: the paper's ~94k
    m = DBConformer(22, 2, 1000, 250.0)
    assert n_params(m) == 93_987
    assert m.n_tokens == 8  # 1000 samples pooled by 125
    assert abs(n_params(m) - 94_000) / 94_000 < 0.01


def test_depth_is_configurable_per_branch():
    base = n_params(DBConformer(22, 2, 1000, 250.0, temporal_depth=2, spatial_depth=2))
    block = 4 * 40 + (40 * 120 + 120) + (40 * 40 + 40) + (40 * 160 + 160) + (160 * 40 + 40)  # 2 LN, qkv, proj, mlp
    assert n_params(DBConformer(22, 2, 1000, 250.0, temporal_depth=3, spatial_depth=2)) == base + block
    assert n_params(DBConformer(22, 2, 1000, 250.0, temporal_depth=2, spatial_depth=0)) == base - 2 * block
    m = DBConformer(22, 2, 1000, 250.0, temporal_depth=1, spatial_depth=4)
    assert len(m.temporal.blocks) == 1 and len(m.spatial.blocks) == 4


def test_at_most_one_eighth_of_braindecode_eegconformer():
    bd = pytest.importorskip("braindecode.models")
    peer = bd.EEGConformer(n_chans=22, n_outputs=4, n_times=1000, sfreq=250)
    ours = DBConformer(22, 4, 1000, 250.0)
    assert n_params(peer) == 789_572
    assert n_params(ours) * 8 <= n_params(peer)


def test_shapes_channel_weights_and_core_attention_scale():
    torch.manual_seed(0)
    m = DBConformer(6, 3, 200, 100.0, emb_dim=8, heads=2).eval()
    x = torch.randn(5, 6, 200)
    assert m(x).shape == (5, 3)
    assert m.forward_features(x).shape == (5, 16)
    w = m.channel_weights(x)
    assert w.shape == (5, 6)
    torch.testing.assert_close(w.sum(1), torch.ones(5))
    attn = m.temporal.blocks[0].attn
    assert type(attn).__module__ == "sigplex.core.ops.attention" and attn.scale == pytest.approx(8 ** -0.5)
    assert DBConformer(6, 3, 200, 100.0, emb_dim=8, heads=2, attn_scale="head").spatial.blocks[0].attn.scale is None


def test_kernel_and_pool_sizes_follow_sfreq():
    m = DBConformer(4, 2, 512, 128.0)
    assert m.temporal_embed.depthwise.kernel_size == (33,)  # 0.25 s, odd
    assert m.temporal_embed.pool.kernel_size == (64,)       # 0.5 s
    assert m.spatial_embed.conv.kernel_size == (13,) and m.spatial_embed.conv.stride == (3,)
    with pytest.raises(ValueError, match="n_times=40 is shorter than the pooling"):
        DBConformer(4, 2, 40, 128.0)


def test_channels_are_mixed_by_the_spatial_branch_and_order_matters():
    torch.manual_seed(0)
    m = DBConformer(5, 2, 128, 64.0, emb_dim=8, heads=2).eval()
    x = torch.randn(2, 5, 128)
    assert not torch.allclose(m(x), m(x[:, [1, 0, 2, 3, 4]]))  # position embeddings tie tokens to channels


def test_fft_training_path_equals_the_conv_kernel_with_gradients():
    torch.manual_seed(0)
    m = DBConformer(5, 2, 300, 100.0, emb_dim=8, heads=2, dropout=0.0)
    x = torch.randn(3, 5, 300)
    m.train()
    out_fft = m(x)
    out_fft.square().sum().backward()
    g_fft = m.temporal_embed.depthwise.weight.grad.clone()
    m.zero_grad()
    D.FFT_CONV = False
    try:
        out_conv = m(x)
        out_conv.square().sum().backward()
    finally:
        D.FFT_CONV = True
    torch.testing.assert_close(out_fft, out_conv, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(g_fft, m.temporal_embed.depthwise.weight.grad, atol=1e-4, rtol=1e-4)


def test_registering_the_plugin_imports_neither_torch_nor_mne():
    import subprocess
    import sys

    code = ("import sys, sigplex.plugins.eeg_conformer, sigplex.datasets.eeg; "
            "print(sorted(m for m in ('torch', 'mne') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
