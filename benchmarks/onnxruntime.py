"""onnxruntime: torch eager latency against ONNX Runtime for every plugin's default model, batch 1 and 32.

Each plugin's default task builds its default model (random weights; speed does not depend on
them), exports it to ONNX with the task's dynamic axes, and both engines run the task's example
input repeated to the batch size (32, or as many as fit in 2^24 input elements: 2 brain volumes),
interleaved. ``ours_s`` is the ORT time, ``peer_s`` torch's
(ratio = torch / ORT; goal ≥ 1.5 at batch 1 for the EEG, forecasting and OFDM models).
"""
from __future__ import annotations

import tempfile
from pathlib import Path

from benchmarks._timing import median_times_interleaved, row

MAX_BATCH_ELEMENTS = 1 << 24  # input elements per batch (64 MB of float32)
PLUGINS = ("eeg_conformer", "ts_forecast", "ofdm_chest", "speech_sep", "brain_seg", "rf_modrec")


def _batch(example, n: int):
    import torch

    xs = example if isinstance(example, tuple) else (example,)
    return tuple(torch.cat([x] * n) if x.shape[0] == 1 else x[:1].repeat(n, *[1] * (x.dim() - 1)) for x in xs)


def run(quick: bool = False) -> list[dict]:
    import torch

    from sigplex.core.api import load_task
    from sigplex.core.compat import prepare
    from sigplex.core.engines import OnnxModel
    from sigplex.core.exporter import export_model
    from sigplex.core.plugins import get_plugin_manager
    from sigplex.core.task import Prepared

    pm = get_plugin_manager()
    rows = []
    repeat = 5 if quick else 20
    for plugin in PLUGINS:
        if plugin not in pm.records or pm.records[plugin].status != "ok":
            continue
        spec, task, cfg = load_task(plugin, pm=pm)
        prepared = Prepared(config=cfg)
        try:
            model = task.build_model(cfg).eval()
        except (ValueError, TypeError):  # the config is completed from the data (e.g. EEG channels)
            task, prepared = prepare(task, cfg, None)
            cfg = prepared.config
            model = task.build_model(cfg).eval()
        task.prepare_model(model, prepared)
        example = task.example_input(prepared)
        with tempfile.TemporaryDirectory() as tmp:
            res = export_model(model, example, format="onnx", output=Path(tmp) / "m.onnx",
                               dynamic_axes=task.export_axes(prepared), check=False)
            ort = OnnxModel(Path(tmp) / "m.onnx")
            if "batch" not in str(res.get("dynamic_axes")):
                batches = (1,)
            else:  # batch 32, or what fits in memory for volumes (32 brain MRIs of 4 x 128^3 need ~100 GB in ORT)
                largest = max(t.numel() for t in (example if isinstance(example, tuple) else (example,)))
                batches = (1, max(2, min(32, MAX_BATCH_ELEMENTS // largest)))
                batches = batches[:1] if quick and batches[1] < 32 else batches
            for n in batches:
                x = _batch(example, n)
                with torch.no_grad():
                    times = median_times_interleaved({"torch": lambda: model(*x), "ort": lambda: ort(*x)},
                                                     repeat=repeat if n == 1 else max(3, repeat // 4))
                rows.append(row(f"onnxruntime_{plugin}", times["ort"], "torch eager", times["torch"], batch=n,
                                model=cfg.model.name, note="ratio = torch eager / ONNX Runtime"))
    return rows
