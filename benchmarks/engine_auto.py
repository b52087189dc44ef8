"""``--engine auto`` against eager, end to end, on every plugin's sample input.

For each installed plugin's default task: its shipped weights, or else a two-step run of its default
config (brain_seg: five phantom cases). ``load_predictor(..., engine="auto")`` probes the engines
on the task's sample input in a fresh ``$SIGPLEX_CACHE`` (``probe_s``: compilation, export and the
timed probe, a once-per-machine cost) and keeps its choice; then ``predict`` on the same sample
input is timed with that predictor and with an eager one (``--engine torch``), interleaved, the
median of ``REPEAT`` calls each. ratio = eager seconds / auto seconds (goal: >= 0.95, never more
than 5 % slower than eager). The row also gives the probe's own latencies per engine.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks._timing import median_times_interleaved, row

REPEAT = 7
PLUGINS = ("brain_seg", "eeg_conformer", "speech_sep", "ts_forecast", "rf_modrec", "ofdm_chest", "example")
#: plugin -> train overrides for the short run of a task that ships no weights
SHORT_RUN = {
    "brain_seg": ["--set", "data.phantom_cases=5", "--set", "trainer.val_every=2"],
}


def _source(plugin: str, folder: Path) -> str | None:
    """The checkpoint to load: None for shipped weights, else a two-step run made here."""
    from sigplex.core.loading import built_task
    from sigplex.core.plugins import get_plugin_manager

    if built_task(get_plugin_manager().task(plugin, None)).pretrained is not None:
        return None
    out = folder / f"{plugin}_run"
    cmd = [sys.executable, "-m", "sigplex.core.cli", "train", "--plugin", plugin, "--out", str(out),
           "--max-steps", "2", "--set", "trainer.progress=none", *SHORT_RUN.get(plugin, [])]
    subprocess.run(cmd, check=True, capture_output=True)
    return str(out)


def run(quick: bool = False) -> list[dict]:
    import torch

    from sigplex.core.loading import load_predictor
    from sigplex.core.plugins import get_plugin_manager

    torch.set_num_threads(2)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        os.environ["SIGPLEX_CACHE"] = str(folder / "cache")  # a first probe on this machine
        for plugin in [p for p in PLUGINS if p in get_plugin_manager().records]:
            checkpoint = _source(plugin, folder)
            started = time.perf_counter()
            auto = load_predictor(checkpoint, plugin=plugin, engine="auto")
            probe_s = time.perf_counter() - started
            eager = load_predictor(checkpoint, plugin=plugin, engine="torch")
            samples = auto.task.sample_inputs(auto.prepared, folder / plugin)
            if not samples:
                print(f"{plugin}: no sample input", flush=True)
                continue
            calls = {"auto": lambda a=auto, s=samples[0]: a.predict(s),
                     "torch": lambda e=eager, s=samples[0]: e.predict(s)}
            t = median_times_interleaved(calls, repeat=3 if quick else REPEAT, warmup=2)
            choice = auto.engine_choice
            probed = {k: round(v, 5) for k, v in (choice.get("latency_s") or {}).items()}
            rows.append(row("engine_auto", t["auto"], "eager (--engine torch)", t["torch"], plugin=plugin,
                            task=auto.task.name, weights="shipped" if checkpoint is None else "2-step run",
                            engine=auto.engine, probe_s=round(probe_s, 1), probe_latency_s=str(probed),
                            probe_notes=str(choice.get("notes") or {})))
            print(rows[-1], flush=True)
    return rows
