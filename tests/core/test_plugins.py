"""Plugin system: hooks, entry points, broken/unavailable plugins, allow/block lists."""
import json
import sys
import textwrap

import pytest
from helpers import ROOT, needs_example, run_cli

from sigplex.core.errors import UserError
from sigplex.core.plugins import HOOK_NAMES, HookSpecs, PluginManager, hookimpl
from sigplex.core.task import TaskSpec


class Good:
    @hookimpl
    def register_tasks(self, register):
        register(TaskSpec("first", "the default", "x:y"))
        register(name="second", description="another", factory="x:z")

    @hookimpl
    def register_adapters(self, register):
        register("ia3", "mypkg.ia3:IA3")


class NeedsMissing:
    @hookimpl
    def register_tasks(self, register):
        register(TaskSpec("t", "needs a module", "x:y", requires=("no_such_module_xyz",), extra="brain"))


class HookRaises:
    @hookimpl
    def register_tasks(self, register):
        raise RuntimeError("boom")


def test_register_and_query_tasks_and_components():
    pm = PluginManager(entry_points=False)
    pm.add_plugin(Good(), "good")
    assert pm.task("good").name == "first"  # the first registered task is the default
    assert pm.task("good", "second").factory == "x:z"
    assert pm.components("adapters")["ia3"].factory == "mypkg.ia3:IA3"
    with pytest.raises(UserError, match="has tasks first, second"):
        pm.task("good", "third")
    with pytest.raises(UserError, match="no such plugin"):
        pm.task("missing")


def test_unavailable_and_broken_plugins_are_isolated():
    pm = PluginManager(entry_points=False)
    pm.add_plugin(NeedsMissing(), "needy")
    pm.add_plugin(HookRaises(), "raiser")
    pm.add_plugin(Good(), "good")
    assert pm.records["needy"].status == "unavailable"
    assert "pip install 'sigplex[brain]'" in pm.records["needy"].reason
    assert pm.records["raiser"].status == "broken" and "boom" in pm.records["raiser"].reason
    assert pm.records["good"].status == "ok"
    with pytest.raises(UserError, match="unavailable.*sigplex\\[brain\\]"):
        pm.task("needy")


def test_hookimpl_may_take_a_subset_of_arguments():
    class NoArgs:
        @hookimpl
        def register_datasets(self):
            pass

    pm = PluginManager(entry_points=False)
    assert pm.add_plugin(NoArgs(), "noargs").status == "ok"


def test_every_hookspec_is_documented_with_its_signature():
    import inspect

    doc = (ROOT / "docs" / "hooks.md").read_text()
    for name in HOOK_NAMES:
        fn = getattr(HookSpecs, name)
        params = [p for p in inspect.signature(fn).parameters if p != "self"]
        ann = fn.__annotations__
        sig = f"{name}(" + ", ".join(f"{p}: {ann[p]}" for p in params) + f") -> {ann['return']}"
        assert sig in doc, f"docs/hooks.md lacks the signature {sig}"
        assert f"## {name}(" in doc, f"docs/hooks.md has no section for {name}"


def _fake_distribution(site, name, module_source):
    (site / f"{name}.py").write_text(textwrap.dedent(module_source))
    dist = site / f"{name}-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(f"[sigplex.plugins]\n{name} = {name}\n")


@pytest.fixture
def broken_site(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    _fake_distribution(site, "broken_plug", "raise RuntimeError('this plugin is broken on purpose')\n")
    return site


def test_broken_plugin_is_listed_and_the_cli_still_works(broken_site):
    env = {"PYTHONPATH": str(broken_site)}
    out = run_cli("plugins", "list", "--json", env=env)
    assert out.returncode == 0, out.stderr
    records = {r["name"]: r for r in json.loads(out.stdout)}
    assert records["broken_plug"]["status"] == "broken"
    assert "broken on purpose" in records["broken_plug"]["reason"]
    bad = run_cli("train", "--plugin", "broken_plug", env=env)
    assert bad.returncode == 2 and "broken" in bad.stderr and "Traceback" not in bad.stderr


@needs_example
def test_broken_plugin_does_not_stop_training_another(broken_site, tmp_path):
    out = run_cli("train", "--plugin", "example", "--max-steps", "3", "--out", tmp_path / "run",
                  "--set", "trainer.val_every=3", env={"PYTHONPATH": str(broken_site)})
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "run" / "metrics.csv").is_file()


@needs_example
def test_allow_and_block_lists(broken_site):
    env = {"PYTHONPATH": str(broken_site), "SIGPLEX_DISABLE_PLUGINS": "broken_plug"}
    records = {r["name"]: r for r in json.loads(run_cli("plugins", "list", "--json", env=env).stdout)}
    assert records["broken_plug"]["status"] == "disabled"
    env = {"PYTHONPATH": str(broken_site), "SIGPLEX_PLUGINS": "broken_plug"}
    records = {r["name"]: r for r in json.loads(run_cli("plugins", "list", "--json", env=env).stdout)}
    assert records["example"]["status"] == "disabled"


def test_listing_plugins_imports_no_torch_or_domain_library():
    code = textwrap.dedent("""
        import sys, json
        from sigplex.core.cli import main
        main(["plugins", "list", "--json"])
        heavy = [m for m in ("torch", "monai", "mne", "torchaudio", "nibabel", "sionna", "pandas") if m in sys.modules]
        print("HEAVY=" + ",".join(heavy))
    """)
    import subprocess

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "HEAVY="
