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


# --- real DICOM files that ship in packages (tests skip when the package is absent; nothing is downloaded) ---
#: name -> (package, path inside it, what it is). Each is an Enhanced MR Image Storage file from a scanner.
PACKAGED_ENHANCED_MR = {
    "philips_mprage": ("nibabel", "nicom/tests/data/philips_mprage.dcm.gz",
                       "Philips, per-frame functional groups, 176 sagittal frames 256 x 256 (pixels blanked)"),
    "siemens_xa30_mpr": ("heudiconv", "tests/data/MRI_102TD_PHA_S.MR.Chen_Matthews_1.3.1.2022.11.16.15.50.20.357."
                         "31204541.dcm", "Siemens XA30, per-frame functional groups, 3 coronal MPR scout frames"),
    "emri_small": ("data_store", "data/emri_small.dcm",  # the pydicom-data wheel's package
                   "Philips (de-identified), 10 frames 64 x 64, no functional groups (geometry removed)"),
}
#: pip distribution of each package above, for skip messages.
DISTRIBUTIONS = {"nibabel": "nibabel", "heudiconv": "heudiconv==1.5.1", "data_store": "pydicom-data"}


def packaged_file(name: str) -> Path:
    """The path of the packaged file ``name`` (see PACKAGED_ENHANCED_MR), or a pytest skip naming what to install.

    The package is located, not imported (``importlib.util.find_spec``), so its dependencies need not be there.
    """
    from importlib.util import find_spec

    package, relative, _ = PACKAGED_ENHANCED_MR[name]
    spec = find_spec(package)
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    found = [Path(f) / relative for f in folders if (Path(f) / relative).is_file()]
    if not found:
        pytest.skip(f"{name}: {relative} ships in {DISTRIBUTIONS[package]} (pip install --no-deps "
                    f"{DISTRIBUTIONS[package]}); not installed here")
    return found[0]


def read_packaged(name: str):
    """The packaged file ``name`` as a pydicom dataset (``.gz`` files decompressed in memory)."""
    import gzip
    import io

    import pydicom

    path = packaged_file(name)
    data = path.read_bytes()
    return pydicom.dcmread(io.BytesIO(gzip.decompress(data) if path.suffix == ".gz" else data))
