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
import json
import random
import time
import warnings
from pathlib import Path

from ..config import config_to_yaml
from ..errors import UserError
from ..fileio import atomic_write_text
from . import checkpoint as ckpt
from .callbacks import Callback
from .distributed import (
    DistInfo,
    barrier,
    broadcast_object,
    gather_objects,
    init_distributed,
    mean_across_ranks,
    shutdown,
)
from .logging import MetricLogger, Progress
from .optim import Schedule, build_optimizer
from .sampler import IndexedItems, ResumableBatchSampler, SeededItems

# Config fields that may change between a run and its resume without breaking exactness.
RESUME_MAY_CHANGE = {
    "trainer.max_steps", "trainer.max_epochs", "trainer.log_every", "trainer.keep_last",
    "trainer.num_workers", "trainer.device", "trainer.progress", "trainer.tensorboard",
    "trainer.mlflow", "trainer.early_stopping_patience", "trainer.eval_batch_size",
}


def resolve_device(name: str, local_rank: int = 0):
    import torch

    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UserError("--device cuda: no CUDA device is available here; use --device cpu")
        if name == "cuda":
            name = f"cuda:{local_rank}"
    elif name != "cpu":
        raise UserError(f"--device {name!r}: expected cpu, cuda, cuda:N or auto")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict:
    import numpy as np
    import torch

    np_state = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy_keys": torch.from_numpy(np_state[1].astype("int64")),
        "numpy_pos": int(np_state[2]),
        "numpy_gauss": [int(np_state[3]), float(np_state[4])],
        "python": list(_py_state_to_list(random.getstate())),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _py_state_to_list(state):
    version, internal, gauss = state
    return [version, list(internal), gauss]


def set_rng_state(state: dict) -> None:
    import numpy as np
    import torch

    torch.set_rng_state(state["torch"])
    np.random.set_state(("MT19937", state["numpy_keys"].numpy().astype("uint32"), state["numpy_pos"],
                         int(state["numpy_gauss"][0]), float(state["numpy_gauss"][1])))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


@contextlib.contextmanager
def isolated_rng():
    """Run a block (e.g. validation) without disturbing any global RNG."""
    import numpy as np
    import torch

    py, npy = random.getstate(), np.random.get_state()
    with torch.random.fork_rng(devices=list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []):
        try:
            yield
        finally:
            random.setstate(py)
            np.random.set_state(npy)


def config_differences(old: dict, new: dict, prefix: str = "") -> list[str]:
    diffs = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        name = f"{prefix}{key}"
        if isinstance(a, dict) and isinstance(b, dict):
            diffs += config_differences(a, b, name + ".")
        elif a != b:
            diffs.append(name)
    return diffs


class Trainer:
    """Trains a task's model; see the module docstring."""

    def __init__(self, task, config, run_dir: str | Path, *, callbacks=(), adapter: str | None = None,
                 init_from: str | Path | None = None, run_info: dict | None = None):
        self.task, self.config, self.run_dir = task, config, Path(run_dir)
        self.callbacks: list[Callback] = list(callbacks)
        self.adapter, self.init_from = adapter, init_from
        self.run_info = dict(run_info or {})
        self.should_stop = False
        self.dist = DistInfo()
        self.model = None
        self.step = 0

    # --- set-up ---------------------------------------------------------------------
    def _build_model(self):

        seed_everything(self.config.trainer.seed)
        model = self.task.build_model(self.config)
        if self.init_from is not None:
            from ..api import load_base_weights

            load_base_weights(self.task, model, self.init_from)
        if self.adapter:
            from ..adapters import apply_adapter

            report = apply_adapter(model, self.adapter)
            if self.dist.is_main:
                print(str(report), flush=True)
        return model.to(self.device)

    def _model_weights(self, model) -> tuple[dict, dict]:
        if self.adapter:
            from ..adapters import adapter_checkpoint

            return adapter_checkpoint(model)
        return model.state_dict(), {}

    def _load_model_weights(self, model, weights: dict) -> None:
        if self.adapter:
            from ..adapters import load_adapter_checkpoint

            load_adapter_checkpoint(model, weights)
        else:
            model.load_state_dict(weights, strict=True)

    def _check_resume_config(self) -> None:
        import yaml

        saved = self.run_dir / "config.yaml"
        if not saved.is_file():
            raise UserError(f"--resume {self.run_dir}: config.yaml is missing; not a sigplex run directory")
        old = yaml.safe_load(saved.read_text()) or {}
        new = self.config.model_dump(mode="json")
        changed = [d for d in config_differences(old, new) if d not in RESUME_MAY_CHANGE]
        if changed:
            raise UserError(
                f"--resume {self.run_dir}: the config differs in {', '.join(changed)}, which would break an "
                "exact resume; start a new run (--out) or restore those values"
            )

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
        try:
            return self._fit(data, resume)
        finally:
            shutdown(self.dist)

    def _fit(self, data, resume):
        import torch
        from torch.utils.data import DataLoader

        main = self.dist.is_main
        splits = self.task.build_data(self.config, Path(data) if data else None)
        if splits.train is None or len(splits.train) == 0:
            raise UserError("the training set is empty")
        self.config = self.task.configure(self.config, splits)
        tcfg = self.config.trainer
        monitor = tcfg.monitor or self.task.monitor
        mode = tcfg.monitor_mode or self.task.monitor_mode
        if resume:
            self._check_resume_config()
        elif main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            atomic_write_text(self.run_dir / "config.yaml", config_to_yaml(self.config))
            atomic_write_text(self.run_dir / "run.json", json.dumps(
                {**self.run_info, "adapter": self.adapter,
                 "init_from": str(self.init_from) if self.init_from else None,
                 "created": time.strftime("%Y-%m-%dT%H:%M:%S")}, indent=1))
        barrier(self.dist)

        model = self._build_model()
        self.model = model
        optimizer = build_optimizer(model.parameters(), self.config.optim)
        schedule = Schedule(optimizer, self.config.optim, tcfg.max_steps, mode)
        use_scaler = tcfg.precision == "fp16"
        scaler = torch.amp.GradScaler(self.device.type, enabled=use_scaler)
        autocast_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(tcfg.precision)

        state = {"step": 0, "epoch": 0, "position": 0, "best": None, "bad_evals": 0, "micro": 0}
        if resume:
            last = ckpt.latest_valid_checkpoint(self.run_dir)
            if last is None:
                raise UserError(f"--resume {self.run_dir}: no valid checkpoint to resume from")
            weights, _meta = ckpt.load_checkpoint_weights(last)
            self._load_model_weights(model, weights)
            saved = ckpt.load_state(last)
            optimizer.load_state_dict(saved["optimizer"])
            schedule.load_state_dict(saved["schedule"])
            if use_scaler and saved.get("scaler"):
                scaler.load_state_dict(saved["scaler"])
            rngs = saved["rng"]
            if len(rngs) != self.dist.world_size:
                warnings.warn(f"resuming with {self.dist.world_size} processes, saved with {len(rngs)}: "
                              "random streams will differ from an uninterrupted run", stacklevel=2)
            set_rng_state(rngs[min(self.dist.rank, len(rngs) - 1)])
            state.update(saved["progress"])
            if main:
                print(f"resumed from {last} (step {state['step']})", flush=True)

        ddp_model = model
        if self.dist.enabled:
            from torch.nn.parallel import DistributedDataParallel

            ddp_model = DistributedDataParallel(
                model, device_ids=[self.device.index] if self.device.type == "cuda" else None)

        sampler = ResumableBatchSampler(len(splits.train), tcfg.batch_size, tcfg.seed, drop_last=tcfg.drop_last,
                                        rank=self.dist.rank, world_size=self.dist.world_size)
        items = (SeededItems(splits.train, self.task.seed_item) if getattr(self.task, "random_items", True)
                 else IndexedItems(splits.train))
        loader = DataLoader(items, batch_sampler=sampler,
                            collate_fn=self.task.collate, num_workers=tcfg.num_workers,
                            generator=torch.Generator().manual_seed(tcfg.seed),
                            pin_memory=self.device.type == "cuda")

        logger = MetricLogger(self.run_dir, tensorboard=tcfg.tensorboard, mlflow=tcfg.mlflow,
                              config=self.config.model_dump(mode="json")) if main else None
        if logger is not None and resume:
            logger.csv.truncate_after(state["step"])
        progress = Progress(tcfg.max_steps, state["step"], tcfg.progress if main else "none")
        for cb in self.callbacks:
            cb.on_fit_start(self)

        window = {"loss": 0.0, "n": 0, "samples": 0, "t": time.perf_counter()}
        extra_sum: dict[str, float] = {}
        last_metrics: dict = {}
        self.step = state["step"]

        def validate() -> dict:
            if splits.val is None:
                return {}
            metrics = None
            if main:
                model.eval()
                with torch.no_grad(), isolated_rng():
                    metrics = {k: float(v) for k, v in self.task.evaluate(model, splits.val, self.config).items()}
                model.train()
            return broadcast_object(self.dist, metrics)

        def save(step: int) -> None:
            weights, meta = self._model_weights(model)
            rngs = gather_objects(self.dist, rng_state())
            if main:
                payload = {"optimizer": optimizer.state_dict(), "schedule": schedule.state_dict(),
                           "scaler": scaler.state_dict() if use_scaler else None, "rng": rngs,
                           "progress": dict(state)}
                path = ckpt.save_checkpoint(self.run_dir, step, weights, payload,
                                            metadata={**meta, "adapter": self.adapter or ""})
                ckpt.apply_retention(self.run_dir, tcfg.keep_last)
                for cb in self.callbacks:
                    cb.on_checkpoint(self, step, path)
            barrier(self.dist)

        model.train()
        optimizer.zero_grad(set_to_none=True)
        finished = state["step"] >= tcfg.max_steps
        while not finished and not self.should_stop:
            if tcfg.max_epochs is not None and state["epoch"] >= tcfg.max_epochs:
                break
            sampler.set_position(state["epoch"], state["position"])
            for batch in loader:
                batch = self.task.move_batch(batch, self.device)
                state["micro"] += 1
                state["position"] += 1
                boundary = state["micro"] % tcfg.accumulate == 0
                sync = contextlib.nullcontext() if (boundary or not self.dist.enabled) else ddp_model.no_sync()
                with sync:
                    with torch.autocast(self.device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
                        out = self.task.training_step(ddp_model, batch, self.config)
                    loss, extra = (out if isinstance(out, tuple) else (out, {}))
                    if not torch.isfinite(loss.detach()):
                        raise FloatingPointError(f"loss is {loss.item()} at step {state['step'] + 1}")
                    scaler.scale(loss / tcfg.accumulate).backward()
                window["loss"] += float(loss.detach())
                window["n"] += 1
                window["samples"] += tcfg.batch_size
                for k, v in extra.items():
                    extra_sum[k] = extra_sum.get(k, 0.0) + float(v)
                if not boundary:
                    continue
                if tcfg.clip_grad_norm:
                    scaler.unscale_(optimizer)
                    torch.nn.utils.clip_grad_norm_(model.parameters(), tcfg.clip_grad_norm)
                scaler.step(optimizer)
                scaler.update()
                optimizer.zero_grad(set_to_none=True)
                schedule.step()
                state["step"] += 1
                step = self.step = state["step"]
                row: dict = {}
                if step % tcfg.log_every == 0 or step == tcfg.max_steps:
                    elapsed = time.perf_counter() - window["t"]
                    logs = {"loss": window["loss"] / window["n"],
                            **{k: v / window["n"] for k, v in extra_sum.items()}}
                    logs = mean_across_ranks(self.dist, logs)
                    row.update(epoch=state["epoch"], lr=optimizer.param_groups[0]["lr"], **logs,
                               samples_per_s=window["samples"] / max(elapsed, 1e-9))
                    progress.update(step, {"loss": logs["loss"], "lr": row["lr"],
                                           "samples/s": row["samples_per_s"]})
                    window = {"loss": 0.0, "n": 0, "samples": 0, "t": time.perf_counter()}
                    extra_sum = {}
                improved = False
                if step % tcfg.val_every == 0 or step == tcfg.max_steps:
                    metrics = validate()
                    if metrics:
                        last_metrics = metrics
                        row.update(epoch=state["epoch"], **{f"val_{k}": v for k, v in metrics.items()})
                        value = metrics.get(monitor)
                        if value is None:
                            raise UserError(f"trainer.monitor: {monitor!r} is not among the validation metrics "
                                            f"({', '.join(metrics)})")
                        schedule.validation(value)
                        best = state["best"]
                        if best is None or (value < best if mode == "min" else value > best):
                            state["best"], state["bad_evals"], improved = value, 0, True
                        else:
                            state["bad_evals"] += 1
                        progress.message(f"step {step}: " + "  ".join(f"{k} {v:.4g}" for k, v in metrics.items()))
                        for cb in self.callbacks:
                            cb.on_validation_end(self, step, metrics)
                        if tcfg.early_stopping_patience and state["bad_evals"] >= tcfg.early_stopping_patience:
                            progress.message(f"early stopping: {monitor} has not improved for "
                                             f"{state['bad_evals']} validations")
                            self.should_stop = True
                if row and logger is not None:
                    logger.log(step, {"time_s": round(time.time(), 3), **row})
                done = step >= tcfg.max_steps or self.should_stop
                if improved and main:
                    ckpt.write_best(self.run_dir, step, monitor, state["best"])
                if improved or done or step % tcfg.checkpoint_every == 0:
                    save(step)
                for cb in self.callbacks:
                    cb.on_step_end(self, step, {"loss": float(loss.detach())})
                if self.should_stop and not done:  # a callback asked to stop
                    save(step)
                    done = True
                if done:
                    finished = True
                    break
            else:
                state["epoch"] += 1
                state["position"] = 0
        progress.close()
        if logger is not None:
            logger.close()

        summary = {"run_dir": str(self.run_dir), "steps": state["step"], "epochs": state["epoch"],
                   "monitor": monitor, "best": state["best"], "val": last_metrics}
        if main:
            summary.update(self._finish(model, splits))
            atomic_write_text(self.run_dir / "summary.json", json.dumps(summary, indent=1, default=float))
        summary = broadcast_object(self.dist, summary)
        for cb in self.callbacks:
            cb.on_fit_end(self, summary)
        return summary

    def _finish(self, model, splits) -> dict:
        """Rank 0 after training: test metrics with the best weights, and the task's plots."""
        import torch

        out: dict = {}
        best_path = ckpt.pick_checkpoint(self.run_dir) if ckpt.list_checkpoints(self.run_dir) else None
        if best_path is not None:
            weights, _ = ckpt.load_checkpoint_weights(best_path)
            self._load_model_weights(model, weights)
            out["checkpoint"] = str(best_path)
        model.eval()
        with torch.no_grad(), isolated_rng():
            if splits.test is not None:
                out["test"] = {k: float(v) for k, v in self.task.evaluate(model, splits.test, self.config).items()}
            try:
                plots = self.task.plots(model, splits, self.config, self.run_dir)
                out["plots"] = [str(p) for p in plots or []]
            except Exception as exc:  # a failed plot must not lose a finished run
                warnings.warn(f"plots failed: {type(exc).__name__}: {exc}", stacklevel=2)
        return out
