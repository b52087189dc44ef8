"""Hostile inputs: how fast bombs are refused and how much memory the refusal takes.

For each bomb, a fresh process loads the model, predicts a valid sample (its peak resident memory
is the model's own footprint), then is handed the bomb. Reported: the refusal time (``ours_s``,
goal < 5 s) and the peak resident memory against ``limit + 1.2 x footprint`` (goal: within). The
bombs, at the default input limit of 2048 MB:

* ofdm_chest (shipped weights): an ``.npz`` whose member expands to 2 GB + 8 MB of zeros (about
  2 MB compressed), and one whose NPY header declares twice the limit;
* brain_seg (a short run): a case folder whose FLAIR ``.nii.gz`` expands past the limit, and one
  whose header declares a volume of twice the limit;
* eeg_conformer (a short run): a ``.fif.gz`` gzip bomb.

``peer_s`` is the time to predict the valid sample (ratio = valid / refusal).
"""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_CHILD = r"""
import json, sys, time
from pathlib import Path
from sigplex.core.errors import UserError
from sigplex.core.loading import load_predictor

def hwm():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024

args = json.loads(sys.argv[1])
predictor = load_predictor(args["run"], plugin=args["plugin"])
t0 = time.perf_counter()
predictor.predict(args["valid"])
valid_s = time.perf_counter() - t0
footprint = hwm()
t0 = time.perf_counter()
try:
    predictor.predict(args["bomb"])
    message = None
except UserError as exc:
    message = str(exc)
print(json.dumps({"valid_s": valid_s, "refusal_s": time.perf_counter() - t0, "footprint_mb": footprint,
                  "peak_mb": hwm(), "message": message}))
"""


def _measure(run: str | None, plugin: str | None, valid: Path, bomb: Path) -> dict:
    args = json.dumps({"run": run, "plugin": plugin, "valid": str(valid), "bomb": str(bomb)})
    out = subprocess.run([sys.executable, "-c", _CHILD, args], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _train(plugin: str, out: Path, overrides: list[str]) -> None:
    cmd = [sys.executable, "-m", "sigplex.core.cli", "train", "--plugin", plugin, "--out", str(out), *overrides]
    subprocess.run(cmd, check=True, capture_output=True)


def _bombs(folder: Path) -> list[tuple[str, str | None, str | None, Path, Path]]:
    """(name, run, plugin, valid sample, bomb) for each case."""
    from sigplex.core.loading import load_predictor
    from sigplex.core.testing import hostile_inputs

    cases = []
    ofdm = load_predictor(None, plugin="ofdm_chest")
    found = {v.name: v for v in hostile_inputs(ofdm.task, ofdm.prepared, folder / "ofdm")}
    valid = found["valid"].path
    cases += [("ofdm_chest npz deflate bomb", None, "ofdm_chest", valid, found["npz:h:bomb"].path),
              ("ofdm_chest npz declares 2x limit", None, "ofdm_chest", valid, found["npz:h:declares-over-limit"].path)]
    brain = folder / "brain_run"
    _train("brain_seg", brain, ["--max-steps", "2", "--set", "data.phantom_cases=5", "--set",
                                "data.phantom_shape=[64,64,64]", "--set", "data.roi=[64,64,64]",
                                "--set", "trainer.val_every=2"])
    predictor = load_predictor(str(brain))
    found = {v.name: v for v in hostile_inputs(predictor.task, predictor.prepared, folder / "brain")}
    flair = next(n for n in found if n.endswith("_flair.nii.gz:nifti:gz-bomb"))
    huge = next(n for n in found if n.endswith("_flair.nii.gz:nifti:declares-over-limit"))
    cases += [("brain_seg .nii.gz bomb in a case", str(brain), None, found["valid"].path, found[flair].path),
              ("brain_seg NIfTI declares 2x limit", str(brain), None, found["valid"].path, found[huge].path)]
    eeg = folder / "eeg_run"
    _train("eeg_conformer", eeg, ["--max-steps", "4", "--set", "trainer.val_every=4"])
    predictor = load_predictor(str(eeg))
    found = {v.name: v for v in hostile_inputs(predictor.task, predictor.prepared, folder / "eeg")}
    bombs = [v for v in found.values() if v.name == "gzip:bomb"]
    valid = next(v.path for v in found.values() if v.valid and v.path.name.endswith(".gz"))
    cases.append(("eeg_conformer .fif.gz bomb", str(eeg), None, valid, bombs[0].path))
    return cases


def run(quick: bool = False) -> list[dict]:
    from benchmarks._timing import row
    from sigplex.core.limits import DEFAULT_MAX_INPUT_MB

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, run_dir, plugin, valid, bomb in _bombs(Path(tmp)):
            t0 = time.perf_counter()
            r = _measure(run_dir, plugin, valid, bomb)
            budget = DEFAULT_MAX_INPUT_MB + 1.2 * r["footprint_mb"]
            rows.append(row("hostile_inputs", r["refusal_s"], "valid predict", r["valid_s"], case=name,
                            refused=r["message"] is not None and "--max-input-mb" in r["message"],
                            peak_rss_mb=round(r["peak_mb"]), footprint_mb=round(r["footprint_mb"]),
                            within_limit_plus_1_2x_footprint=r["peak_mb"] <= budget, bomb_file_mb=round(
                                bomb.stat().st_size / 2**20, 2) if bomb.is_file() else None,
                            wall_s=round(time.perf_counter() - t0, 1)))
    return rows


if __name__ == "__main__":  # pragma: no cover
    for r in run(quick=True):
        print(r)
