"""brain_seg end to end on small phantom data: train → evaluate → predict (NIfTI + PNG) → export, adapters, MONAI weights."""
import json

import numpy as np
import pytest
import torch
from helpers import run_cli

pytest.importorskip("monai")
nib = pytest.importorskip("nibabel")

SMALL = ["--set", "data.phantom_cases=5", "--set", "data.phantom_shape=[64,64,64]", "--set", "data.roi=[64,64,64]",
         "--set", "model.depths=[1,1,1,1]", "--set", "model.num_heads=[3,3,3,3]", "--set", "trainer.val_every=2",
         "--set", "trainer.checkpoint_every=2", "--set", "data.sw_batch_size=1"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("bs") / "run"
    res = run_cli("train", "--plugin", "brain_seg", "--max-steps", 2, "--out", out, *SMALL)
    assert res.returncode == 0, res.stderr
    return out


def test_train_writes_a_complete_run(run_dir):
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["steps"] == 2
    for region in ("tc", "wt", "et"):
        assert 0.0 <= summary["test"][f"dice_{region}"] <= 1.0
        assert f"hd95_{region}" in summary["test"]
    assert (run_dir / "plots" / "curves.png").is_file()
    assert list((run_dir / "plots").glob("*_prediction.png"))


def test_predict_writes_labels_on_the_input_grid(run_dir, tmp_path):
    from sigplex.datasets.nifti import ensure_phantom_dataset

    root = ensure_phantom_dataset(n_cases=5, shape=(64, 64, 64), seed=0)
    case = sorted(p for p in root.iterdir() if p.is_dir())[-1]
    out = tmp_path / "pred.nii.gz"
    res = run_cli("predict", "--plugin", "brain_seg", "--checkpoint", run_dir, "--input", case, "--output", out)
    assert res.returncode == 0, res.stderr
    ref = nib.load(str(next(case.glob("*_flair.nii.gz"))))
    got = nib.load(str(out))
    assert got.shape == ref.shape
    np.testing.assert_allclose(got.affine, ref.affine)
    assert set(np.unique(np.asarray(got.dataobj)).tolist()) <= {0, 1, 2, 4}
    assert (tmp_path / "pred_overlay.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    again = run_cli("predict", "--plugin", "brain_seg", "--checkpoint", run_dir, "--input", case, "--output", out)
    assert again.returncode == 2 and "already exists" in again.stderr


def test_predict_python_api_in_memory(run_dir):
    import sigplex.core as sp

    predictor = sp.load_run(run_dir)
    volume = np.random.default_rng(0).normal(size=(4, 64, 64, 64)).astype(np.float32)
    result = predictor.predict(volume)
    assert result["labels"].shape == (64, 64, 64) and result["labels"].dtype == np.uint8
    with pytest.raises(sp.UserError, match="expected \\[4, H, W, D\\]"):
        predictor.predict(volume[:3])


def test_bad_data_is_one_line(tmp_path):
    (tmp_path / "empty").mkdir()
    res = run_cli("train", "--plugin", "brain_seg", "--data", tmp_path / "empty", "--out", tmp_path / "r")
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "empty" in res.stderr and len(res.stderr.strip().splitlines()) == 1
    res = run_cli("train", "--plugin", "brain_seg", "--set", "data.roi=[60,64,64]", "--out", tmp_path / "r2")
    assert res.returncode == 2 and "divisible by 32" in res.stderr


@pytest.mark.slow
def test_lora_adapter_run_stores_only_adapter_weights(run_dir, tmp_path):
    from sigplex.core.train import checkpoint as ckpt

    out = tmp_path / "lora"
    res = run_cli("train", "--plugin", "brain_seg", "--init-from", run_dir, "--adapter", "lora:r=4",
                  "--max-steps", 1, "--out", out, *SMALL)
    assert res.returncode == 0, res.stderr
    weights, meta = ckpt.load_checkpoint_weights(ckpt.list_checkpoints(out)[-1])
    assert weights and all(".adapter_lora." in k for k in weights)
    base, _ = ckpt.load_checkpoint_weights(ckpt.pick_checkpoint(run_dir))
    assert sum(v.numel() for v in weights.values()) < 0.2 * sum(v.numel() for v in base.values())
    import sigplex.core as sp

    predictor = sp.load_run(out)  # base from init_from + adapter
    assert predictor.predict(np.zeros((4, 64, 64, 64), np.float32))["labels"].shape == (64, 64, 64)


@pytest.mark.slow
def test_init_from_monai_weights_and_onnx_export(tmp_path):
    from monai.networks.nets import SwinUNETR as MonaiSwinUNETR
    from safetensors.torch import save_file

    torch.manual_seed(0)
    monai_net = MonaiSwinUNETR(in_channels=4, out_channels=3, feature_size=12, depths=(1, 1, 1, 1),
                               num_heads=(3, 3, 3, 3))
    save_file({k: v.contiguous() for k, v in monai_net.state_dict().items()}, str(tmp_path / "monai.safetensors"))
    out = tmp_path / "run"
    res = run_cli("train", "--plugin", "brain_seg", "--init-from", tmp_path / "monai.safetensors", "--max-steps", 1,
                  "--set", "optim.lr=1e-12", "--set", "optim.warmup_steps=0", "--out", out, *SMALL)
    assert res.returncode == 0, res.stderr
    import sigplex.core as sp

    predictor = sp.load_run(out)
    x = torch.randn(1, 4, 64, 64, 64)
    monai_net.eval()
    with torch.no_grad():
        torch.testing.assert_close(predictor.model(x), monai_net(x), atol=1e-4, rtol=1e-4)
    res = run_cli("export", "--plugin", "brain_seg", "--checkpoint", out, "--format", "onnx",
                  "--output", tmp_path / "m.onnx")
    assert res.returncode == 0, res.stderr
    assert float(res.stdout.split("max abs diff vs PyTorch ")[1].rstrip(")\n")) <= 1e-4


@pytest.mark.slow
def test_torchscript_export_matches(run_dir, tmp_path):
    res = run_cli("export", "--plugin", "brain_seg", "--checkpoint", run_dir, "--format", "torchscript",
                  "--output", tmp_path / "m.pt")
    assert res.returncode == 0, res.stderr
    assert float(res.stdout.split("max abs diff vs PyTorch ")[1].rstrip(")\n")) <= 1e-4
    loaded = torch.jit.load(str(tmp_path / "m.pt"))
    assert loaded(torch.zeros(1, 4, 64, 64, 64)).shape == (1, 3, 64, 64, 64)
