"""The benchmark harness: every module has ``run(quick)``, and ``all`` writes one table per benchmark."""
import importlib
import inspect

import pytest
from helpers import ROOT


@pytest.fixture
def harness(monkeypatch):
    """``benchmarks`` is not installed (it sits beside the package), so import it from the checkout."""
    monkeypatch.syspath_prepend(str(ROOT))
    return importlib.import_module("benchmarks.__main__")


def test_every_benchmark_module_has_run_quick(harness):
    names = harness.available()
    assert {"ofdm_nmse", "swin_unetr_train", "window_attention_3d"} <= set(names)
    for name in names:
        run = importlib.import_module(f"benchmarks.{name}").run
        assert "quick" in inspect.signature(run).parameters, name


def test_results_table_per_benchmark(harness, tmp_path):
    rows = [dict(bench="mha", ours_s=1.0, peer="torch", peer_s=2.0, ratio=2.0, length=128, note="fwd only"),
            dict(bench="mha", ours_s=1.0, peer="torch", peer_s=1.5, ratio=1.5, length=256, note="fwd only"),
            dict(bench="ofdm_nmse", ours_s=-20.0, peer="ls", peer_s=-15.0, ratio=0.75, snr_db=20)]
    out = tmp_path / "RESULTS.md"
    harness.write_results(rows, out, quick=True)
    text = out.read_text()
    mha = text.split("## mha")[1].split("## ofdm_nmse")[0]
    assert "fwd only" in mha and "| ours_s | peer | peer_s | ratio | length |" in mha and mha.count("| 1.0 | torch") == 2
    assert "| ours_s | peer | peer_s | ratio | snr_db |" in text.split("## ofdm_nmse")[1]


def test_one_benchmark_updates_only_its_own_section(harness, tmp_path):
    out = tmp_path / "RESULTS.md"
    harness.write_results([dict(bench="a", ours_s=1.0, peer="p", peer_s=2.0, ratio=2.0),
                           dict(bench="b", ours_s=1.0, peer="p", peer_s=3.0, ratio=3.0)], out, quick=True)
    harness.write_results([dict(bench="b", ours_s=1.0, peer="p", peer_s=5.0, ratio=5.0)], out, quick=False)
    text = out.read_text()
    assert text.count("## a") == 1 and text.count("## b") == 1
    assert "| 1.0 | p | 2.0 | 2.0 |" in text.split("## b")[0]  # a untouched
    assert "| 1.0 | p | 5.0 | 5.0 |" in text.split("## b")[1] and "3.0 | 3.0" not in text


def test_results_merge_by_configuration_and_cpu(harness, tmp_path, monkeypatch):
    out = tmp_path / "RESULTS.md"
    row = dict(bench="m", ours_s=1.0, peer="p", peer_s=2.0, ratio=2.0)
    harness.write_results([{**row, "length": 128}, {**row, "length": 256}], out, quick=False)
    harness.write_results([{**row, "length": 256, "peer_s": 3.0, "ratio": 3.0}], out, quick=False)
    section = out.read_text().split("## m — ")[1]
    assert "| 1.0 | p | 2.0 | 2.0 | 128 |" in section  # a configuration not re-measured stays
    assert "| 1.0 | p | 3.0 | 3.0 | 256 |" in section and "| 2.0 | 2.0 | 256 |" not in section
    monkeypatch.setattr(harness, "machine_label", lambda: "Other CPU")
    harness.write_results([{**row, "length": 128, "peer_s": 9.0, "ratio": 9.0}], out, quick=False)
    text = out.read_text()
    assert text.count("## m — ") == 2 and "## m — Other CPU" in text  # each CPU keeps its rows
    assert "| 1.0 | p | 2.0 | 2.0 | 128 |" in text.split("## m — Other CPU")[0]
    assert "ISA" in text and "BLAS" in text and "oneDNN" in text


def test_flop_counter_matches_a_hand_count_where_the_dispatcher_misses_convolutions(harness):
    """benchmarks/_flops.py: conv/Linear counted from the shapes each call saw, the rest by FlopCounterMode;
    hand counts of a small net with a Conv3d, a ConvTranspose3d, a Linear, a functional depthwise
    conv2d and an attention product."""
    import torch

    flops = importlib.import_module("benchmarks._flops")

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv3d(2, 4, 3, padding=1, groups=2)
            self.up = torch.nn.ConvTranspose3d(4, 3, 2, stride=2)
            self.fc = torch.nn.Linear(6, 5)

            self.dw = torch.nn.Parameter(torch.randn(3, 1, 1, 5))

        def forward(self, x):
            y = self.up(self.conv(x))                      # [1, 3, 8, 8, 6]
            t = self.fc(y.flatten(2, 3))                   # [1, 3, 64, 5]
            d = torch.nn.functional.conv2d(t.transpose(2, 3), self.dw, groups=3)  # functional: [1, 3, 5, 60]
            return t @ t.transpose(-1, -2) + d.sum()        # [1, 3, 64, 64]

    counts = flops.count_flops(Net(), torch.randn(1, 2, 4, 4, 3))
    conv = 2 * (4 * 4 * 4 * 3) * (2 // 2) * 27          # output elements x in-channels per group x kernel
    up = 2 * (4 * 4 * 4 * 3) * 3 * 8                     # input elements x out-channels x kernel
    dw = 2 * (3 * 5 * 60) * 1 * 5                        # a functional depthwise conv counts too
    fc = 2 * (3 * 64 * 5) * 6
    attn = 2 * 3 * 64 * 64 * 5
    assert counts["flops_conv_hooks"] == conv + up + dw
    assert counts["flops"] == conv + up + dw + fc + attn
    if torch.backends.mkldnn.is_available():  # the op core.backbones.swin calls directly, which FlopCounterMode misses
        w = torch.randn(4, 2, 3, 3, 3)
        direct = flops.count_flops(lambda x: torch.ops.aten.mkldnn_convolution(x, w, None, [1] * 3, [1] * 3, [1] * 3, 1),
                                   torch.randn(1, 2, 4, 4, 3))
        assert direct["flops"] == 2 * (4 * 4 * 4 * 3) * 2 * 27
    # in-place products (mixed_chunk_attention's blocked inference adds with addmm_), which FlopCounterMode skips
    c, m, n = torch.zeros(8, 16), torch.randn(8, 4), torch.randn(4, 16)
    in_place = flops.count_flops(lambda b: (c.addmm_(m, n), b.baddbmm_(b[:, :, :8], b)), torch.zeros(3, 8, 8))
    assert in_place["flops"] == 2 * 8 * 4 * 16 + 2 * 3 * 8 * 8 * 8
    assert flops.matmul_peak_gflops(n=128, repeat=1) > 0


def test_device_check_runs_on_the_cpu_without_cuda_and_says_so(harness):
    import torch

    check = importlib.import_module("benchmarks.device_check")
    device, note = check.pick_device("cuda")
    if not torch.cuda.is_available():
        assert device.type == "cpu" and "no CUDA device" in note
    assert check.amp_precision(torch.device("cpu")) == "bf16"
    assert "device" in inspect.signature(importlib.import_module("benchmarks.swin_unetr_train").run).parameters
