"""Adapter runs reload as the model training scored: norms, buffers, every adapter kind, every engine.

The plugin (tests/norm_task.py) has BatchNorm, GroupNorm, LayerNorm or a custom running-mean
buffer. Base runs train on unshifted signals; adapter runs fine-tune on signals shifted by 2,
so a norm whose statistics followed the new data would drift far from the base's.
"""
import asyncio
import json

import numpy as np
import pytest
import torch

import sigplex.core as sp
from sigplex.core import run as runs
from sigplex.core.api import load_run
from sigplex.core.plugins import PluginManager
from sigplex.core.train import checkpoint as ckpt
from sigplex.core.train.callbacks import Callback

NORMS = ["batch", "group", "layer", "buffer"]
KINDS = {"lora": "lora:r=2", "bottleneck": "bottleneck:dim=4", "conv": "conv:dim=4"}
SHIFTED = {"data.shift": 2.0, "data.seed": 1}
PROBE = torch.from_numpy(np.random.default_rng(5).normal(2.0, 1.0, (6, 1, 32)).astype(np.float32))


@pytest.fixture(scope="module")
def pm():
    import norm_task

    manager = PluginManager(entry_points=False)
    assert manager.add_plugin(norm_task, name="norms").status == "ok"
    return manager


@pytest.fixture(scope="module")
def bases(pm, tmp_path_factory):
    root = tmp_path_factory.mktemp("bases")
    return {norm: sp.fit("norms", pm=pm, overrides={"model.norm": norm}, out=root / norm) for norm in NORMS}


class ScoredModel(Callback):
    """Keeps the logits of the model training scored (best weights loaded, eval mode) on PROBE."""

    def on_fit_end(self, trainer, summary):
        trainer.model.eval()
        with torch.no_grad():
            self.logits = trainer.model(PROBE).numpy()
        self.state = {k: v.clone() for k, v in trainer.model.state_dict().items()}


def adapter_run(pm, base, out, spec, **overrides):
    scored = ScoredModel()
    run = sp.fit("norms", pm=pm, adapter=spec, init_from=base, overrides={**SHIFTED, **overrides}, out=out,
                 callbacks=[scored])
    return run, scored


def assert_same_metrics(summary: dict, evaluated: dict):
    assert set(summary) == set(evaluated)
    for name, value in summary.items():
        assert evaluated[name] == pytest.approx(value, rel=1e-6, abs=1e-6), name


@pytest.mark.parametrize("norm", NORMS)
@pytest.mark.parametrize("kind", list(KINDS))
def test_reloaded_adapter_run_is_the_scored_model(pm, bases, tmp_path, norm, kind):
    run, scored = adapter_run(pm, bases[norm], tmp_path / "run", KINDS[kind], **{"model.norm": norm})
    summary = json.loads((run.path / "summary.json").read_text())
    predictor = load_run(run, pm=pm)
    assert_same_metrics(summary["test"], predictor.evaluate())
    np.testing.assert_allclose(predictor.predict(PROBE.numpy()), scored.logits, rtol=0, atol=1e-6)
    reloaded = predictor.model.state_dict()
    assert set(reloaded) == set(scored.state)
    for key, value in scored.state.items():
        assert torch.equal(reloaded[key], value), key
    base = load_run(bases[norm], pm=pm).model.state_dict()
    if norm == "batch":  # the default rule: the base's statistics are kept
        assert torch.equal(reloaded["n1.running_mean"], base["n1.running_mean"])
        assert int(reloaded["n1.num_batches_tracked"]) == int(base["n1.num_batches_tracked"])
    if norm == "buffer":  # a buffer that training moved is saved with the adapters
        assert not torch.equal(reloaded["n1.mean"], base["n1.mean"])
    merged = load_run(run, pm=pm, merge=True)
    np.testing.assert_allclose(merged.predict(PROBE.numpy()), scored.logits, rtol=0, atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("kind", list(KINDS))
def test_serve_and_onnx_agree_with_the_scored_model(pm, bases, tmp_path, kind):
    pytest.importorskip("onnxruntime")
    httpx = pytest.importorskip("httpx")
    from sigplex.core.serve import create_app

    run, scored = adapter_run(pm, bases["batch"], tmp_path / "run", KINDS[kind])
    onnx = load_run(run, pm=pm, engine="onnxruntime")
    np.testing.assert_allclose(onnx.predict(PROBE.numpy()), scored.logits, rtol=0, atol=1e-4)
    app = create_app(load_run(run, pm=pm))

    async def ask():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.post("/predict", json={"inputs": PROBE.numpy().tolist()})

    answer = asyncio.run(ask())
    assert answer.status_code == 200, answer.text
    np.testing.assert_allclose(np.array(answer.json()["prediction"]), scored.logits, rtol=0, atol=1e-5)


def test_train_norms_trains_and_saves_the_norms(pm, bases, tmp_path):
    run, scored = adapter_run(pm, bases["batch"], tmp_path / "run", KINDS["lora"], **{"adapter.train_norms": True})
    tensors, meta = ckpt.load_checkpoint_weights(runs.pick_checkpoint(run.path))
    saved = set(tensors)
    assert meta["adapter_norms"] == "train"
    assert {"n1.weight", "n1.bias", "n1.running_mean", "n1.running_var", "n2.weight"} <= saved
    assert not {"c1.weight", "head.weight"} & saved
    predictor = load_run(run, pm=pm)
    assert predictor.model.n1.weight.requires_grad and not predictor.model.c1.weight.requires_grad
    base = load_run(bases["batch"], pm=pm).model
    assert not torch.equal(predictor.model.n1.weight, base.n1.weight)
    assert not torch.equal(predictor.model.n1.running_mean, base.n1.running_mean)
    summary = json.loads((run.path / "summary.json").read_text())
    assert_same_metrics(summary["test"], predictor.evaluate())
    np.testing.assert_allclose(predictor.predict(PROBE.numpy()), scored.logits, rtol=0, atol=1e-6)
    merged = load_run(run, pm=pm, merge=True)
    np.testing.assert_allclose(merged.predict(PROBE.numpy()), scored.logits, rtol=0, atol=1e-5)


@pytest.mark.parametrize(("norm", "settings"), [("batch", {"adapter.train_norms": True}), ("buffer", {})])
def test_resume_is_bitwise_exact(pm, bases, tmp_path, norm, settings):
    overrides = {"model.norm": norm, **settings}
    straight, _ = adapter_run(pm, bases[norm], tmp_path / "straight", "lora:r=2;conv:dim=4", **overrides)
    adapter_run(pm, bases[norm], tmp_path / "halves", "lora:r=2;conv:dim=4", **overrides,
                **{"trainer.max_steps": 10})
    sp.fit(None, pm=pm, resume=tmp_path / "halves", max_steps=20)
    a, _ = ckpt.load_checkpoint_weights(runs.pick_checkpoint(straight.path))
    b, _ = ckpt.load_checkpoint_weights(runs.pick_checkpoint(tmp_path / "halves"))
    assert set(a) == set(b) and any(not k.startswith(("c1.adapter", "c2.adapter", "head.adapter")) for k in a)
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_distilled_adapter_student_reloads_as_scored(pm, bases, tmp_path):
    scored = ScoredModel()
    run = sp.fit("norms", pm=pm, adapter="lora:r=2", init_from=bases["batch"], distill_from=bases["batch"],
                 overrides=SHIFTED, out=tmp_path / "student", callbacks=[scored])
    predictor = load_run(run, pm=pm)
    assert_same_metrics(json.loads((run.path / "summary.json").read_text())["test"], predictor.evaluate())
    np.testing.assert_allclose(predictor.predict(PROBE.numpy()), scored.logits, rtol=0, atol=1e-6)


def test_an_old_adapter_run_loads_with_one_warning(pm, bases, tmp_path):
    """Runs saved as sigplex-adapter/1 hold adapter tensors only: they load, with a warning naming the loss."""
    run, _ = adapter_run(pm, bases["batch"], tmp_path / "old", KINDS["lora"])
    for path in runs.list_checkpoints(run.path):  # rewritten as this version's predecessor wrote them
        tensors, meta = ckpt.load_checkpoint_weights(path)
        for key in ("adapter_norms", "adapter_base_keys"):
            meta.pop(key)
        meta["adapter_format"] = "sigplex-adapter/1"
        step = json.loads((path / "meta.json").read_text())["step"]
        runs.save_checkpoint(run.path, step, tensors, ckpt.load_state(path), metadata=meta)
    with pytest.warns(UserWarning, match="saved before adapter runs kept their norm statistics") as caught:
        predictor = load_run(run, pm=pm)
    assert len([w for w in caught if "norm statistics" in str(w.message)]) == 1
    assert predictor.predict(PROBE.numpy()).shape == (6, 2)
