"""The files a run writes around its training loop: the record at the start (or the resume check),
and after training the test metrics with the best weights, the curves, the task's plots and the card.
"""
from __future__ import annotations

import shutil
import time
import warnings
from pathlib import Path

from .. import run as runs
from ..card import write_card
from ..compat import V1TaskAdapter
from ..config import config_differences, config_to_yaml
from ..device import KERNELS, machine, set_kernel_choices
from ..errors import UserError
from ..figures import metric_curves
from ..kernels import choose_kernels
from ..task import save_state
from . import checkpoint as ckpt
from .distributed import broadcast_object
from .rng import isolated_rng

#: config keys a resumed run may change without breaking an exact resume
RESUME_MAY_CHANGE = {
    "trainer.max_steps", "trainer.max_epochs", "trainer.log_every", "trainer.keep_last",
    "trainer.num_workers", "trainer.device", "trainer.progress", "trainer.tensorboard",
    "trainer.mlflow", "trainer.early_stopping_patience", "trainer.eval_batch_size",
}


def settle_kernels(dist, info: dict, device, resume: bool) -> dict[str, bool]:
    """The hand-written CPU kernels this run computes with (:mod:`sigplex.core.kernels`), applied on every rank.

    A resume takes the run's recorded choice (all on for runs recorded before there was a choice), so it
    stays bitwise-exact; a new run takes this machine's measured choice, decided on rank 0 alone.
    """
    if resume:
        choice = choose_kernels(info.get("kernels") or {k: True for k in KERNELS}, device)
    else:
        choice = choose_kernels(None, device, probe=dist.is_main) if dist.is_main else None
    choice = broadcast_object(dist, choice)
    set_kernel_choices(choice)
    return choice


def check_resume_config(run_dir: Path, config) -> None:
    """A resumed run keeps its config, but for the keys of :data:`RESUME_MAY_CHANGE`; one-line error otherwise."""
    run = runs.RunDir(run_dir)
    if not run.config_file.is_file():
        raise UserError(f"--resume {run_dir}: {run.config_file.name} is missing; not a sigplex run directory")
    changed = [d for d in config_differences(run.config_dict, config.model_dump(mode="json"))
               if d not in RESUME_MAY_CHANGE]
    if changed:
        raise UserError(f"--resume {run_dir}: the config differs in {', '.join(changed)}, which would break an "
                        "exact resume; start a new run (--out) or restore those values")


def write_start(run_dir: Path, config, task, prepared, info: dict) -> None:
    """The record of a new run: resolved config, fitted state and ``run.json`` (what, from where, on what)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    run = runs.RunDir(run_dir)
    run.write_config(config_to_yaml(config))
    if not isinstance(task, V1TaskAdapter):
        save_state(prepared.state, run_dir)
    run.write_info({**info, "contract": task.contract, "machine": machine(),
                    "created": time.strftime("%Y-%m-%dT%H:%M:%S")})


def remove_failed_run(run_dir: Path) -> None:
    """A fresh run that fails before its first checkpoint leaves no half-made run directory."""
    if run_dir.is_dir() and not runs.list_checkpoints(run_dir):
        shutil.rmtree(run_dir, ignore_errors=True)


def finish(trainer, model) -> dict:
    """Rank 0 after training: test metrics with the best weights, metric curves and the task's plots."""
    import torch

    out: dict = {}
    run, task, prepared = runs.RunDir(trainer.run_dir), trainer.task, trainer.prepared
    best_path = runs.pick_checkpoint(run.path) if runs.list_checkpoints(run.path) else None
    if best_path is not None:
        weights, meta = ckpt.load_checkpoint_weights(best_path)
        trainer.load_model_weights(model, weights, meta)
        out["checkpoint"] = str(best_path)
    model.eval()
    with torch.no_grad(), isolated_rng():
        calibrated = {} if isinstance(task, V1TaskAdapter) else task.calibrate(model, prepared)
        if calibrated:
            prepared.state.update(calibrated)
            save_state(prepared.state, run.path)
        if prepared.test is not None:
            out["test"] = {k: float(v) for k, v in task.evaluate(model, prepared.test, prepared).items()}
        plots = []
        try:
            curves = metric_curves(run.metrics_csv, run.plots / "curves.png")
            plots += [curves] if curves else []
            plots += list(task.plots(model, prepared, run.path) or [])
        except Exception as exc:  # a failed plot must not lose a finished run
            warnings.warn(f"plots failed: {type(exc).__name__}: {exc}", stacklevel=2)
        out["plots"] = [str(p) for p in plots]
    return out


def write_card_safely(run_dir: Path, task, model, prepared) -> None:
    """The run's model card; a failure is a warning, never a lost run."""
    try:
        write_card(run_dir, task=task, model=model, prepared=prepared)
    except Exception as exc:
        warnings.warn(f"model card failed: {type(exc).__name__}: {exc}", stacklevel=2)
