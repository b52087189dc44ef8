"""Config: defaults, YAML, presets, dotted overrides, and one-line errors."""
import pytest
from pydantic import Field

from sigplex.core.config import Section, TaskConfig, parse_override, resolve_config
from sigplex.core.errors import UserError


class ModelSection(Section):
    width: int = Field(8, ge=1)
    name: str = "a"


class MyConfig(TaskConfig):
    model: ModelSection = Field(default_factory=ModelSection)


def test_defaults_base_preset_yaml_and_overrides_stack(tmp_path):
    yml = tmp_path / "c.yaml"
    yml.write_text("model:\n  width: 32\ntrainer:\n  batch_size: 4\n")
    cfg = resolve_config(MyConfig, base={"model": {"width": 16}}, config=yml, overrides=["model.name=b"])
    assert (cfg.model.width, cfg.model.name, cfg.trainer.batch_size) == (32, "b", 4)
    assert cfg.trainer.eval_batch == 4  # follows batch_size unless set
    cfg = resolve_config(MyConfig, config="big", presets={"big": {"model": {"width": 64}}})
    assert cfg.model.width == 64


def test_override_values_are_typed():
    assert parse_override("optim.betas=[0.8, 0.9]") == (["optim", "betas"], [0.8, 0.9])
    assert parse_override("trainer.max_epochs=null") == (["trainer", "max_epochs"], None)
    assert parse_override("model.name=tsmixer") == (["model", "name"], "tsmixer")


@pytest.mark.parametrize("override, needle", [
    ("model.widht=3", "model.widht: unknown key"),
    ("model.width=0", "model.width: Input should be greater than or equal to 1"),
    ("trainer.precision=fp8", "trainer.precision"),
    ("nonsense", "expected KEY=VALUE"),
])
def test_bad_overrides_give_one_line(override, needle):
    with pytest.raises(UserError) as err:
        resolve_config(MyConfig, overrides=[override])
    assert needle in str(err.value)
    assert "\n" not in str(err.value)


def test_yaml_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: [unclosed\n")
    with pytest.raises(UserError, match="bad.yaml.*not valid YAML"):
        resolve_config(MyConfig, config=bad)
    typo = tmp_path / "typo.yaml"
    typo.write_text("modle:\n  width: 3\n")
    with pytest.raises(UserError, match="typo.yaml: modle: unknown key"):
        resolve_config(MyConfig, config=typo)
    with pytest.raises(UserError, match="not a YAML file nor a preset"):
        resolve_config(MyConfig, config="nope", presets={"a": {}})


def test_partial_section_override_keeps_the_task_defaults():
    from sigplex.core.config import TrainerConfig

    class Cfg(TaskConfig):
        trainer: TrainerConfig = Field(default_factory=lambda: TrainerConfig(batch_size=1, max_steps=7))

    cfg = resolve_config(Cfg, overrides=["trainer.val_every=2"])
    assert (cfg.trainer.batch_size, cfg.trainer.max_steps, cfg.trainer.val_every) == (1, 7, 2)
