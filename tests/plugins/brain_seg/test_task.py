"""brain_seg end to end on small phantom data: train → evaluate → predict (NIfTI + PNG) → export, adapters, MONAI weights."""
import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import run_cli

pytest.importorskip("monai")
nib = pytest.importorskip("nibabel")

# `trained`, `run_dir` and `small` (the CLI overrides of a tiny run) are fixtures of conftest.py.


def phantom_cases():
    from sigplex.datasets.nifti import ensure_phantom_dataset

    root = ensure_phantom_dataset(n_cases=5, shape=(64, 64, 64), seed=0)
    return sorted(p for p in root.iterdir() if p.is_dir())


def test_train_writes_a_complete_run(trained):
    run_dir, res = trained
    assert "v1 task contract" not in res.stderr
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["steps"] == 2
    for region in ("tc", "wt", "et"):
        assert 0.0 <= summary["test"][f"dice_{region}"] <= 1.0
        assert f"hd95_{region}" in summary["test"]
    assert (run_dir / "plots" / "curves.png").is_file()
    assert list((run_dir / "plots").glob("*_prediction.png"))
    card = (run_dir / "MODEL_CARD.md").read_text()
    assert "phantom" in card and "Not a medical device" in card


def test_prepared_state_round_trips_and_predict_uses_it(run_dir):
    import sigplex.core as sp

    predictor = sp.load_run(run_dir)
    assert predictor.prepared.train is None
    assert predictor.prepared.state == {"source": "brats2021", "modality_dropout": 0.0, "spacing_mm": [1.0, 1.0, 1.0]}
    result = predictor.predict(phantom_cases()[-1])
    assert result["labels"].shape == (64, 64, 64) and result["labels"].dtype == np.uint8
    assert set(np.unique(result["labels"]).tolist()) <= {0, 1, 2, 4}


def test_evaluate_on_a_single_labelled_case_folder(run_dir):
    res = run_cli("evaluate", "--checkpoint", run_dir, "--data", phantom_cases()[0], "--json")
    assert res.returncode == 0, res.stderr
    metrics = json.loads(res.stdout)
    assert 0.0 <= metrics["dice_mean"] <= 1.0 and "hd95_wt" in metrics


def test_predict_writes_labels_on_the_input_grid(run_dir, tmp_path):
    case = phantom_cases()[-1]
    out = tmp_path / "pred.nii.gz"
    res = run_cli("predict", "--plugin", "brain_seg", "--checkpoint", run_dir, "--input", case, "--output", out)
    assert res.returncode == 0, res.stderr
    ref = nib.load(str(next(case.glob("*_flair.nii.gz"))))
    got = nib.load(str(out))
    assert got.shape == ref.shape
    np.testing.assert_allclose(got.affine, ref.affine)
    assert set(np.unique(np.asarray(got.dataobj)).tolist()) <= {0, 1, 2, 4}
    assert (tmp_path / "pred_overlay.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    stamp = out.stat().st_mtime_ns
    again = run_cli("predict", "--plugin", "brain_seg", "--checkpoint", run_dir, "--input", case, "--output", out)
    assert again.returncode == 0 and out.stat().st_mtime_ns == stamp  # same model, same input: left as it is
    other = run_cli("predict", "--plugin", "brain_seg", "--checkpoint", run_dir, "--input", phantom_cases()[0],
                    "--output", out)
    assert other.returncode == 2 and "already exists" in other.stderr


def test_batch_predict_expands_a_folder_of_case_folders(run_dir, tmp_path):
    cases = phantom_cases()
    out = tmp_path / "preds"
    res = run_cli("predict", "--checkpoint", run_dir, "--input", cases[0].parent, "--output", out)
    assert res.returncode == 0, res.stderr
    assert sorted(p.name for p in out.glob("*.nii.gz")) == sorted(f"{c.name}.nii.gz" for c in cases)
    assert len(list(out.glob("*_overlay.png"))) == len(cases)


def test_inputs_are_one_case_folder_or_one_4d_file(run_dir, tmp_path):
    import sigplex.core as sp

    predictor = sp.load_run(run_dir)
    task, cases = predictor.task, phantom_cases()
    assert task.input_kind == "folder" and task.is_input(cases[0]) and not task.is_input(cases[0].parent)
    assert task.output_files(tmp_path / "a.nii.gz", predictor.prepared) == [tmp_path / "a.nii.gz",
                                                                          tmp_path / "a_overlay.png"]
    assert len(task.output_files(tmp_path / "a.nii.gz", predictor.prepared, source=cases[0])) == 2  # no SEG
    assert task.export_axes(predictor.prepared) == {0: {0: "batch"}}
    with pytest.raises(sp.UserError, match="holds 5 cases"):
        predictor.predict(cases[0].parent)


def test_a_4d_nifti_is_read_in_the_training_sources_channel_order(tmp_path):
    """A model trained on MSD reads a 4D input as FLAIR, T1w, T1gd, T2w; a BraTS-trained one canonically."""
    from sigplex.plugins.brain_seg.config import DataSection
    from sigplex.plugins.brain_seg.inference import read_case

    case = phantom_cases()[0]
    vols = {m: nib.load(str(next(case.glob(f"*_{m}.nii.gz")))) for m in ("t1", "t1ce", "t2", "flair")}
    msd = np.stack([np.asarray(vols[m].dataobj) for m in ("flair", "t1", "t1ce", "t2")], -1).astype(np.float32)
    path = tmp_path / "msd_case.nii.gz"
    nib.save(nib.Nifti1Image(msd, vols["t1"].affine), str(path))
    data = DataSection(roi=(64, 64, 64))
    folder = read_case(case, data, None)["image"]
    torch.testing.assert_close(read_case(path, data, "msd")["image"], folder)
    assert not torch.allclose(read_case(path, data, "brats2021")["image"], folder)
    data_says = DataSection(roi=(64, 64, 64), source="brats2021")  # the config wins over the fitted state
    assert not torch.allclose(read_case(path, data_says, "msd")["image"], folder)


def test_predict_python_api_in_memory(run_dir):
    import sigplex.core as sp

    predictor = sp.load_run(run_dir)
    volume = np.random.default_rng(0).normal(size=(4, 64, 64, 64)).astype(np.float32)
    result = predictor.predict(volume)
    assert result["labels"].shape == (64, 64, 64) and result["labels"].dtype == np.uint8
    with pytest.raises(sp.UserError, match="expected \\[4, H, W, D\\]"):
        predictor.predict(volume[:3])
    with pytest.raises(sp.UserError, match="no reference image"):
        predictor.task.write_prediction(result, Path("unused.nii.gz"), predictor.prepared)


def test_bad_data_is_one_line(tmp_path):
    (tmp_path / "empty").mkdir()
    res = run_cli("train", "--plugin", "brain_seg", "--data", tmp_path / "empty", "--out", tmp_path / "r")
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "empty" in res.stderr and len(res.stderr.strip().splitlines()) == 1
    res = run_cli("train", "--plugin", "brain_seg", "--set", "data.roi=[60,64,64]", "--out", tmp_path / "r2")
    assert res.returncode == 2 and "divisible by 32" in res.stderr


@pytest.mark.parametrize("overrides, match", [
    (["model.num_heads=[3,6,12,7]"], "num_heads\\[3\\]=7 does not divide"),
    (["data.roi=[32,32,32]"], "single voxel at the bottleneck"),
    (["data.val_fraction=0.5", "data.test_fraction=0.5"], "must stay below 1"),
    (["model.out_channels=2"], "model.out_channels"),
    (["model.norm_name=group"], "model.norm_name"),
])
def test_config_refuses_what_the_model_or_data_cannot_use(overrides, match):
    from sigplex.core.config import resolve_config
    from sigplex.core.errors import UserError
    from sigplex.plugins.brain_seg.config import BrainSegConfig

    with pytest.raises(UserError, match=match):
        resolve_config(BrainSegConfig, overrides=overrides)
    resolve_config(BrainSegConfig, overrides=["data.roi=[32,32,64]", "model.norm_name=batch"])  # these are fine


@pytest.mark.slow
def test_lora_adapter_run_stores_only_adapter_weights(run_dir, tmp_path, small):
    from sigplex.core import run as runs
    from sigplex.core.train import checkpoint as ckpt

    out = tmp_path / "lora"
    res = run_cli("train", "--plugin", "brain_seg", "--init-from", run_dir, "--adapter", "lora:r=4",
                  "--max-steps", 1, "--out", out, *small)
    assert res.returncode == 0, res.stderr
    weights, meta = ckpt.load_checkpoint_weights(runs.list_checkpoints(out)[-1])
    assert weights and all(".adapter_lora." in k for k in weights)
    base, _ = ckpt.load_checkpoint_weights(runs.pick_checkpoint(run_dir))
    assert sum(v.numel() for v in weights.values()) < 0.2 * sum(v.numel() for v in base.values())
    import sigplex.core as sp

    predictor = sp.load_run(out)  # base from init_from + adapter
    assert predictor.predict(np.zeros((4, 64, 64, 64), np.float32))["labels"].shape == (64, 64, 64)


@pytest.mark.slow
def test_init_from_monai_weights_and_onnx_export(tmp_path, small):
    from monai.networks.nets import SwinUNETR as MonaiSwinUNETR
    from safetensors.torch import save_file

    torch.manual_seed(0)
    monai_net = MonaiSwinUNETR(in_channels=4, out_channels=3, feature_size=12, depths=(1, 1, 1, 1),
                               num_heads=(3, 3, 3, 3))
    save_file({k: v.contiguous() for k, v in monai_net.state_dict().items()}, str(tmp_path / "monai.safetensors"))
    out = tmp_path / "run"
    res = run_cli("train", "--plugin", "brain_seg", "--init-from", tmp_path / "monai.safetensors", "--max-steps", 1,
                  "--set", "optim.lr=1e-12", "--set", "optim.warmup_steps=0", "--out", out, *small)
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


def coarse_case(case: Path, folder: Path) -> Path:
    """``case`` (image and label files) at 2 mm: every other voxel, voxel centres kept."""
    coarse = folder / case.name
    coarse.mkdir()
    for f in case.glob("*.nii.gz"):
        img = nib.load(str(f))
        affine = img.affine.copy()
        affine[:3, :3] *= 2
        nib.save(nib.Nifti1Image(np.asarray(img.dataobj)[::2, ::2, ::2], affine), str(coarse / f.name))
    return coarse


class BrightIsTumour(torch.nn.Module):
    """A "model" that maps the image itself: a region wherever a channel's normalised value is above 0.5."""

    def forward(self, x):
        return 20 * (x[:, :3] - 0.5)


def test_predict_takes_a_2mm_nifti_to_1mm_and_back(run_dir, tmp_path, monkeypatch):
    """A 2 mm case is predicted on the 1 mm grid and its labels come back onto its own grid."""
    import sigplex.core as sp
    from sigplex.datasets.nifti import channels_to_labels
    from sigplex.plugins.brain_seg import inference

    case = phantom_cases()[-1]
    coarse = coarse_case(case, tmp_path)
    seen = []
    real_infer = inference.infer_volume
    monkeypatch.setattr(inference, "infer_volume", lambda m, image, d: seen.append(image.shape) or real_infer(m, image, d))
    predictor = sp.load_run(run_dir)
    task, prepared = predictor.task, predictor.prepared
    with torch.no_grad():
        result = task.predict(BrightIsTumour(), coarse, prepared)
    assert result["labels"].shape == (32, 32, 32)
    assert all(62 <= n <= 64 for n in seen[-1][1:]), seen     # the model saw the 1 mm grid
    assert result.provenance["resampled"] is True
    assert result.provenance["native_grid"] == {"shape": [32, 32, 32], "spacing_mm": [2.0, 2.0, 2.0]}
    # the same map made directly on the 2 mm grid: the round trip neither moves nor flips it
    image = inference.read_case(coarse, prepared.config.data, "brats2021")["image"].numpy()
    expected = channels_to_labels((image[:3] > 0.5).astype(np.uint8), threshold=0.5)
    wt, wt_expected = result["labels"] > 0, expected > 0
    assert wt_expected.sum() > 500
    dice = 2 * (wt & wt_expected).sum() / (wt.sum() + wt_expected.sum())
    assert dice > 0.9, dice
    with torch.no_grad():                                     # a 1 mm case is predicted on its own grid
        assert task.predict(BrightIsTumour(), case, prepared).provenance == {}
    # a run trained on 2 mm cases works at 2 mm: the 2 mm case stays, the 1 mm one goes to 2 mm
    coarse_run = dataclasses.replace(prepared, state={**prepared.state, "spacing_mm": [2.0, 2.0, 2.0]})
    with torch.no_grad():
        assert task.predict(BrightIsTumour(), coarse, coarse_run).provenance == {}
        fine = task.predict(BrightIsTumour(), case, coarse_run)
    assert fine["labels"].shape == (64, 64, 64) and fine.provenance["model_grid"]["spacing_mm"] == [2.0, 2.0, 2.0]
    assert all(31 <= n <= 33 for n in seen[-1][1:]), seen


def test_training_spacing_is_the_median_voxel_size(tmp_path):
    from sigplex.plugins.brain_seg.native_space import run_spacing, training_spacing

    paths = []
    for i, zooms in enumerate([(1, 1, 1), (0.9, 0.9, 3.0), (1, 1, 5.0)]):
        paths.append(tmp_path / f"{i}.nii.gz")
        nib.save(nib.Nifti1Image(np.zeros((4, 4, 4), np.float32), np.diag([*zooms, 1.0])), str(paths[-1]))
    assert training_spacing(paths) == [1.0, 1.0, 3.0]
    assert training_spacing([]) == [1.0, 1.0, 1.0]
    assert run_spacing({}) == (1.0, 1.0, 1.0) and run_spacing({"spacing_mm": [2, 2, 2]}) == (2.0, 2.0, 2.0)


class NestedRegions(torch.nn.Module):
    """TC, WT, ET from T1ce averaged over 5 voxels a side (so the voxel size matters, as for a CNN),
    at thresholds 2, 0.4, 3: ET within TC within WT, as BraTS labels are."""

    def forward(self, x):
        smooth = torch.nn.functional.avg_pool3d(x[:, 1:2], 5, stride=1, padding=2)
        return 20 * (smooth - torch.tensor([2.0, 0.4, 3.0]).view(1, 3, 1, 1, 1))


def test_evaluate_scores_a_2mm_case_as_predict_labels_it(run_dir, tmp_path):
    from monai.metrics import DiceMetric

    import sigplex.core as sp
    from sigplex.datasets.nifti import labels_to_channels

    coarse = coarse_case(phantom_cases()[0], tmp_path)
    predictor = sp.load_run(run_dir)
    task, prepared = predictor.task, predictor.prepared
    with torch.no_grad():
        metrics = task.evaluate(NestedRegions(), task.evaluation_data(coarse, prepared), prepared)
        labels = task.predict(NestedRegions(), coarse, prepared)["labels"]
    truth = np.asarray(nib.load(str(next(coarse.glob("*_seg.nii.gz")))).dataobj)
    dice = DiceMetric(include_background=True, reduction="mean_batch", ignore_empty=False)
    pred, truth = (torch.as_tensor(labels_to_channels(t, "brats2021"))[None] for t in (labels, truth))
    dice(pred, truth)
    expected = dice.aggregate().tolist()
    assert [metrics[f"dice_{r}"] for r in ("tc", "wt", "et")] == pytest.approx(expected, abs=1e-6)
    assert min(expected) > 0.01                               # regions overlap the truth: a score that can move
