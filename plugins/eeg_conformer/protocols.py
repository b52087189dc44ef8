"""Full cross-validation runs: one training run per fold (leave-one-subject-out or k-fold), then a summary.

``cross_validate("motor_imagery", out="runs/loso")`` trains ``out/fold-<subject>`` for every
subject (LOSO) or ``out/fold-<k>`` (k-fold), collects each run's test metrics and writes
``out/cv_summary.json`` (per fold, and the mean over folds) atomically. The default
``platform train`` run is a single fold (``data.fold``).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from sigplex.core.errors import UserError
from sigplex.core.fileio import atomic_write_text


def fold_names(task: str = "motor_imagery", *, data=None, overrides=None) -> list[str]:
    """The subjects (LOSO) or fold indices (k-fold) that ``cross_validate`` would run."""
    from sigplex.core.api import _as_list, _task_and_config

    _, task_obj, cfg = _task_and_config("eeg_conformer", task, overrides=_as_list(overrides))
    if cfg.data.protocol == "loso":
        return [s.subject for s in task_obj.subjects(cfg, Path(data) if data else None)[0]]
    if cfg.data.protocol == "kfold":
        return [str(k) for k in range(cfg.data.n_folds)]
    raise UserError("data.protocol=within has a single split; use platform train")


def cross_validate(task: str = "motor_imagery", *, out: str | Path, data=None, overrides=None,
                   max_steps: int | None = None) -> dict:
    """Train every fold, return and write ``{"folds": {name: test metrics}, "mean": {...}}``."""
    from sigplex.core.api import _as_list, fit

    out = Path(out)
    if (out / "cv_summary.json").exists():
        raise UserError(f"{out}: already holds cv_summary.json; choose another output folder")
    base = [o for o in _as_list(overrides) if not o.startswith(("data.fold=", "data.test_subject="))]
    names = fold_names(task, data=data, overrides=base)
    folds = {}
    for k, name in enumerate(names):
        run = fit("eeg_conformer", task=task, data=data, overrides=base + [f"data.fold={k}"], max_steps=max_steps,
                  out=out / f"fold-{name}")
        folds[name] = run.summary.get("test", {})
    keys = sorted({k for m in folds.values() for k in m if not any(k.endswith(f"_{n}") for n in names)})
    mean = {k: float(np.nanmean([m.get(k, np.nan) for m in folds.values()])) for k in keys}
    result = {"task": task, "folds": folds, "mean": mean}
    atomic_write_text(out / "cv_summary.json", json.dumps(result, indent=1))
    return result


__all__ = ["cross_validate", "fold_names"]
