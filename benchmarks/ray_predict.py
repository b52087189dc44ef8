"""Batch prediction throughput: 2 Ray workers x 1 thread against 1 process x 2 threads, same inputs, same run.

ofdm_chest's shipped model on N ``.npz`` inputs of 64 resource grids each (N = 200, 60 with ``--quick``).
Each side is a fresh ``platform predict`` command into its own folder, so both include starting up
and loading the model (the Ray side also starts a local Ray instance and its two actors); the rows
give the whole command and inputs per second. ``ours_s`` is the Ray command's time, ``peer_s`` the
single process's (ratio > 1: Ray is faster). Outputs are checked identical.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _inputs(folder: Path, n: int) -> None:
    import numpy as np

    from sigplex.core.loading import load_predictor

    predictor = load_predictor(None, plugin="ofdm_chest")
    sample = predictor.task.sample_inputs(predictor.prepared, folder / "sample")[0]
    with np.load(sample) as z:
        arrays = {k: z[k] for k in z.files}
    rng = np.random.default_rng(0)
    reps = 64 // len(arrays["ls"])
    for i in range(n):
        noisy = {k: (np.concatenate([v] * reps) if v.ndim and len(v) == len(arrays["ls"]) else v)
                 for k, v in arrays.items()}
        noisy["ls"] = noisy["ls"] + (rng.normal(size=noisy["ls"].shape) * 0.01).astype(noisy["ls"].dtype)
        np.savez(folder / "in" / f"g{i:04d}.npz", **noisy)


def _predict(folder: Path, out: str, extra: list[str], threads: int) -> float:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "RAY_USAGE_STATS_ENABLED": "0"}
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "sigplex.core.cli", "predict", "--plugin", "ofdm_chest", "--input",
                    str(folder / "in"), "--output", str(folder / out), *extra], check=True, capture_output=True,
                   env=env)
    return time.perf_counter() - t0


def run(quick: bool = False) -> list[dict]:
    from benchmarks._timing import row

    n = 60 if quick else 200
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "in").mkdir()
        _inputs(folder, n)
        single = _predict(folder, "single", [], threads=2)
        ray = _predict(folder, "ray", ["--ray", "--workers", "2", "--threads-per-worker", "1"], threads=1)
        same = all(f.read_bytes() == (folder / "ray" / f.name).read_bytes() for f in (folder / "single").glob("*.npz"))
    return [row("ray_predict", ray, "1 process x 2 threads", single, inputs=n, grids_per_input=64,
                ray_inputs_per_s=round(n / ray, 1), single_inputs_per_s=round(n / single, 1), outputs_identical=same,
                note="ours = --ray --workers 2 --threads-per-worker 1 (local Ray instance), whole command (s)")]


if __name__ == "__main__":  # pragma: no cover
    print(run(quick=True))
