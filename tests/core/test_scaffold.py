"""`platform plugins new NAME`: a package that installs, trains, predicts and passes its own test straight away."""
import ast
import subprocess
import sys

import pytest
from helpers import run_cli

from sigplex.core.errors import UserError
from sigplex.core.scaffold import new_plugin

NAME = "scaffoldcheck"  # unlikely to clash with an installed plugin


@pytest.mark.parametrize("name", ["Ecg", "ecg-beats", "2ecg", "_ecg", "class", "", "ecg beats"])
def test_bad_names_are_one_line_user_errors(name, tmp_path):
    with pytest.raises(UserError, match="lowercase Python identifier"):
        new_plugin(name, tmp_path)
    assert not any(tmp_path.iterdir())


def test_refuses_a_non_empty_folder_and_an_installed_name(tmp_path):
    (tmp_path / "sigplex-abc").mkdir()
    (tmp_path / "sigplex-abc" / "keep.txt").write_text("mine")
    with pytest.raises(UserError, match="already exists and is not empty"):
        new_plugin("abc", tmp_path)
    assert (tmp_path / "sigplex-abc" / "keep.txt").read_text() == "mine"
    from importlib.metadata import entry_points

    installed = sorted(ep.name for ep in entry_points(group="sigplex.plugins"))
    if installed:
        with pytest.raises(UserError, match="already installed"):
            new_plugin(installed[0], tmp_path)


def test_writes_a_complete_package_of_valid_python(tmp_path):
    root = new_plugin("my_signals", tmp_path)
    assert root == tmp_path / "sigplex-my-signals"
    files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    assert files == ["README.md", "pyproject.toml", "sigplex_my_signals/__init__.py", "sigplex_my_signals/model.py",
                     "sigplex_my_signals/task.py", "tests/test_my_signals.py"]
    for f in root.rglob("*.py"):
        ast.parse(f.read_text(), filename=str(f))
    toml = (root / "pyproject.toml").read_text()
    assert 'my_signals = "sigplex_my_signals"' in toml and 'name = "sigplex-my-signals"' in toml
    task = (root / "sigplex_my_signals" / "task.py").read_text()
    assert "class MySignalsTask(Task)" in task and '"my_signals_net"' in task
    assert "$" not in "".join(f.read_text() for f in root.rglob("*.py"))  # every placeholder was filled
    # the CLI prints the next command
    out = run_cli("plugins", "new", "other", "--dir", tmp_path)
    assert out.returncode == 0, out.stderr
    assert "pip install -e" in out.stdout and "platform train --plugin other --max-steps 20" in out.stdout
    out = run_cli("plugins", "new", "Other", "--dir", tmp_path)
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_installs_trains_predicts_and_passes_its_own_test(tmp_path):
    root = new_plugin(NAME, tmp_path)
    pip = [sys.executable, "-m", "pip"]
    installed = subprocess.run([*pip, "install", "--no-deps", "--no-build-isolation", "-e", str(root)],
                               capture_output=True, text=True, timeout=600)
    try:
        assert installed.returncode == 0, installed.stderr
        run = tmp_path / "run"
        out = run_cli("train", "--plugin", NAME, "--max-steps", 20, "--out", run)
        assert out.returncode == 0, out.stderr
        assert "v1 task contract" not in out.stderr
        assert "val: accuracy" in out.stdout
        for f in ("prepared.json", "prepared.safetensors", "MODEL_CARD.md", "plots/predicted.png"):
            assert (run / f).is_file(), f

        import numpy as np

        np.save(tmp_path / "x.npy", np.sin(np.arange(256) / 3).reshape(2, 128).astype(np.float32))
        out = run_cli("predict", "--checkpoint", run, "--input", tmp_path / "x.npy", "--output", tmp_path / "y.csv")
        assert out.returncode == 0, out.stderr
        assert (tmp_path / "y.csv").read_text().splitlines()[0] == "signal,class,p_slow,p_fast"
        (tmp_path / "bad.npy").write_text("not an array")
        out = run_cli("predict", "--checkpoint", run, "--input", tmp_path / "bad.npy", "--output", tmp_path / "z.csv")
        assert out.returncode == 2 and "expected a .npy array" in out.stderr

        test = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(root / "tests")],
                              capture_output=True, text=True, cwd=root, timeout=600)
        assert test.returncode == 0, test.stdout[-3000:] + test.stderr[-2000:]
        assert "1 passed" in test.stdout
    finally:
        subprocess.run([*pip, "uninstall", "-y", f"sigplex-{NAME}"], capture_output=True, text=True, timeout=300)
