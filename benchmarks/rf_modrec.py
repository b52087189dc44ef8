"""Benchmark rf_modrec: ClST vs VT-CNN2, and SKD students trained alone vs distilled from ClST, at equal steps.

Every model trains through ``sigplex.core.fit`` on the same **fixed** generated training set of
``N`` frames per class and SNR (``data.fresh_noise=false``: the noise is drawn once, no
augmentation), with the task's optimizer and schedule, the same batch size and the same number
of steps, then is scored on the fixed held-out generated test set (``data.test_seed``). The
students are trained alone (cross-entropy) and distilled (``distill_from=``:
``(1 - alpha) CE + alpha T^2 KL(teacher_T || student_T)``, alpha 0.7, T 4) from two ClST teachers of
this benchmark: ``ClST`` (the fixed set, like every other model) and ``ClST fresh-noise`` (the
same N signals per class and SNR with new noise and carrier phase at every access, same steps).

``ours_s``/``peer_s`` carry **mean accuracy over SNRs in %** (higher is better), not seconds, and
``ratio`` is meaningless here: ``ours`` is ClST against VT-CNN2, or a distilled student against
the same student alone; ``gain_mean_pts``/``gain_high_pts`` = ours - peer in points (mean over
all SNRs / SNR >= 10 dB). ``python -m benchmarks.rf_modrec [--quick] [--markdown FILE]`` also
writes the per-model and per-SNR tables of docs/plugins/rf_modrec.md.
"""
from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

from ._flops import count_flops
from ._timing import row

NOTE = ("ours_s/peer_s are mean accuracy over SNRs in % (higher is better), not seconds; ratio is meaningless; "
        "gain_*_pts = ours - peer")


def budget(quick: bool, n_per: int | None = None, steps: int | None = None) -> dict:
    """Training-set size, steps and batch: the same for every model (``n_per``/``steps`` override)."""
    b = {"n_per": 20, "test_per": 20, "steps": 150, "batch": 128} if quick else \
        {"n_per": 50, "test_per": 50, "steps": 1500, "batch": 128}
    return {**b, **({"n_per": n_per} if n_per else {}), **({"steps": steps} if steps else {})}


def model_size(name: str, options: dict | None = None) -> tuple[int, float]:
    """``(parameters, MMAC per 128-sample frame)`` of a registered rf model at its default size."""
    import torch

    from sigplex.core.models import create_model
    from sigplex.plugins.rf_modrec import clst, students, vtcnn2  # noqa: F401  (register the models)

    model = create_model(name, **(options or {})).eval()
    return sum(p.numel() for p in model.parameters()), count_flops(model, torch.randn(1, 2, 128))["flops"] / 2e6


# VT-CNN2 gets its published optimizer (Adam 1e-3, no weight decay): in a probe it learned faster with it than
# with the task's AdamW 2e-3 (mean accuracy 26 % after 400 steps vs 17 % after 600). Everything else is shared.
OPTIM = {"vtcnn2": {"optim.name": "adam", "optim.lr": 1e-3, "optim.weight_decay": 0.0}}


def train_one(label: str, name: str, b: dict, root: Path, teacher: Path | None = None, fresh_noise: bool = False,
              alpha: float = 0.7, temperature: float = 4.0, seed: int = 0, log=print) -> dict:
    """Train ``name`` with budget ``b`` (optionally distilled from ``teacher``); its test metrics and cost.

    A run already finished under ``root / label`` is read back instead of trained again.
    """
    from sigplex.core.api import fit

    out = root / label
    if not (out / "summary.json").is_file():
        overrides = {"model.name": name, "data.train_per": b["n_per"], "data.test_per": b["test_per"],
                     "data.val_per": 2, "data.fresh_noise": fresh_noise, "trainer.batch_size": b["batch"],
                     "trainer.val_every": b["steps"], "trainer.checkpoint_every": b["steps"],
                     "trainer.progress": "none", "trainer.tensorboard": False, "trainer.seed": seed,
                     **OPTIM.get(name, {})}
        if teacher is not None:
            overrides.update({"distill.alpha": alpha, "distill.temperature": temperature})
        start = time.time()
        fit("rf_modrec", out=out, max_steps=b["steps"], overrides=overrides, distill_from=teacher)
        (out / "bench.json").write_text(json.dumps({"wall_s": round(time.time() - start)}))
    test = json.loads((out / "summary.json").read_text())["test"]
    if (out / "bench.json").is_file():
        seconds = json.loads((out / "bench.json").read_text())["wall_s"]
    else:  # a run from an older version of this script: its training time
        seconds = float((out / "metrics.csv").read_text().splitlines()[-1].split(",")[2])
    params, mmac = model_size(name)
    result = {"label": label, "model": name, "run": out, "params": params, "mmac": round(mmac, 2),
              "steps": b["steps"], "batch": b["batch"], "n_per": b["n_per"], "test_per": b["test_per"],
              "wall_s": round(seconds),
              "distilled": teacher is not None, **test}
    log(f"{label}: acc_mean {100 * test['acc_mean']:.1f} %, acc_high {100 * test['acc_high']:.1f} % "
        f"({params:,} params, {seconds:.0f} s)")
    return result


ARMS = ("SKD", "SKD fresh-noise teacher")


def train_all(quick: bool = False, root: Path | None = None, log=print, arms=ARMS,
              students=("KD-CNN", "KD-MobileNet"), n_per: int | None = None, steps: int | None = None,
              alpha: float = 0.7, temperature: float = 4.0) -> list[dict]:
    """ClST, VT-CNN2, and KD-CNN / KD-MobileNet alone and distilled from ClST.

    Two teachers: ``ClST`` (the fixed set, as every other model) and ``ClST fresh-noise`` (the same N
    signals per class and SNR, with new noise and carrier phase drawn at every access). Students
    always train on the fixed set. ClST and VT-CNN2 on the fixed set are trained unless the only arm is the
    fresh-noise teacher's.
    """
    b = budget(quick, n_per, steps)
    root = Path(root or tempfile.mkdtemp(prefix="rf_modrec_bench_"))
    results, teachers = [], {}
    if "SKD" in arms or not arms:
        results += [train_one("ClST", "clst", b, root, log=log), train_one("VT-CNN2", "vtcnn2", b, root, log=log)]
        teachers["SKD"] = results[0]["run"]
    if "SKD fresh-noise teacher" in arms:
        results.append(train_one("ClST fresh-noise", "clst", b, root, fresh_noise=True, log=log))
        teachers["SKD fresh-noise teacher"] = results[-1]["run"]
    for label, name in (("KD-CNN", "kd_cnn"), ("KD-MobileNet", "kd_mobilenet")):
        if label not in students:
            continue
        results.append(train_one(f"{label} alone", name, b, root, log=log))
        for kind in arms:
            results.append(train_one(f"{label} {kind}", name, b, root, teacher=teachers[kind], alpha=alpha,
                                     temperature=temperature, log=log))
    return results


def pct(x: float) -> float:
    return round(100 * x, 2)


def rows_from(results: list[dict]) -> list[dict]:
    by = {r["label"]: r for r in results}
    pairs = [("ClST", "VT-CNN2")] * ("ClST" in by) + [(f"{s} {kind}", f"{s} alone") for s in ("KD-CNN", "KD-MobileNet")
                                     for kind in ARMS if f"{s} {kind}" in by]
    rows = []
    for ours, peer in pairs:
        o, p = by[ours], by[peer]
        rows.append(row("rf_modrec_accuracy", pct(o["acc_mean"]), peer, pct(p["acc_mean"]), model=ours,
                        acc_high_ours=pct(o["acc_high"]), acc_high_peer=pct(p["acc_high"]),
                        gain_mean_pts=round(pct(o["acc_mean"]) - pct(p["acc_mean"]), 2),
                        gain_high_pts=round(pct(o["acc_high"]) - pct(p["acc_high"]), 2),
                        params_ours=o["params"], params_peer=p["params"], steps=o["steps"], batch=o["batch"],
                        n_per_class_snr=o["n_per"], note=NOTE))
    return rows


def markdown(results: list[dict]) -> str:
    """The per-model table and the accuracy-per-SNR table."""
    from sigplex.plugins.rf_modrec.metrics import snr_key

    b = results[0]
    lines = [f"Fixed training set: {b['n_per']} frames per class and SNR ({b['n_per'] * 11 * 20:,} frames, noise drawn "
             f"once; `ClST fresh-noise` redraws the noise of the same signals); {b['steps']} steps of batch "
             f"{b['batch']} for every model; test: the fixed held-out set ({b['test_per']} per class and SNR). "
             "Wall time includes data generation and evaluation.", "",
             "| model | parameters | MMAC / frame | steps x batch | wall time (s) | mean acc. (%) | acc. SNR >= 10 dB (%) |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        lines.append(f"| {r['label']} | {r['params']:,} | {r['mmac']} | {r['steps']} x {r['batch']} | {r['wall_s']} | "
                     f"{pct(r['acc_mean'])} | {pct(r['acc_high'])} |")
    snrs = sorted(float(k.removeprefix("acc_snr_").replace("m", "-").replace("p", ".")) for k in b
                  if k.startswith("acc_snr_"))
    lines += ["", "| SNR (dB) | " + " | ".join(r["label"] for r in results) + " |",
              "|---:|" + "---:|" * len(results)]
    for s in snrs:
        lines.append(f"| {s:g} | " + " | ".join(f"{pct(r[snr_key(s)]):.1f}" for r in results) + " |")
    return "\n".join(lines) + "\n"


def plot(results: list[dict], path: Path) -> None:
    """Accuracy against SNR, one curve per model (PNG)."""
    from sigplex.core.figures import figure
    from sigplex.plugins.rf_modrec.metrics import snr_key

    snrs = sorted(float(k.removeprefix("acc_snr_").replace("m", "-").replace("p", ".")) for k in results[0]
                  if k.startswith("acc_snr_"))
    with figure(path, figsize=(7, 4)) as fig:
        if fig is not None:
            ax = fig.add_subplot()
            for r in results:
                ax.plot(snrs, [100 * r[snr_key(s)] for s in snrs], marker="o", ms=3, label=r["label"],
                        ls="--" if "alone" in r["label"] else "-")
            ax.set_xlabel("SNR (dB)")
            ax.set_ylabel("accuracy (%)")
            ax.set_ylim(0, 100)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)


def run(quick: bool = False) -> list[dict]:
    """Train every model on the fixed set (minutes with ``quick``, about an hour otherwise on 2 CPU cores)."""
    import torch

    torch.set_num_threads(2)
    return rows_from(train_all(quick))


if __name__ == "__main__":
    import argparse

    p = argparse.ArgumentParser()
    p.add_argument("--quick", action="store_true")
    p.add_argument("--markdown", help="also write the per-model and per-SNR tables here")
    p.add_argument("--plot", help="also draw accuracy against SNR for every model here (PNG)")
    p.add_argument("--root", help="folder for the run directories (default: a new temporary folder)")
    p.add_argument("--arms", nargs="+", default=list(ARMS), choices=list(ARMS), help="which teachers distil")
    p.add_argument("--students", nargs="+", default=["KD-CNN", "KD-MobileNet"], choices=["KD-CNN", "KD-MobileNet"])
    p.add_argument("--n-per", type=int, help="training frames per class and SNR (default 50; --quick 20)")
    p.add_argument("--steps", type=int, help="steps of every model (default 1500; --quick 150)")
    p.add_argument("--alpha", type=float, default=0.7, help="distill.alpha of the students")
    p.add_argument("--temperature", type=float, default=4.0, help="distill.temperature of the students")
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    import torch

    torch.set_num_threads(a.threads)
    results = train_all(a.quick, Path(a.root) if a.root else None, log=lambda s: print(s, flush=True),
                        arms=tuple(a.arms), students=tuple(a.students), n_per=a.n_per, steps=a.steps,
                        alpha=a.alpha, temperature=a.temperature)
    for r in rows_from(results):
        print(json.dumps(r))
    if a.markdown:
        Path(a.markdown).write_text(markdown(results))
    if a.plot:
        plot(results, Path(a.plot))
