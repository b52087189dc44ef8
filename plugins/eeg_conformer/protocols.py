"""Full cross-validation runs for the eeg_conformer tasks: a thin wrapper over ``sigplex.core.api.cross_validate``.

``cross_validate("motor_imagery", out="runs/loso")`` trains ``out/fold-<subject>`` for every
subject (LOSO) or ``out/fold-<k>`` (k-fold), collects each run's test metrics and writes
``out/cv_summary.json`` (per fold, and the mean over folds). The folds are the task's
``folds(config, data)``; a ``platform train`` run is a single fold (``data.fold``).
"""
from __future__ import annotations

from pathlib import Path

PLUGIN = "eeg_conformer"


def fold_names(task: str = "motor_imagery", *, data=None, config=None, overrides=None) -> list[str]:
    """The subjects (LOSO) or fold indices (k-fold) that ``cross_validate`` would run."""
    from sigplex.core.api import load_task

    _, task_obj, cfg = load_task(PLUGIN, task, config=config, overrides=overrides)
    return [str(n) for n in task_obj.folds(cfg, Path(data) if data else None)]


def cross_validate(task: str = "motor_imagery", *, out: str | Path, data=None, config=None, overrides=None,
                   max_steps: int | None = None) -> dict:
    """Train every fold; return (and write to ``out/cv_summary.json``) ``{"folds": {...}, "mean": {...}}``."""
    from sigplex.core.api import cross_validate as core_cross_validate

    return core_cross_validate(PLUGIN, task=task, out=out, data=data, config=config, overrides=overrides,
                               max_steps=max_steps)


__all__ = ["cross_validate", "fold_names"]
