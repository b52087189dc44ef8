"""The Task's optional members work on their defaults: the name from the TaskSpec, the example input
from a held-out item (also for a loaded run, which keeps no data), weights loaded strictly."""
import pytest
import torch

import sigplex.core as sp
from sigplex.core.plugins import PluginManager
from sigplex.core.task import Prepared, Task


@pytest.fixture(scope="module")
def pm():
    import norm_task

    manager = PluginManager(entry_points=False)
    assert manager.add_plugin(norm_task, name="norms").status == "ok"
    return manager


def test_the_name_comes_from_the_spec_and_the_example_from_held_out_data(pm):
    _, task, cfg = sp.load_task("norms", "defaults", pm=pm)
    assert task.name == "defaults"
    prepared = task.build_data(cfg, None)
    example = task.example_input(prepared)
    assert torch.equal(example, prepared.test[0][0][None])
    assert prepared.held_out() is prepared.test
    assert Prepared(config=cfg, val=prepared.val).held_out() is prepared.val
    with pytest.raises(sp.UserError, match="no held-out data.*declare example_input"):
        task.example_input(Prepared(config=cfg))


def test_a_loaded_run_exports_with_the_default_example(pm, tmp_path):
    pytest.importorskip("onnxruntime")
    run = sp.fit("norms", task="defaults", pm=pm, max_steps=5, out=tmp_path / "run")
    result = sp.export(run, format="onnx", output=tmp_path / "m.onnx", pm=pm)
    assert result["max_abs_diff"] < 1e-4


def test_default_load_weights_is_strict():
    task, model = Task(), torch.nn.Linear(2, 2)
    with pytest.raises(sp.UserError, match="w.pt: weights do not fit the model"):
        task.load_weights(model, {"weight": torch.zeros(2, 2)}, source="w.pt")


def test_init_from_with_other_model_settings_names_the_fix(pm, tmp_path):
    base = sp.fit("norms", pm=pm, max_steps=2, out=tmp_path / "base")
    with pytest.raises(sp.UserError, match=r"weights do not fit the model: size mismatch for .*--init-from carries "
                                           r"the weights only.*--set model\.KEY=VALUE"):
        sp.fit("norms", pm=pm, max_steps=2, init_from=base, overrides={"model.width": 4}, out=tmp_path / "wide")
    assert not (tmp_path / "wide").exists()
