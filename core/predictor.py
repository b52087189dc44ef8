"""The Predictor: a loaded model with its task and fitted state, ready to predict and evaluate.

Loading one (from a run, shipped weights or a weights file) is :mod:`sigplex.core.loading`'s.
"""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from .compat import is_builtin, prepare
from .config import as_overrides, resolve_config
from .errors import UserError, first_line
from .run import RunDir
from .task import Prepared


class Predictor:
    """A trained model ready for use: ``predict(x)`` returns the task's natural output.

    ``prepared`` holds the run's completed config and fitted state; ``model`` is the torch module
    (or an ONNX Runtime stand-in); ``source`` says where the weights came from.
    """

    def __init__(self, task, prepared: Prepared, model, run: RunDir | None = None, checkpoint: Path | None = None,
                 plugin: str = "", source: str = ""):
        self.task, self.prepared, self.model, self.run, self.checkpoint = task, prepared, model, run, checkpoint
        self.plugin, self.source = plugin, source or (str(checkpoint) if checkpoint else "")
        self.engine = "torch"
        self.load_spec: dict | None = None  # load_predictor and its arguments: how cluster workers load the model

    @property
    def config(self):
        return self.prepared.config

    def predict(self, inputs: Any):
        """The task's prediction for one input (a path, or in-memory data).

        A path is checked first (:func:`~sigplex.core.arrays.check_container`: declared sizes against the
        input limit, damaged containers). A third-party task whose reader fails with an exception other
        than ``UserError`` is answered ``FILE: plugin X could not read it (...)``; a built-in task's
        readers raise their own one-line errors, so anything else from them stays an internal error.
        """
        import torch

        from .arrays import check_input

        if isinstance(inputs, (str, Path)):
            check_input(Path(inputs))
        if hasattr(self.model, "eval"):
            self.model.eval()
        with torch.no_grad(), self._reading(inputs):
            return self.task.predict(self.model, inputs, self.prepared)

    @contextlib.contextmanager
    def _reading(self, source):
        """Refusals name ``source``; a third-party task's unexpected exception on it becomes a refusal."""
        try:
            yield
        except UserError as exc:
            if isinstance(source, (str, Path)) and Path(source).name not in str(exc):
                raise type(exc)(f"{source}: {exc}") from exc  # every refusal names its file
            raise
        except KeyboardInterrupt:
            raise
        except Exception as exc:
            if not isinstance(source, (str, Path)) or is_builtin(self.task):
                raise
            raise UserError(f"{source}: plugin {self.plugin or self.task.name} could not read it "
                            f"({type(exc).__name__}: {first_line(exc)})") from exc

    def predict_many(self, inputs, output_dir: str | Path, *, overwrite: bool = False, hash_paths: bool = False,
                     progress: bool | None = None, shard: tuple[int, int] | None = None, ray: str | bool | None = None,
                     workers: int = 2, threads_per_worker: int = 1):
        """Predict many inputs (files, folders, globs, manifests) into ``output_dir``; yields one result per input.

        Each result has ``input``, ``outputs``, ``status`` (ok, skipped, partial, failed), ``error``,
        ``seconds`` and ``sha256``; ``output_dir/manifest.jsonl`` records them all (see
        :mod:`sigplex.core.batch`). ``shard=(I, N)``: only share I of N (:mod:`sigplex.core.manifest`).
        ``ray``: on ``workers`` Ray actors of ``threads_per_worker`` threads each, ``True`` on a local Ray
        instance or an address (``auto``, ``HOST:PORT``, ``ray://...``) to join (:mod:`sigplex.core.cluster`).
        """
        inputs = [inputs] if isinstance(inputs, (str, Path)) else list(inputs)
        if ray:
            from .cluster import predict_on_ray

            if self.load_spec is None:
                raise UserError("ray: this predictor was not made by load_predictor/load_run, so workers cannot "
                                "load the same model; use sigplex.core.load_predictor")
            address = None if ray is True else str(ray)
            yield from predict_on_ray(self, self.load_spec, inputs, output_dir, address=address, workers=workers,
                                      threads=threads_per_worker, overwrite=overwrite, hash_paths=hash_paths)
            return
        from .batch import predict_many

        yield from predict_many(self, inputs, output_dir, overwrite=overwrite, hash_paths=hash_paths, progress=progress,
                                shard=shard)

    def evaluate(self, data: str | Path | None = None, split: str = "test", overrides=None) -> dict[str, float]:
        """Metrics on ``data`` (all of it, with the run's fitted state) or, without data, the run's ``split``."""
        import torch

        prepared = self.prepared
        if overrides:
            cfg = resolve_config(type(prepared.config), config=prepared.config.model_dump(mode="python"),
                                 overrides=as_overrides(overrides), override_label="--set")
            prepared = Prepared(config=cfg, state=dict(prepared.state))
        if data is not None:
            if not Path(data).exists():
                raise UserError(f"--data {data}: no such file or folder")
            from .arrays import check_input

            check_input(Path(data))
            with self._reading(data):
                dataset = self.task.evaluation_data(Path(data), prepared)
        else:
            _, rebuilt = prepare(self.task, prepared.config, self.run.info.get("data") if self.run else None)
            dataset = rebuilt.split(split) if rebuilt.split(split) is not None else rebuilt.val
            if dataset is None:
                raise UserError(f"no {split} split to evaluate on; pass --data")
            prepared = Prepared(config=prepared.config, state=dict(prepared.state) or rebuilt.state)
        if hasattr(self.model, "eval"):
            self.model.eval()
        with torch.no_grad():
            return {k: float(v) for k, v in self.task.evaluate(self.model, dataset, prepared).items()}
