"""Device self-check: every registered task trains, matches the CPU, predicts and exports; then Swin UNETR speed.

``python -m benchmarks device_check [--device cuda]`` (default: CUDA when available, else the CPU,
and it says so). For each task of every installed plugin, with the tiny config in ``TINY`` (plus
``COMMON``): a short run of 5 optimizer steps on the device with autocast (bf16 where the device
supports it, else fp16 with a grad scaler; on the CPU bf16), through the core's Trainer; the trained
model's fp32 forward of the task's example input on the device against the same weights on the CPU
(TF32 off; tolerance ``atol + rtol * max|cpu output|``, per task in ``TOLERANCE``); predict on the
task's sample inputs (``Task.sample_inputs``) on the device; ONNX export (``core/exporter.py``, checked
against PyTorch). Then Swin UNETR inference and training step against MONAI and the 3D window attention
op on the same device, through ``swin_unetr_infer``, ``swin_unetr_train`` and ``window_attention_3d``
(their ``--quick`` sizes). Prints one table and writes ``device_check-<device>.json`` in the current folder.

Task rows: ``ours_s`` is the example's forward on the device, ``peer_s`` the same on the CPU (ratio > 1:
the device is faster); ``train_s`` is the whole short run (data, 5 steps, final evaluation, run files).
"""
from __future__ import annotations

import csv
import json
import tempfile
import time
import warnings
from pathlib import Path

import torch

from benchmarks._timing import median_time, row, synced

COMMON = {"trainer.max_steps": 5, "trainer.val_every": 1000, "trainer.checkpoint_every": 5,
          "trainer.progress": "none", "trainer.tensorboard": False, "trainer.early_stopping_patience": None}
EEG = {"model.emb_dim": 16, "model.heads": 2, "model.temporal_depth": 1, "model.spatial_depth": 1,
       "data.sim_subjects": 2, "data.sfreq": 125.0, "data.resample": True, "data.window_s": 2.0,
       "trainer.batch_size": 8}
TINY: dict[tuple[str, str], dict] = {
    ("brain_seg", "segment"): {"data.phantom_cases": 3, "data.phantom_shape": [64, 64, 64], "data.roi": [64, 64, 64],
                               "model.depths": [1, 1, 1, 1], "model.num_heads": [3, 3, 3, 3], "data.sw_batch_size": 1,
                               "model.feature_size": 12},
    ("eeg_conformer", "motor_imagery"): {**EEG, "data.sim_trials": 24, "data.tmin": 0.5, "data.protocol": "within"},
    ("eeg_conformer", "seizure"): {**EEG, "data.sim_minutes": 2, "data.stride_s": 2.0},
    ("example", "denoise"): {"model.channels": 8, "data.n_train": 64, "data.n_val": 16, "data.n_test": 16},
    ("ofdm_chest", "chest"): {"model.dim": 16, "model.depth": 1, "model.heads": 2, "data.train_size": 64,
                              "data.val_size": 12, "data.test_size": 12, "trainer.batch_size": 16},
    ("rf_modrec", "classify"): {"data.train_per": 3, "data.val_per": 1, "data.test_per": 2, "data.snrs": [0, 10],
                                "trainer.batch_size": 16,
                                "model.options": {"dims": [8, 16], "depths": [1, 1], "heads": [1, 2]}},
    ("speech_sep", "separate"): {"model.dim": 32, "model.num_layers": 2, "model.group_size": 32,
                                 "model.query_key_dim": 16, "model.rotary_dim": 8, "model.fsmn_inner": 16,
                                 "model.fsmn_kernel": 9, "data.segment_seconds": 0.5, "data.eval_seconds": 1.0,
                                 "data.train_items": 16, "data.val_items": 4, "data.test_items": 4,
                                 "data.chunk_seconds": 1.0, "data.overlap_seconds": 0.25, "trainer.batch_size": 4},
    ("ts_forecast", "forecast"): {"model.d_model": 16, "model.n_heads": 2, "model.d_ff": 32,
                                  "data.synthetic_rows": 1000},
}
#: (atol, rtol) of the device's fp32 forward against the CPU's: |device - cpu| <= atol + rtol * max|cpu|.
#: Deep conv stacks (Swin UNETR) sum in other orders on a GPU; the rest are small MLP/attention nets.
TOLERANCE = {"brain_seg": (1e-4, 2e-3), "speech_sep": (1e-4, 2e-3)}
DEFAULT_TOLERANCE = (1e-4, 1e-3)


def pick_device(name: str | None) -> tuple[torch.device, str]:
    """The device to check and a note: a CUDA request on a machine without CUDA runs on the CPU, and says so."""
    if name in (None, "auto"):
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        return torch.device("cpu"), f"no CUDA device here: --device {name} runs on the CPU"
    if name == "cpu":
        return torch.device("cpu"), "no CUDA device here: running on the CPU" if not torch.cuda.is_available() else ""
    return torch.device(name), ""


def amp_precision(device: torch.device) -> str:
    """bf16 where the device has it (the CPU, Ampere and later GPUs), else fp16 with a grad scaler."""
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        return "fp16"
    return "bf16"


def _example(predictor):
    """The task's example input for the loaded run (its data is built again when the example needs it)."""
    from sigplex.core.compat import prepare
    from sigplex.core.task import Task

    task, prepared = predictor.task, predictor.prepared
    if type(task).example_input is Task.example_input and prepared.held_out() is None:
        _, prepared = prepare(task, prepared.config, predictor.run.info.get("data"))
    example = task.example_input(prepared)
    return example if isinstance(example, (tuple, list)) else (example,), prepared


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:160]}"


def check_task(plugin: str, task: str, device: torch.device, folder: Path) -> dict:
    """Train, compare, predict and export one task on ``device``; a row with each stage's outcome."""
    import sigplex.core as sp
    from sigplex.core.loading import export_predictor, load_predictor
    from sigplex.core.task import first_tensor, move_to

    precision = amp_precision(device)
    atol, rtol = TOLERANCE.get(plugin, DEFAULT_TOLERANCE)
    tiny = TINY.get((plugin, task), {})
    out = {"task": f"{plugin}/{task}", "amp": precision, "config": ", ".join(f"{k}={v}" for k, v in tiny.items()
                                                                               if k.startswith("model."))}
    ours_s = cpu_s = 0.0
    try:
        start = time.perf_counter()
        run = sp.fit(plugin, task=task, overrides={**COMMON, **tiny, "trainer.precision": precision,
                                                   "trainer.device": str(device)}, out=folder / "run")
        out["train_s"] = round(time.perf_counter() - start, 2)
        with open(run.path / "metrics.csv", newline="") as f:
            losses = [float(r["loss"]) for r in csv.DictReader(f) if r.get("loss")]
        out["train"] = f"ok, loss {losses[-1]:.4g}" if losses and all(map(_finite, losses)) else "FAIL: loss"
        on_device = load_predictor(run.path, device=str(device))
        on_cpu = load_predictor(run.path, device="cpu")
        args, prepared = _example(on_cpu)
        dev_args = move_to(tuple(args), device)
        with torch.no_grad():
            ref = first_tensor(on_cpu.model(*args)).float()
            got = first_tensor(on_device.model(*dev_args)).float().cpu()
            ours_s = median_time(synced(lambda: on_device.model(*dev_args), device), repeat=3)
            cpu_s = median_time(lambda: on_cpu.model(*args), repeat=3)
        diff, bound = float((got - ref).abs().max()), atol + rtol * float(ref.abs().max())
        out["forward"] = f"{'ok' if diff <= bound else 'FAIL'}: diff {diff:.1e} <= {bound:.1e}"
        samples = on_cpu.task.sample_inputs(prepared, folder / "inputs")
        # one output folder per sample: samples of one input in several formats share a stem
        results = [r for i, p in enumerate(samples)
                   for r in on_device.predict_many([str(p)], folder / "predictions" / str(i), progress=False)]
        good = sum(r.status == "ok" for r in results)
        failed = [f"{Path(r.input).name}: {r.error}" for r in results if r.status != "ok"]
        out["predict"] = (f"{good}/{len(results)} ok" if results else "no sample inputs") + \
            (f" (FAIL {failed[0][:120]})" if failed else "")
        exported = export_predictor(on_cpu, "onnx", folder / "model.onnx")
        out["onnx"] = f"ok, diff {exported['max_abs_diff']:.1e}" if "max_abs_diff" in exported else "ok"
        fails = [k for k in ("train", "forward", "onnx") if str(out[k]).startswith("FAIL")] + \
            (["predict"] if failed else [])
        out["status"] = "FAIL: " + ", ".join(fails) if fails else "ok"
    except Exception as exc:  # one task's failure is a row, not the end of the check
        out["status"] = f"FAIL: {_short(exc)}"
    return row("device_check", ours_s, "cpu forward", cpu_s, **out)


def _finite(v: float) -> bool:
    return v == v and abs(v) != float("inf")


def registered_tasks() -> list[tuple[str, str]]:
    from sigplex.core.plugins import get_plugin_manager

    pm = get_plugin_manager()
    return [(name, spec.name) for name, record in sorted(pm.records.items()) if record.status == "ok"
            for spec in pm.tasks(name)]


def speed(device: torch.device) -> list[dict]:
    """Swin UNETR forward and train step against MONAI, and the 3D window attention op, on ``device``."""
    from benchmarks import swin_unetr_infer, swin_unetr_train, window_attention_3d

    rows = []
    for module in (swin_unetr_infer, swin_unetr_train, window_attention_3d):
        try:
            rows += module.run(quick=True, device=str(device))
        except Exception as exc:
            rows.append(row(module.__name__.rsplit(".", 1)[-1], 0.0, "-", 0.0, status=f"FAIL: {_short(exc)}"))
    return rows


COLUMNS = ("task", "amp", "train_s", "train", "forward", "predict", "onnx", "ours_s", "peer_s", "status")


def table(rows: list[dict], device: torch.device, note: str, seconds: float) -> str:
    """One plain-text table: a line per task, then a line per speed comparison."""
    tasks = [r for r in rows if r["bench"] == "device_check"]
    widths = {c: max(len(c), *(len(str(r.get(c, ""))) for r in tasks)) for c in COLUMNS} if tasks else {}
    lines = [f"device_check on {device}{' (' + note + ')' if note else ''}: {seconds:.0f} s, torch {torch.__version__}"]
    if tasks:
        lines.append("  ".join(c.ljust(widths[c]) for c in COLUMNS))
        lines += ["  ".join(str(r.get(c, "")).ljust(widths[c]) for c in COLUMNS) for r in tasks]
    for r in rows:
        if r["bench"] != "device_check":
            what = " ".join(str(r[k]) for k in ("mode", "what", "input", "grid") if r.get(k))
            lines.append(f"{r['bench']:<20} {what:<28} ours {r['ours_s']:.4f} s  {r['peer']} {r['peer_s']:.4f} s  "
                         f"ratio {r['ratio']}{'  ' + r['status'] if r.get('status') else ''}")
    return "\n".join(lines)


def run(quick: bool = False, device: str | None = None) -> list[dict]:
    """Check every registered task on ``device``, then time Swin UNETR and window attention there."""
    start = time.perf_counter()
    dev, note = pick_device(device)
    if note:
        print(f"device_check: {note}", flush=True)
    torch.backends.cuda.matmul.allow_tf32 = False  # fp32 means fp32 when comparing with the CPU
    torch.backends.cudnn.allow_tf32 = False
    torch.set_num_threads(2)
    rows = []
    with warnings.catch_warnings(), tempfile.TemporaryDirectory(prefix="sigplex-device-check-") as tmp:
        warnings.simplefilter("ignore")
        for plugin, task in registered_tasks():
            rows.append(check_task(plugin, task, dev, Path(tmp) / f"{plugin}-{task}"))
            print(f"device_check: {plugin}/{task}: {rows[-1]['status']}", flush=True)
    rows += speed(dev)
    seconds = time.perf_counter() - start
    print(table(rows, dev, note, seconds), flush=True)
    path = Path.cwd() / f"device_check-{dev.type}.json"
    path.write_text(json.dumps({"device": str(dev), "note": note, "seconds": round(seconds, 1),
                                "torch": torch.__version__, "rows": rows}, indent=1))
    print(f"wrote {path}", flush=True)
    return rows
