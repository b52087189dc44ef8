"""Helpers shared by tests: run the CLI in a subprocess, skip when the example plugin is absent."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args, env=None, cwd=None, timeout=600) -> subprocess.CompletedProcess:
    """Run ``python -m sigplex.core.cli ARGS`` in a subprocess and capture its output."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "sigplex.core.cli", *map(str, args)], capture_output=True,
                          text=True, env=full_env, cwd=cwd, timeout=timeout)


def example_plugin_installed() -> bool:
    from importlib.metadata import entry_points

    return any(ep.name == "example" for ep in entry_points(group="sigplex.plugins"))


needs_example = pytest.mark.skipif(not example_plugin_installed(),
                                   reason="pip install examples/sigplex-example-plugin (tox does)")
