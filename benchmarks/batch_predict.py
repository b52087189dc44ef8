"""batch_predict: per-input overhead of batch prediction beyond the model call (goal ≤ 10 ms per input).

Trains the example plugin's denoiser for a few steps, writes N small ``.npy`` inputs, and times
``Predictor.predict_many`` (sha256 of each input, output + provenance sidecar written atomically,
manifest) minus the time spent inside ``Predictor.predict`` (the task's read, model call and
post-processing), measured within the same run so that load from other processes cancels. ``ours_s`` is the overhead
per input; ``peer_s`` the 10 ms goal (ratio > 1: within goal). A second pass measures resume
(every output already done).
"""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from benchmarks._timing import row

ROOT = Path(__file__).resolve().parents[1]


def _example_pm():
    sys.path.insert(0, str(ROOT / "examples" / "sigplex-example-plugin"))
    import sigplex_example_plugin

    from sigplex.core.plugins import PluginManager

    pm = PluginManager(entry_points=False)
    pm.add_plugin(sigplex_example_plugin, name="example")
    return pm


def run(quick: bool = False) -> list[dict]:
    import numpy as np

    import sigplex.core as sp

    n = 200 if quick else 1000
    pm = _example_pm()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        run_dir = sp.fit("example", pm=pm, out=tmp / "run", overrides={"trainer.max_steps": 2, "model.channels": 8,
                                                                     "trainer.progress": "none"})
        predictor = sp.load_run(run_dir, pm=pm)
        rng = np.random.default_rng(0)
        inputs = tmp / "in"
        inputs.mkdir()
        for i in range(n):
            np.save(inputs / f"x{i:04d}.npy", rng.normal(size=128).astype(np.float32))
        inner = {"s": 0.0}
        plain_predict = predictor.predict

        def timed_predict(x):  # the task's own work (read, model, post-processing), timed inside the batch
            t = time.perf_counter()
            try:
                return plain_predict(x)
            finally:
                inner["s"] += time.perf_counter() - t

        predictor.predict = timed_predict
        t0 = time.perf_counter()
        results = list(predictor.predict_many(inputs, tmp / "out", progress=False))
        batch = (time.perf_counter() - t0) / n
        model_only = inner["s"] / n
        t0 = time.perf_counter()
        again = list(predictor.predict_many(inputs, tmp / "out", progress=False))
        resume = (time.perf_counter() - t0) / n
    assert all(r.status == "ok" for r in results) and all(r.status == "skipped" for r in again)
    overhead = max(batch - model_only, 1e-6)
    return [row("batch_predict_overhead_per_input", overhead, "goal", 0.010, inputs=n,
                predict_only_ms=round(model_only * 1e3, 2), batch_ms=round(batch * 1e3, 2)),
            row("batch_predict_resume_per_input", resume, "goal", 0.010, inputs=n)]
