"""Batch prediction on a Ray cluster: ``platform predict ... --ray [ADDRESS] --workers N --threads-per-worker T``.

The driver expands the inputs, resolves the model and its engine once (an ONNX export happens here,
not in every worker), and writes the manifest. Each worker is a Ray actor that loads the same
model through the same loading code as a single process (:func:`~sigplex.core.loading.load_predictor`)
and predicts single inputs with :func:`~sigplex.core.batch.predict_item`, writing the outputs and
their provenance sidecars under ``--output`` (a shared file system path on a cluster). So per-input
isolation, resume (finished inputs whose sidecars match are skipped), ``--overwrite`` and the exit
codes are the single-process batch's. A worker that dies (killed, out of memory) is replaced and
its in-flight inputs are tried once more on another worker, then recorded as failed with the
reason. Usage statistics are off (``RAY_USAGE_STATS_ENABLED=0``) unless the environment says otherwise.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import time
import uuid
from collections import deque
from pathlib import Path
from typing import Iterable, Iterator

from .batch import InputItem, model_provenance, output_for, plan_batch, predict_item, shown_input
from .errors import UserError, one_line, require
from .manifest import ItemResult
from .outputs import output_files

IN_FLIGHT = 2  # inputs queued on each worker, so it never waits for the driver
WORKER_PREFIX = "sigplex-predict-"  # the workers' actor names: sigplex-predict-<run id>-<k>


class _Worker:
    """One Ray actor: the model loaded once, then one input at a time."""

    def __init__(self, spec: dict, threads: int):
        import torch

        torch.set_num_threads(threads)
        arguments = dict(spec)
        self.predictor = arguments.pop("loader")(**arguments)  # load_predictor, sent by reference

    def run(self, plan, item: InputItem, base: dict, overwrite: bool, hash_paths: bool) -> dict:
        return predict_item(self.predictor, plan, item, base, overwrite=overwrite, hash_paths=hash_paths).as_dict()


def connect(address: str | None, cpus: int):
    """``ray``, initialised: a local instance with ``cpus`` CPUs (``address`` None), or joined to ``address``
    (``auto``, ``HOST:PORT``, ``ray://...``). Returns (ray, whether this call started it)."""
    ray = require("ray", "cluster", "platform predict --ray")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if ray.is_initialized():
        return ray, False
    try:
        if address in (None, "", "local"):
            ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
        else:
            ray.init(address=address, log_to_driver=False, logging_level=logging.ERROR)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise UserError(f"--ray {address or 'local'}: cannot start or join Ray ({one_line(exc)})") from None
    return ray, True


def _half_written(task, prepared, plan, item: InputItem, started: float) -> None:
    """Remove outputs a dead worker wrote during this run without their sidecars (never anything older)."""
    target = output_for(task, item.path, plan.root, plan.out_dir)
    for f in output_files(task, target, prepared, item.path):
        if f.exists() and not f.with_name(f.name + ".json").exists() and f.stat().st_mtime >= started:
            f.unlink()


def predict_on_ray(predictor, spec: dict, inputs: Iterable[str | Path], output: str | Path, *,
                   address: str | None = None, workers: int = 2, threads: int = 1, overwrite: bool = False,
                   hash_paths: bool = False) -> Iterator[ItemResult]:
    """Predict ``inputs`` into the folder ``output`` on ``workers`` Ray actors (see the module docstring).

    ``predictor`` is the driver's (it decides the inputs, the provenance and the engine); ``spec`` holds
    ``loader`` (:func:`~sigplex.core.loading.load_predictor`) and the arguments each worker loads the
    same model with (``Predictor.load_spec``).
    Yields results as they finish; the manifest lists them in the inputs' order.
    """
    if workers < 1 or threads < 1:
        raise UserError(f"--workers {workers} --threads-per-worker {threads}: expected positive numbers")
    ray, started_here = connect(address, workers * threads)
    task, prepared = predictor.task, predictor.prepared
    plan = plan_batch(task, inputs, output)
    base = model_provenance(predictor)
    spec = {**spec, "engine": predictor.engine}  # every worker computes with the driver's engine
    actor = ray.remote(num_cpus=threads)(_Worker)
    run_id = uuid.uuid4().hex[:8]
    names = (f"{WORKER_PREFIX}{run_id}-{k}" for k in range(1 << 30))  # named, so that a person can find them

    def start():
        return actor.options(name=next(names)).remote(spec, threads)

    pool = [start() for _ in range(workers)]
    plan_ref, base_ref = ray.put(dataclasses.replace(plan, manifest=None)), ray.put(base)
    queue = deque(enumerate(plan.items))
    pending: dict = {}  # object ref -> (input index, item, worker slot, attempt, the worker)
    started = time.time()

    def submit(slot: int, attempt: int = 0) -> None:
        index, item = queue.popleft()
        ref = pool[slot].run.remote(plan_ref, item, base_ref, overwrite, hash_paths)
        pending[ref] = (index, item, slot, attempt, pool[slot])

    try:
        for slot in range(workers):
            for _ in range(IN_FLIGHT):
                if queue:
                    submit(slot)
        while pending:
            (ref,), _ = ray.wait(list(pending), num_returns=1)
            index, item, slot, attempt, worker = pending.pop(ref)
            try:
                result = ItemResult(**ray.get(ref))
            except ray.exceptions.RayActorError as exc:  # the worker died with this input in flight
                if pool[slot] is worker:  # not replaced yet (its other inputs in flight fail the same way)
                    pool[slot] = start()
                if attempt == 0:  # once more, on another worker
                    _half_written(task, prepared, plan, item, started)
                    queue.appendleft((index, item))
                    submit((slot + 1) % workers, attempt=1)
                    continue
                result = ItemResult(input=shown_input(item.path, hash_paths), status="failed", error_type="WorkerDied",
                                    error=f"{item.path}: the worker predicting it died twice ({one_line(exc)[:200]})")
            plan.manifest.add(result)
            if queue:
                submit(slot)
            yield result
    finally:
        plan.manifest.close(order=[shown_input(i.path, hash_paths) for i in plan.items])
        for worker in pool:
            ray.kill(worker)
        if started_here:
            ray.shutdown()

