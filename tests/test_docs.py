"""Docs: every ```python block in docs/ runs; every plugin and CLI command has a page."""
import re

import pytest
from helpers import ROOT, example_plugin_installed

DOCS = ROOT / "docs"
BLOCK = re.compile(r"```python\n(.*?)```", re.S)


def python_blocks():
    for page in sorted(DOCS.rglob("*.md")):
        for i, block in enumerate(BLOCK.findall(page.read_text())):
            yield pytest.param(block, id=f"{page.relative_to(DOCS)}#{i}")


@pytest.mark.parametrize("code", list(python_blocks()))
def test_doc_example_runs(code, tmp_path, monkeypatch):
    if "sp.fit(\"example\"" in code and not example_plugin_installed():
        pytest.skip("example plugin not installed")
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "<doc>", "exec"), {"__name__": "__doc_example__"})


def test_every_builtin_plugin_and_command_has_a_page():
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    for name in project["project"].get("entry-points", {}).get("sigplex.plugins", {}):
        assert (DOCS / "plugins" / f"{name}.md").is_file(), f"docs/plugins/{name}.md is missing"
    cli = (DOCS / "cli.md").read_text()
    for command in ("plugins list", "plugins new", "train", "evaluate", "predict", "export", "serve", "card"):
        assert f"platform {command}" in cli
    nav = (ROOT / "mkdocs.yml").read_text()
    for page in DOCS.rglob("*.md"):
        assert str(page.relative_to(DOCS)) in nav, f"{page.name} is not in mkdocs.yml nav"
