"""The Trainer: one domain-free training loop for every task.

``Trainer(task, config, run_dir).fit(data=None)`` builds the task's model and data, then
trains with the optimizer/schedule of ``config.optim``, autocast (bf16/fp16), gradient
accumulation and clipping, periodic validation, best-checkpoint tracking, early stopping,
atomic resumable checkpoints and metric logging. Under ``torchrun`` it runs distributed data
parallel (gloo on CPU, nccl on GPU); rank 0 alone logs and writes checkpoints.

Resuming (``resume=True``) restores weights, optimizer, schedule, scaler, every RNG and the
data position, so a killed run finishes with the same weights as an uninterrupted one.
"""
from __future__ import annotations

import contextlib
import time
import warnings
from pathlib import Path

from .. import run as runs
from ..compat import prepare, step_result
from ..compiling import compile_module
from ..device import resolve_device
from ..errors import UserError
from . import checkpoint as ckpt
from . import records
from .callbacks import Callback
from .distributed import (
    DDPView,
    DistInfo,
    barrier,
    broadcast_object,
    gather_objects,
    init_distributed,
    lost_peer_errors,
    mean_across_ranks,
    shutdown,
)
from .logging import MetricLogger, Progress
from .optim import Schedule, build_optimizer
from .rng import isolated_rng, rng_state, seed_everything, set_rng_state
from .sampler import IndexedItems, ResumableBatchSampler, SeededItems

# Config fields that may change between a run and its resume without breaking exactness.


class Trainer:
    """Trains a task's model; see the module docstring."""

    def __init__(self, task, config, run_dir: str | Path, *, callbacks=(), adapter: str | None = None,
                 init_from: str | Path | None = None, run_info: dict | None = None, init_weights: dict | None = None):
        self.task, self.config, self.run_dir = task, config, Path(run_dir)
        self._init_weights = init_weights  # init_from's state dict when the caller has read it (dropped once used)
        self.callbacks: list[Callback] = list(callbacks)
        self.adapter, self.init_from = adapter, init_from
        self.run_info = dict(run_info or {})
        self.should_stop = False
        self.dist = DistInfo()
        self.model = None
        self.prepared = None
        self.step = 0

    # --- set-up ---------------------------------------------------------------------
    def _build_model(self):
        seed_everything(self.config.trainer.seed)
        model = self.task.build_model(self.config)
        self.task.prepare_model(model, self.prepared)
        if self.init_from is not None:
            runs.load_base_weights(self.task, model, self.init_from, weights=self._init_weights)
            self._init_weights = None
        if self.adapter:
            from ..adapters import apply_adapter

            report = apply_adapter(model, self.adapter, train_norms=self.config.adapter.train_norms)
            if self.dist.is_main:
                print(str(report), flush=True)
        return model.to(self.device)

    def _model_weights(self, model) -> tuple[dict, dict]:
        if self.adapter:
            from ..adapters import adapter_checkpoint

            return adapter_checkpoint(model)
        return model.state_dict(), {}

    def load_model_weights(self, model, weights: dict, meta: dict) -> None:
        """Load a checkpoint's weights (the adapters and changed base tensors of an adapter run) into ``model``."""
        if self.adapter:
            from ..adapters import load_adapter_checkpoint

            load_adapter_checkpoint(model, weights, meta=meta, source=str(self.run_dir))
        else:
            model.load_state_dict(weights, strict=True)

    # --- the loop -------------------------------------------------------------------
    def fit(self, data: str | Path | None = None, resume: bool = False) -> dict:
        """Train; returns a summary dict (also written to RUN/summary.json)."""
        import torch

        tcfg = self.config.trainer
        self.device = resolve_device(tcfg.device)
        self.dist = init_distributed(self.device.type)
        if self.dist.enabled and self.device.type == "cuda":
            self.device = torch.device(f"cuda:{self.dist.local_rank}")
            torch.cuda.set_device(self.device)
        created = not resume and not self.run_dir.exists()
        try:
            with lost_peer_errors(self.dist, self.run_dir, lambda: self.step):
                return self._fit(data, resume)
        except BaseException:
            if created and self.dist.is_main:
                records.remove_failed_run(self.run_dir)
            raise
        finally:
            shutdown(self.dist)

    def _fit(self, data, resume):
        self.run_info["kernels"] = records.settle_kernels(self.dist, self.run_info, self.device, resume)
        self._prepare_data(data)
        self._write_run_files(resume)
        model = self.model = self._build_model()
        self.teacher = None
        if self.run_info.get("distill_from"):
            from .distill import load_teacher

            self.teacher = load_teacher(self.task, self.prepared, self.run_info["distill_from"], self.device)
        self._make_optimizer(model)
        self.state = {"step": 0, "epoch": 0, "position": 0, "best": None, "bad_evals": 0, "micro": 0, "elapsed_s": 0.0}
        if resume:
            self._restore(model)
        self._train(model, resume)
        return self._summarise(model)

    def _prepare_data(self, data) -> None:
        """Build the task's data; a v1 task is wrapped here (see :mod:`sigplex.core.compat`)."""
        self.task, self.prepared = prepare(self.task, self.config, data)
        if self.prepared.train is None or len(self.prepared.train) == 0:
            raise UserError("the training set is empty")
        self.config = self.prepared.config

    def _write_run_files(self, resume: bool) -> None:
        if resume:
            records.check_resume_config(self.run_dir, self.config)
        elif self.dist.is_main:
            records.write_start(self.run_dir, self.config, self.task, self.prepared,
                                {**self.run_info, "adapter": self.adapter,
                                 "init_from": str(self.init_from) if self.init_from else None})
        barrier(self.dist)

    def _make_optimizer(self, model) -> None:
        import torch

        tcfg = self.config.trainer
        self.monitor = tcfg.monitor or self.task.monitor
        self.mode = tcfg.monitor_mode or self.task.monitor_mode
        self.optimizer = build_optimizer(model.parameters(), self.config.optim)
        self.schedule = Schedule(self.optimizer, self.config.optim, tcfg.max_steps, self.mode)
        self.use_scaler = tcfg.precision == "fp16"
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.use_scaler)
        self.autocast_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(tcfg.precision)

    def _restore(self, model) -> None:
        last = runs.latest_valid_checkpoint(self.run_dir)
        if last is None:
            raise UserError(f"--resume {self.run_dir}: no valid checkpoint to resume from")
        weights, meta = ckpt.load_checkpoint_weights(last)
        self.load_model_weights(model, weights, meta)
        saved = ckpt.load_state(last)
        self.optimizer.load_state_dict(saved["optimizer"])
        self.schedule.load_state_dict(saved["schedule"])
        if self.use_scaler and saved.get("scaler"):
            self.scaler.load_state_dict(saved["scaler"])
        rngs = saved["rng"]
        if len(rngs) != self.dist.world_size:
            warnings.warn(f"resuming with {self.dist.world_size} processes, saved with {len(rngs)}: "
                          "random streams will differ from an uninterrupted run", stacklevel=2)
        set_rng_state(rngs[min(self.dist.rank, len(rngs) - 1)])
        self.state.update(saved["progress"])
        if self.dist.is_main:
            print(f"resumed from {last} (step {self.state['step']})", flush=True)

    def _loader(self):
        import torch
        from torch.utils.data import DataLoader

        tcfg, train = self.config.trainer, self.prepared.train
        self.sampler = ResumableBatchSampler(len(train), tcfg.batch_size, tcfg.seed, drop_last=tcfg.drop_last,
                                             rank=self.dist.rank, world_size=self.dist.world_size)
        prepared = self.prepared
        items = (SeededItems(train, lambda seed: self.task.seed_item(seed, prepared))
                 if self.task.random_items else IndexedItems(train))
        return DataLoader(items, batch_sampler=self.sampler, collate_fn=self.task.collate,
                          num_workers=tcfg.num_workers, generator=torch.Generator().manual_seed(tcfg.seed),
                          pin_memory=self.device.type == "cuda")

    def _train(self, model, resume: bool) -> None:
        tcfg, state, main = self.config.trainer, self.state, self.dist.is_main
        if self.dist.enabled:
            from torch.nn.parallel import DistributedDataParallel

            self.ddp = DistributedDataParallel(
                model, device_ids=[self.device.index] if self.device.type == "cuda" else None)
            self.train_view = DDPView(compile_module(self.ddp, tcfg.compile))
        else:
            self.train_view = compile_module(model, tcfg.compile)  # the model itself unless trainer.compile
        loader = self._loader()
        self.logger = MetricLogger(self.run_dir, tensorboard=tcfg.tensorboard, mlflow=tcfg.mlflow,
                                   config=self.config.model_dump(mode="json")) if main else None
        if self.logger is not None and resume:
            self.logger.csv.truncate_after(state["step"])
        self.progress = Progress(tcfg.max_steps, state["step"], tcfg.progress if main else "none")
        for cb in self.callbacks:
            cb.on_fit_start(self)
        self.window = {"loss": 0.0, "n": 0, "samples": 0, "t": time.perf_counter(), "extra": {}}
        self.last_metrics: dict = {}
        self.step = state["step"]
        self.started = time.perf_counter() - state.get("elapsed_s", 0.0)
        model.train()
        self.optimizer.zero_grad(set_to_none=True)
        finished = state["step"] >= tcfg.max_steps
        try:
            while not finished and not self.should_stop:
                if tcfg.max_epochs is not None and state["epoch"] >= tcfg.max_epochs:
                    break
                self.sampler.set_position(state["epoch"], state["position"])
                for batch in loader:
                    if self._micro_step(model, batch):
                        finished = True
                        break
                else:
                    state["epoch"] += 1
                    state["position"] = 0
        finally:
            self.progress.close()
            if self.logger is not None:
                self.logger.close()

    def _micro_step(self, model, batch) -> bool:
        """Forward/backward one micro-batch; at an accumulation boundary also step. True when training is done."""
        import torch

        tcfg, state = self.config.trainer, self.state
        batch = self.task.move_batch(batch, self.device)
        state["micro"] += 1
        state["position"] += 1
        boundary = state["micro"] % tcfg.accumulate == 0
        sync = (contextlib.nullcontext() if (boundary or not self.dist.enabled) else self.ddp.no_sync())
        with sync:
            with torch.autocast(self.device.type, dtype=self.autocast_dtype, enabled=self.autocast_dtype is not None):
                step = step_result(self.task.training_step(self.train_view, batch, self.prepared), self.task)
                loss, extra, outputs = step.loss, dict(step.metrics), step.outputs
                if self.teacher is not None:
                    loss = self._distill(batch, loss, outputs, extra)
            if not torch.isfinite(loss.detach()):
                raise FloatingPointError(f"loss is {loss.item()} at step {state['step'] + 1}")
            self.scaler.scale(loss / tcfg.accumulate).backward()
        w = self.window
        w["loss"] += float(loss.detach())
        w["n"] += 1
        w["samples"] += tcfg.batch_size
        for k, v in extra.items():
            w["extra"][k] = w["extra"].get(k, 0.0) + float(v)
        if not boundary:
            return False
        self._optimizer_step(model)
        return self._after_step(float(loss.detach()))

    def _distill(self, batch, task_loss, student_outputs, extra: dict):
        """Mix the task loss with the teacher-matching term (teacher in eval mode under no_grad)."""
        import torch

        from .distill import distill_loss

        d = self.config.distill
        kind = d.kind if d.kind != "auto" else self.task.distill_loss
        if student_outputs is None:
            student_outputs = self.task.distill_outputs(self.train_view, batch, self.prepared)
        with torch.no_grad():
            teacher_outputs = self.task.distill_outputs(self.teacher.model, batch, self.teacher.prepared)
        match = distill_loss(student_outputs, teacher_outputs, kind, d.temperature)
        extra["task_loss"] = float(task_loss.detach())
        extra["distill_loss"] = float(match.detach())
        return (1 - d.alpha) * task_loss + d.alpha * match

    def _optimizer_step(self, model) -> None:
        import torch

        tcfg = self.config.trainer
        if tcfg.clip_grad_norm:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(model.parameters(), tcfg.clip_grad_norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        self.schedule.step()
        self.state["step"] += 1
        self.step = self.state["step"]

    def _after_step(self, last_loss: float) -> bool:
        """Log, validate, checkpoint and run callbacks after optimizer step ``self.step``; True when done."""
        tcfg, state, step = self.config.trainer, self.state, self.step
        state["elapsed_s"] = time.perf_counter() - self.started
        row: dict = {}
        if step % tcfg.log_every == 0 or step == tcfg.max_steps:
            row.update(self._training_logs())
        improved = False
        if step % tcfg.val_every == 0 or step == tcfg.max_steps:
            improved = self._validate(row)
        if row and self.logger is not None:
            self.logger.log(step, {"time_s": round(state["elapsed_s"], 3), **row})
        done = step >= tcfg.max_steps or self.should_stop
        if improved and self.dist.is_main:
            runs.write_best(self.run_dir, step, self.monitor, state["best"])
        if improved or done or step % tcfg.checkpoint_every == 0:
            self._save(step)
        for cb in self.callbacks:
            cb.on_step_end(self, step, {"loss": last_loss})
        if self.should_stop and not done:  # a callback asked to stop
            self._save(step)
            done = True
        return done

    def _training_logs(self) -> dict:
        w = self.window
        elapsed = time.perf_counter() - w["t"]
        logs = {"loss": w["loss"] / w["n"], **{k: v / w["n"] for k, v in w["extra"].items()}}
        logs = mean_across_ranks(self.dist, logs)
        row = dict(epoch=self.state["epoch"], lr=self.optimizer.param_groups[0]["lr"], **logs,
                   samples_per_s=w["samples"] / max(elapsed, 1e-9))
        self.progress.update(self.step, {"loss": logs["loss"], "lr": row["lr"], "samples/s": row["samples_per_s"]})
        self.window = {"loss": 0.0, "n": 0, "samples": 0, "t": time.perf_counter(), "extra": {}}
        return row

    def evaluate_split(self, model, split: str) -> dict | None:
        """Rank 0 evaluates ``split`` in eval mode under no_grad with isolated RNG; broadcast to all ranks."""
        import torch

        dataset = self.prepared.split(split)
        if dataset is None:
            return None
        metrics = None
        if self.dist.is_main:
            was_training = model.training
            model.eval()
            with torch.no_grad(), isolated_rng():
                metrics = {k: float(v) for k, v in self.task.evaluate(model, dataset, self.prepared).items()}
            model.train(was_training)
        return broadcast_object(self.dist, metrics)

    def _validate(self, row: dict) -> bool:
        state, tcfg = self.state, self.config.trainer
        metrics = self.evaluate_split(self.model, "val")
        if not metrics:
            return False
        self.last_metrics = metrics
        row.update(epoch=state["epoch"], **{f"val_{k}": v for k, v in metrics.items()})
        value = metrics.get(self.monitor)
        if value is None:
            raise UserError(f"trainer.monitor: {self.monitor!r} is not among the validation metrics ({', '.join(metrics)})")
        self.schedule.validation(value)
        best, improved = state["best"], False
        if best is None or (value < best if self.mode == "min" else value > best):
            state["best"], state["bad_evals"], improved = value, 0, True
        else:
            state["bad_evals"] += 1
        self.progress.message(f"step {self.step}: " + "  ".join(f"{k} {v:.4g}" for k, v in metrics.items()))
        for cb in self.callbacks:
            cb.on_validation_end(self, self.step, metrics)
        if tcfg.early_stopping_patience and state["bad_evals"] >= tcfg.early_stopping_patience:
            self.progress.message(f"early stopping: {self.monitor} has not improved for {state['bad_evals']} validations")
            self.should_stop = True
        return improved

    def _save(self, step: int) -> None:
        weights, meta = self._model_weights(self.model)
        rngs = gather_objects(self.dist, rng_state())
        if self.dist.is_main:
            payload = {"optimizer": self.optimizer.state_dict(), "schedule": self.schedule.state_dict(),
                       "scaler": self.scaler.state_dict() if self.use_scaler else None, "rng": rngs,
                       "progress": dict(self.state)}
            path = runs.save_checkpoint(self.run_dir, step, weights, payload,
                                        metadata={**meta, "adapter": self.adapter or ""})
            runs.apply_retention(self.run_dir, self.config.trainer.keep_last)
            for cb in self.callbacks:
                cb.on_checkpoint(self, step, path)
        barrier(self.dist)

    def _summarise(self, model) -> dict:
        state = self.state
        summary = {"run_dir": str(self.run_dir), "steps": state["step"], "epochs": state["epoch"],
                   "monitor": self.monitor, "best": state["best"], "val": self.last_metrics,
                   "train_seconds": round(state.get("elapsed_s", 0.0), 1)}
        if self.dist.is_main:
            summary.update(records.finish(self, model))
            runs.RunDir(self.run_dir).write_summary(summary)
            records.write_card_safely(self.run_dir, self.task, self.model, self.prepared)
        summary = broadcast_object(self.dist, summary)
        for cb in self.callbacks:
            cb.on_fit_end(self, summary)
        return summary
