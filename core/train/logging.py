"""Metric logging: metrics.csv always, TensorBoard/MLflow when installed, and progress output.

``metrics.csv`` has one row per logged step and a stable header: when a new column appears
(e.g. the first validation), the file is rewritten atomically with the widened header.
On a TTY a rich progress bar shows loss, throughput and ETA; otherwise plain lines.
"""
from __future__ import annotations

import csv
import io
import sys
import time
from pathlib import Path

from ..fileio import atomic_write_text
from ..run import RunDir

LEADING = ["step", "epoch", "time_s", "lr", "loss", "samples_per_s"]


class MetricsCSV:
    """Append-only CSV of per-step metrics with a header that only grows."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.columns: list[str] = []
        self.rows: list[dict] = []
        if self.path.is_file():
            with open(self.path, newline="") as fh:
                reader = csv.DictReader(fh)
                self.columns = list(reader.fieldnames or [])
                self.rows = [dict(r) for r in reader]

    def truncate_after(self, step: int) -> None:
        """Drop rows logged after ``step`` (they will be logged again on resume)."""
        kept = [r for r in self.rows if int(float(r.get("step") or 0)) <= step]
        if len(kept) != len(self.rows):
            self.rows = kept
            self._rewrite()

    def log(self, row: dict) -> None:
        row = {k: _fmt(v) for k, v in row.items()}
        new = [k for k in row if k not in self.columns]
        self.rows.append(row)
        if new or not self.path.exists():
            ordered = [c for c in LEADING if c in self.columns or c in row]
            rest = [c for c in self.columns + new if c not in ordered]
            self.columns = ordered + rest
            self._rewrite()
            return
        with open(self.path, "a", newline="") as fh:
            csv.DictWriter(fh, self.columns).writerow(row)

    def _rewrite(self) -> None:
        buf = io.StringIO()
        writer = csv.DictWriter(buf, self.columns)
        writer.writeheader()
        for r in self.rows:
            writer.writerow({c: r.get(c, "") for c in self.columns})
        atomic_write_text(self.path, buf.getvalue())


def _fmt(v):
    if isinstance(v, float):
        return f"{v:.6g}"
    return v


class MetricLogger:
    """Fans scalar metrics out to the CSV and, when available and enabled, TensorBoard and MLflow."""

    def __init__(self, run_dir: Path, *, tensorboard: bool = True, mlflow: bool = False, config: dict | None = None):
        run = RunDir(run_dir)
        self.csv = MetricsCSV(run.metrics_csv)
        self.tb = None
        self.mlflow = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(str(run.tensorboard))
            except Exception:  # tensorboard not installed
                self.tb = None
        if mlflow:
            try:
                import mlflow as _mlflow

                _mlflow.start_run(run_name=Path(run_dir).name)
                if config:
                    _mlflow.log_params(_flatten(config))
                self.mlflow = _mlflow
            except Exception:
                self.mlflow = None

    def log(self, step: int, row: dict) -> None:
        self.csv.log({"step": step, **row})
        scalars = {k: v for k, v in row.items() if isinstance(v, (int, float)) and k not in ("step",)}
        if self.tb is not None:
            for k, v in scalars.items():
                self.tb.add_scalar(k, v, step)
            self.tb.flush()
        if self.mlflow is not None:
            self.mlflow.log_metrics({k: float(v) for k, v in scalars.items()}, step=step)

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()
        if self.mlflow is not None:
            self.mlflow.end_run()


def _flatten(tree: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in tree.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


class Progress:
    """A rich progress bar on a TTY, plain periodic lines otherwise, or nothing."""

    def __init__(self, total: int, start: int = 0, mode: str = "auto", stream=None):
        self.stream = stream or sys.stderr
        if mode == "auto":
            mode = "bar" if getattr(self.stream, "isatty", lambda: False)() else "lines"
        self.mode, self.total, self.start = mode, total, start
        self.t0 = time.perf_counter()
        self.bar = None
        if mode == "bar":
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
            from rich.progress import Progress as RichProgress

            self.bar = RichProgress(TextColumn("train"), BarColumn(), MofNCompleteColumn(),
                                    TextColumn("{task.fields[info]}"), TimeRemainingColumn(), transient=False)
            self.bar.start()
            self.task = self.bar.add_task("train", total=total, completed=start, info="")

    def update(self, step: int, info: dict) -> None:
        text = "  ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in info.items())
        if self.bar is not None:
            self.bar.update(self.task, completed=step, info=text)
        elif self.mode == "lines":
            elapsed = time.perf_counter() - self.t0
            done = max(step - self.start, 1)
            eta = elapsed / done * (self.total - step)
            print(f"step {step}/{self.total}  {text}  eta {eta:.0f}s", file=self.stream, flush=True)

    def message(self, text: str) -> None:
        if self.bar is not None:
            self.bar.console.print(text)
        elif self.mode != "none":
            print(text, file=self.stream, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
