"""The python snippets in docs/adapters.md run."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[3] / "docs" / "adapters.md"
BLOCKS = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S) if DOC.exists() else []


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_doc_snippet_runs(index):
    exec(compile(BLOCKS[index], f"{DOC}:python-block-{index}", "exec"), {})


def test_doc_has_snippets():
    assert len(BLOCKS) >= 3
