"""The callback protocol: hooks the Trainer calls at fixed points of a run.

Subclass :class:`Callback` and override what you need; pass instances to
``Trainer(callbacks=[...])`` or ``sigplex.core.fit(..., callbacks=[...])``. Set
``trainer.should_stop = True`` to end training after the current step.

>>> class PrintLoss(Callback):
...     def on_step_end(self, trainer, step, logs):
...         if step % 100 == 0:
...             print(step, logs.get("loss"))
"""
from __future__ import annotations


class Callback:
    """Base class: every hook is a no-op. All run on every rank; check ``trainer.dist.is_main``."""

    def on_fit_start(self, trainer) -> None:
        """After the model, data and optimizer are ready (and a resume is applied)."""

    def on_step_end(self, trainer, step: int, logs: dict) -> None:
        """After each optimizer step; ``logs`` holds this step's loss and extra scalars."""

    def on_validation_end(self, trainer, step: int, metrics: dict) -> None:
        """After each validation with the (rank-0) metrics."""

    def on_checkpoint(self, trainer, step: int, path) -> None:
        """After a checkpoint has been written (rank 0 only)."""

    def on_fit_end(self, trainer, summary: dict) -> None:
        """At the end of training, with the run summary."""
