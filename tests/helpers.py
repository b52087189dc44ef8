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


def check_hostile(predictor, tmp_path, cli_args, garbage_name: str, evaluate: int = 12) -> dict:
    """The core's hostile-input harness in-process (predict, serve, ``evaluate`` of the first variants), then
    one subprocess smoke: random bytes named ``garbage_name`` get exit 2 and one ``error:`` line."""
    from sigplex.core.testing import check_hostile_inputs

    report = check_hostile_inputs(predictor, tmp_path / "hostile", [str(a) for a in cli_args], evaluate=evaluate)
    assert report["variants"] >= 25, report
    garbage = tmp_path / "smoke" / garbage_name
    garbage.parent.mkdir(parents=True)
    garbage.write_bytes(os.urandom(4096))
    suffix = (predictor.task.output_suffixes or (".out",))[0]
    out = run_cli("predict", *cli_args, "--input", garbage, "--output", tmp_path / "smoke" / f"out{suffix}")
    lines = [ln for ln in out.stderr.splitlines() if ln.strip() and not ln.startswith(("warning:", "using "))]
    assert out.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), out.stderr
    assert garbage_name in lines[0]
    return report
