"""Eager vs ``torch.compile`` vs ONNX Runtime for each plugin's model: training steps and inference.

Per model (one per plugin; ``--quick``: the registry's tiny configs and example inputs, else the
sizes below): a training step (forward, loss, backward, AdamW step) eager and compiled
(``trainer.compile=true``), and inference (eval, no_grad) eager, compiled and in ONNX Runtime.
Each row: the engine's median step time (``ours_s``) against eager's (``peer_s``; ratio > 1 means
the engine is faster), the one-time cost (``setup_s``: compilation, or export + session), the steps
that pay it back (``payback_steps``: setup / time saved per step; empty when it never pays back),
the graph breaks Dynamo reports (train rows), the torch allocator's peak of one step (``peak_mb``; not
measured for ONNX Runtime, whose arena
torch cannot see), and the largest output deviation from eager relative to its scale (``deviation``).
Timings interleave the engines. The Inductor cache is cold (a fresh temporary cache) unless
``$SIGPLEX_BENCH_WARM`` is set. Then, as ``swin_unetr_volume`` does, whole-volume brain_seg inference
(240x240x155, 96^3 windows, overlap 0.5; ``--quick``: 128x128x96) with each engine against MONAI's
``sliding_window_inference`` over MONAI's SwinUNETR (same weights).
"""
from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import torch

from benchmarks._engines import compiled_model, onnx_model
from benchmarks._timing import median_times_interleaved, peak_memory_mb, row

#: plugin -> (registered model, full-size config, full-size inputs)
FULL = {
    "brain_seg": ("swin_unetr", {"in_channels": 4, "out_channels": 3, "feature_size": 24},
                  lambda: (torch.randn(1, 4, 64, 64, 64),)),
    "eeg_conformer": ("dbconformer", {"n_chans": 22, "n_outputs": 4, "n_times": 1000, "sfreq": 250.0},
                      lambda: (torch.randn(16, 22, 1000),)),
    "speech_sep": ("mossformer2", {"num_spks": 2}, lambda: (torch.randn(1, 8000),)),
    "ts_forecast": ("itransformer", {"n_vars": 7, "lookback": 96, "horizon": 96}, lambda: (torch.randn(32, 96, 7),)),
    "rf_modrec": ("clst", None, None),
    "ofdm_chest": ("adafortitran", None, None),
    "example": ("sine_denoiser", {"channels": 32, "depth": 4}, lambda: (torch.randn(32, 1, 128),)),
}


def _first(out):
    return out[0] if isinstance(out, (tuple, list)) else out


def _deviation(ref, out) -> float:
    ref, out = _first(ref).detach().float(), _first(out).detach().float()
    return float((ref - out).abs().max()) / max(1.0, float(ref.abs().max()))


def _train_rows(plugin, name, make, inputs, size) -> list[dict]:
    from sigplex.core.compiling import compile_module

    models = {"torch": make(), "compiled": None}
    models["compiled"] = make()
    models["compiled"].load_state_dict(models["torch"].state_dict())
    steps = {}
    for engine, model in models.items():
        model.train()
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
        call = compile_module(model, True, "bench") if engine == "compiled" else model

        def step(call=call, opt=opt):
            loss = _first(call(*inputs)).float().square().mean()
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)

        steps[engine] = step
    explained = torch._dynamo.explain(models["torch"])(*inputs)
    torch._dynamo.reset()
    t0 = time.perf_counter()
    steps["compiled"]()
    first = time.perf_counter() - t0
    t = median_times_interleaved(steps, repeat=3, warmup=1)
    setup = max(0.0, first - t["compiled"])
    saved = t["torch"] - t["compiled"]
    return [row("compiled_engines", t["compiled"], "eager", t["torch"], plugin=plugin, model=name, size=size,
                mode="train step", engine="compiled", graph_breaks=explained.graph_break_count, setup_s=round(setup, 2),
                payback_steps=round(setup / saved) if saved > 0 else None,
                peak_mb=round(peak_memory_mb(steps["compiled"]), 1),
                peak_mb_eager=round(peak_memory_mb(steps["torch"]), 1))]


def _infer_rows(plugin, name, model, inputs, size, tmp: Path) -> list[dict]:
    model.eval()
    with torch.no_grad():
        reference = model(*inputs)
    calls, setup = {"torch": model}, {}
    calls["compiled"], setup["compiled"] = compiled_model(model, inputs)
    try:
        calls["onnxruntime"], setup["onnxruntime"] = onnx_model(model, inputs, tmp / f"{name}.onnx")
    except Exception as err:  # noqa: BLE001 -- reported in the row
        print(f"{name}: onnx export failed: {type(err).__name__}: {err}")
    with torch.no_grad():
        t = median_times_interleaved({k: (lambda c=c: c(*inputs)) for k, c in calls.items()}, repeat=5, warmup=1)
        rows = []
        for engine in [e for e in calls if e != "torch"]:
            saved = t["torch"] - t[engine]
            peak = round(peak_memory_mb(lambda c=calls[engine]: c(*inputs)), 1) if engine == "compiled" else None
            rows.append(row("compiled_engines", t[engine], "eager", t["torch"], plugin=plugin, model=name, size=size,
                            mode="inference", engine=engine, setup_s=round(setup[engine], 2),
                            payback_steps=round(setup[engine] / saved) if saved > 0 else None, peak_mb=peak,
                            peak_mb_eager=round(peak_memory_mb(lambda: model(*inputs)), 1),
                            deviation=float(f"{_deviation(reference, calls[engine](*inputs)):.2e}")))
    return rows


def _volume_rows(quick: bool, tmp: Path) -> list[dict]:
    from monai.inferers import sliding_window_inference

    from benchmarks.swin_unetr_volume import OVERLAP, ROI
    from benchmarks.swin_unetr_volume import setup as volume_setup
    from sigplex.plugins.brain_seg.inference import infer_volume

    monai_net, ours, volume, data, shape = volume_setup(quick)
    window = (torch.randn(1, 4, *ROI),)
    engines, setup = {"torch": ours}, {"torch": 0.0}
    engines["compiled"], setup["compiled"] = compiled_model(ours, window)
    engines["onnxruntime"], setup["onnxruntime"] = onnx_model(ours, window, tmp / "swin.onnx")

    def monai():
        return torch.sigmoid(sliding_window_inference(volume[None], ROI, 1, monai_net, overlap=OVERLAP,
                                                      mode="gaussian").float())[0]

    calls = {k: (lambda m=m: infer_volume(m, volume, data)) for k, m in engines.items()}
    with torch.no_grad():
        reference = monai()
        t = median_times_interleaved({**calls, "monai": monai}, repeat=1 if quick else 2, warmup=1)
        return [row("compiled_engines", t[k], "monai sliding_window_inference + SwinUNETR", t["monai"],
                    plugin="brain_seg", model="swin_unetr", size="x".join(map(str, shape)), mode="whole volume",
                    engine=k, setup_s=round(setup[k], 2),
                    deviation=float(f"{float((calls[k]() - reference).abs().max()):.2e}")) for k in calls]


def run(quick: bool = False) -> list[dict]:
    from sigplex.core import models as registry

    torch.set_num_threads(2)
    registry.import_registered_models()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        if not os.environ.get("SIGPLEX_BENCH_WARM"):
            os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(Path(tmp) / "inductor")
        for plugin, (name, config, make_inputs) in FULL.items():
            if name not in registry.list_models():
                continue
            entry = registry.model_entry(name)
            full = not quick and config is not None
            size = "full" if full else "tiny"
            cfg = config if full else entry.tiny
            inputs = make_inputs() if full else entry.example_input()
            inputs = inputs if isinstance(inputs, tuple) else (inputs,)
            torch.manual_seed(0)
            torch._dynamo.reset()
            rows += _train_rows(plugin, name, lambda: registry.create_model(name, **cfg), inputs, size)
            torch.manual_seed(0)
            rows += _infer_rows(plugin, name, registry.create_model(name, **cfg), inputs, size, Path(tmp))
            for r in rows[-3:]:
                print(r, flush=True)
        if not os.environ.get("SIGPLEX_BENCH_NO_VOLUME"):
            rows += _volume_rows(quick, Path(tmp))
    return rows


if __name__ == "__main__":
    import argparse
    import json

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny models; a 128x128x96 volume")
    for r in run(quick=parser.parse_args().quick):
        print(json.dumps(r))
