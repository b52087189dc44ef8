"""Batch prediction for pipelines: many inputs, one model load, provenance sidecars, a manifest, resume.

``expand_inputs`` turns command-line arguments (files, folders, quoted globs, manifests) into
the task's inputs; :func:`predict_many` predicts each, isolates failures, skips outputs that
a previous run of the same model already wrote, writes ``<output>.json`` provenance beside
every file and ``manifest.jsonl`` (one record per input) in the output folder.

Exit codes of ``platform predict``: 0 every input succeeded (or was already done), 3 some
failed or are partial (the rest are written; failures are in the manifest), 2 every input failed
with a user error. An input is ``partial`` when its task wrote some outputs and not others
(:class:`~.errors.PartialOutput`): those written get their sidecars, and running the same command
again predicts it anew and completes it.
"""
from __future__ import annotations

import glob
import hashlib
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

from .errors import PartialOutput, UserError, first_line, one_line
from .fileio import atomic_write_text, deferred_sync, sha256_file, weights_sha256
from .manifest import ItemResult, ManifestWriter, input_key, shard_header, shard_of
from .outputs import check_suffix, output_files, write_outputs

SYNC_EVERY = 64  # inputs between os.sync() calls: outputs are renamed atomically, made durable in groups
_GLOB_CHARS = set("*?[")


@dataclass
class InputItem:
    """One input of a batch: its path, or the reason it cannot be used."""

    path: Path
    error: str | None = None


# --- inputs ----------------------------------------------------------------------------------
def _manifest_paths(path: Path) -> list[Path]:
    base = path.parent
    if path.name.lower().endswith(".manifest.txt"):
        lines = [ln.strip() for ln in path.read_text().splitlines()]
        entries = [ln for ln in lines if ln and not ln.startswith("#")]
    else:
        import csv

        with open(path, newline="") as fh:
            rows = list(csv.reader(fh))
        entries = [r[0].strip() for r in rows[1:] if r and r[0].strip()]
    return [p if p.is_absolute() else base / p for p in map(Path, entries)]


def _is_csv_manifest(path: Path) -> bool:
    if path.suffix.lower() != ".csv" or not path.is_file():
        return False
    with open(path, newline="", errors="replace") as fh:  # any bytes: only a header of 'path' makes a manifest
        first = fh.readline(4096)
    return first.split(",")[0].strip().strip('"').lower() == "path"


def _walk(task, folder: Path) -> list[Path]:
    """Inputs inside ``folder`` in sorted order; a folder that is itself an input is not entered."""
    found = []
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        here = Path(root)
        keep = []
        for d in dirs:
            if task.is_input(here / d) and task.input_kind == "folder":
                found.append(here / d)
            elif not d.startswith("."):
                keep.append(d)
        dirs[:] = keep
        if task.input_kind != "folder":
            found += [here / f for f in sorted(files) if not f.startswith(".") and task.is_input(here / f)]
    return found


def expand_inputs(task, args: Iterable[str | Path]) -> list[InputItem]:
    """Files, folders, quoted globs and manifests (``*.manifest.txt``, a CSV whose first header is ``path``) -> inputs."""
    items: list[InputItem] = []
    for raw in args:
        text = str(raw)
        path = Path(text)
        if not path.exists() and _GLOB_CHARS & set(text):
            matches = sorted(glob.glob(text, recursive=True))
            if not matches:
                items.append(InputItem(path, f"{text}: the pattern matches nothing"))
            for m in matches:
                p = Path(m)
                items += [InputItem(q) for q in (_walk(task, p) if p.is_dir() and not task.is_input(p) else [p])]
            continue
        if not path.exists():
            items.append(InputItem(path, f"{path}: no such file or folder"))
        elif path.is_file() and (path.name.lower().endswith(".manifest.txt") or _is_csv_manifest(path)):
            for p in _manifest_paths(path):
                items.append(InputItem(p) if p.exists() else InputItem(p, f"{p}: no such file or folder (from {path})"))
        elif path.is_dir() and not task.is_input(path):
            inner = _walk(task, path)
            if not inner:
                what = "case folders" if task.input_kind == "folder" else \
                    "files ending in " + (" or ".join(task.input_suffixes) or "any suffix")
                items.append(InputItem(path, f"{path}: holds no inputs for this task (expected {what})"))
            items += [InputItem(p) for p in inner]
        else:
            items.append(InputItem(path))
    seen, unique = set(), []
    for item in items:
        key = str(item.path.resolve()) if item.error is None else str(item.path)
        if key not in seen:
            seen.add(key)
            unique.append(item)
    return unique


def input_sha256(path: Path) -> str:
    """sha256 of a file, or of a folder's files (relative paths and contents, sorted)."""
    path = Path(path)
    if path.is_file():
        return sha256_file(path)
    h = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        h.update(str(f.relative_to(path)).encode())
        h.update(sha256_file(f).encode())
    return h.hexdigest()


def common_root(paths: list[Path]) -> Path:
    """The deepest folder containing every path (a single file's folder)."""
    resolved = [p.resolve() for p in paths]
    if len(resolved) == 1:
        return resolved[0].parent
    return Path(os.path.commonpath([str(p) for p in resolved]))


def output_for(task, inp: Path, root: Path, out_dir: Path) -> Path:
    """The output path mirroring ``inp`` under ``out_dir`` (relative to ``root``), with the task's output suffix."""
    rel = inp.resolve().relative_to(root)
    name = rel.name
    for suffix in sorted(task.input_suffixes, key=len, reverse=True):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
            break
    else:
        name = name.split(".")[0] if inp.is_file() and "." in name[1:] else name
    suffixes = task.output_suffixes
    # a task that declares no output suffix (contract v1) writes what it read: the input's suffix
    suffix = suffixes[0] if suffixes else rel.name[len(name):]
    return out_dir / rel.parent / f"{name}{suffix}"


# --- provenance ------------------------------------------------------------------------------
def config_sha256(config) -> str:
    data = config.model_dump(mode="json") if hasattr(config, "model_dump") else config
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


def model_provenance(predictor) -> dict:
    """The facts shared by every output of one predictor: versions, checkpoint sha256, config hash, device."""
    from importlib.metadata import PackageNotFoundError, version

    from . import __version__
    from .infer import model_device

    weights = None
    if predictor.checkpoint is not None:
        ck = Path(predictor.checkpoint)
        weights = ck / "model.safetensors" if ck.is_dir() else ck
    plugin_version = None
    try:
        from .plugins import get_plugin_manager

        plugin_version = get_plugin_manager().records[predictor.plugin].version or None
    except Exception:
        plugin_version = None
    try:
        sigplex_version = version("sigplex")
    except PackageNotFoundError:
        sigplex_version = __version__
    run_info = predictor.run.info if predictor.run is not None else {}
    return {
        "sigplex_version": sigplex_version,
        "plugin": predictor.plugin, "plugin_version": plugin_version,
        "task": predictor.task.name,
        "model": getattr(getattr(predictor.config, "model", None), "name", None),
        "checkpoint": predictor.source,
        "checkpoint_sha256": weights_sha256(weights) if weights is not None and weights.is_file() else None,
        "adapter": run_info.get("adapter"), "init_from": run_info.get("init_from"),
        "config_sha256": config_sha256(predictor.config),
        "device": str(model_device(predictor.model)),
        "engine": getattr(predictor, "engine", "torch"),
        "engine_choice": getattr(predictor, "engine_choice", None),  # --engine auto: the probe's measurements
    }


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def _same_model(record: dict, base: dict, sha: str | None) -> bool:
    keys = ("checkpoint_sha256", "config_sha256")
    return all(record.get(k) == base.get(k) for k in keys) and record.get("input_sha256") == sha


# --- the loop --------------------------------------------------------------------------------
@dataclass
class BatchPlan:
    """The inputs of one batch (this shard's), the folder their outputs mirror them below, and the manifest."""

    items: list[InputItem]
    root: Path
    output: Path
    out_dir: Path
    single_output: bool
    manifest: ManifestWriter | None = None


def plan_batch(task, inputs: Iterable[str | Path], output: str | Path, *, single_output: bool = False,
               shard: tuple[int, int] | None = None) -> BatchPlan:
    """Expand ``inputs``, take the share ``shard=(I, N)`` of them (decided on all of them, so outputs mirror
    the inputs below the same root in every shard), make ``output`` and start the manifest."""
    items = expand_inputs(task, inputs)
    usable = [i.path for i in items if i.error is None]
    root = common_root(usable) if usable else Path.cwd()
    header = None
    if shard is not None:
        keys = [input_key(i.path, root, i.error) for i in items]
        items = [i for i, k in zip(items, keys) if shard_of(k, shard[1]) == shard[0]]
        header = shard_header(keys, shard, len(items), task.combined_table)
    output = Path(output)
    out_dir = output.parent if single_output else output
    if not single_output:
        if output.exists() and not output.is_dir():
            raise UserError(f"--output {output}: is a file; with several inputs --output must be a folder")
        output.mkdir(parents=True, exist_ok=True)
    manifest = None if single_output else ManifestWriter(out_dir, header, task.combined_table)
    return BatchPlan(items, root, output, out_dir, single_output, manifest)


def predict_item(predictor, plan: BatchPlan, item: InputItem, base: dict, *, overwrite: bool = False,
                 hash_paths: bool = False) -> ItemResult:
    """Predict one input of ``plan`` and write its outputs and sidecars (a failure is recorded, not raised)."""
    return _one(predictor, predictor.task, predictor.prepared, item, plan.root, plan.output, plan.out_dir, base,
                overwrite, hash_paths, plan.single_output)


def predict_many(predictor, inputs: Iterable[str | Path], output: str | Path, *, overwrite: bool = False,
                 hash_paths: bool = False, progress: bool | None = None, single_output: bool = False,
                 shard: tuple[int, int] | None = None) -> Iterator[ItemResult]:
    """Predict every input, yielding one :class:`ItemResult` each (see the module docstring).

    ``output`` is a folder (outputs mirror the inputs' paths below their common root), or with
    ``single_output=True`` and one input, the output file itself. ``shard=(I, N)`` predicts share I
    of N of the expanded inputs and writes ``manifest.shard-I-of-N.jsonl`` (:mod:`sigplex.core.manifest`).
    """
    plan = plan_batch(predictor.task, inputs, output, single_output=single_output, shard=shard)
    base = model_provenance(predictor)
    bar = _progress(len(plan.items), progress)
    since_sync = 0
    try:
        for item in plan.items:
            with deferred_sync():  # outputs and sidecars: atomic renames, synced once per SYNC_EVERY inputs
                result = predict_item(predictor, plan, item, base, overwrite=overwrite, hash_paths=hash_paths)
            since_sync += 1
            if since_sync >= SYNC_EVERY:
                os.sync()
                since_sync = 0
            if plan.manifest is not None:
                plan.manifest.add(result)
            if bar is not None:
                bar.advance(bar.task_ids[0])
            yield result
    finally:
        os.sync()
        if bar is not None:
            bar.stop()
        if plan.manifest is not None:
            plan.manifest.close()


def _progress(total: int, enabled: bool | None):
    if enabled is None:
        enabled = sys.stderr.isatty()
    if not enabled or total < 2:
        return None
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    bar = Progress(TextColumn("predict"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), transient=False)
    bar.start()
    bar.add_task("predict", total=total)
    return bar


def shown_input(path: Path, hash_paths: bool) -> str:
    """An input as the manifest and sidecars name it: its path, or 16 hex digits of the path's sha256."""
    return hashlib.sha256(str(Path(path).resolve()).encode()).hexdigest()[:16] if hash_paths else str(path)


def _one(predictor, task, prepared, item: InputItem, root, output, out_dir, base, overwrite, hash_paths,
         single_output) -> ItemResult:
    shown = shown_input(item.path, hash_paths)
    result = ItemResult(input=shown)
    t0 = time.perf_counter()
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    files: list[Path] = []
    before: set[Path] = set()
    try:
        if item.error:
            raise UserError(item.error)
        result.sha256 = input_sha256(item.path)
        target = output if single_output else output_for(task, item.path, root, out_dir)
        files = output_files(task, target, prepared, item.path)
        existing = [f for f in files if f.exists()]
        before = set(existing)  # never removed on a failure: they are not this attempt's
        if existing and not overwrite:
            done = [json.loads(_sidecar(f).read_text()) if _sidecar(f).is_file() else {} for f in existing]
            ours = all(_same_model(d, base, result.sha256) for d in done)
            if ours and len(existing) == len(files):
                result.status, result.outputs = "skipped", [str(f) for f in files]
                return result
            if not ours:  # ours with some missing is a partial earlier run: predicted again below to complete it
                raise UserError(f"{existing[0]}: already exists from another model or input; pass --overwrite")
        check_suffix(task, target)
        prediction = predictor.predict(item.path)
        partial = None
        try:
            written = write_outputs(task, prediction, target, prepared, files, source=item.path)
        except PartialOutput as exc:  # keep what was written (with sidecars); the reason goes in the manifest
            written, partial = [Path(f) for f in exc.written], exc
        seconds = time.perf_counter() - t0
        record = {**base, "input": shown, "input_sha256": result.sha256, "started": started,
                  "seconds": round(seconds, 4), "choices": _choices(task, prediction)}
        for f in written:
            atomic_write_text(_sidecar(f), json.dumps({**record, "output": f.name}, indent=1, default=str))
        result.outputs = [str(f) for f in written]
        if partial is not None:
            result.status, result.error, result.error_type = "partial", one_line(partial.reason), "PartialOutput"
    except UserError as exc:
        result.status, result.error, result.error_type = "failed", one_line(exc), "UserError"
    except Exception as exc:  # one bad input must not stop the batch
        result.status, result.error = "failed", f"{type(exc).__name__}: {first_line(exc)}"
        result.error_type = type(exc).__name__
    finally:
        result.seconds = round(time.perf_counter() - t0, 4)
    if result.status == "failed":  # a failed input leaves no output of its own behind
        for f in files:
            if f not in before:
                f.unlink(missing_ok=True)
                _sidecar(f).unlink(missing_ok=True)
    return result


def predict_one(predictor, source: str | Path, output: str | Path, *, overwrite: bool = False,
                hash_paths: bool = False) -> ItemResult:
    """Predict one input into the output file ``output`` (with sidecars); a failure is raised, not recorded
    (a partial result as :class:`~.errors.PartialOutput` carrying the files that were written)."""
    check_suffix(predictor.task, Path(output))
    (result,) = predict_many(predictor, [source], output, overwrite=overwrite, hash_paths=hash_paths,
                             progress=False, single_output=True)
    if result.status == "failed":
        raise UserError(result.error) if result.error_type == "UserError" else RuntimeError(result.error)
    if result.status == "partial":
        raise PartialOutput(result.error, [Path(p) for p in result.outputs])
    return result


def _choices(task, prediction) -> dict:
    """Choices the task made on the input (e.g. which DICOM series): ``Task.prediction_provenance``."""
    return dict(task.prediction_provenance(prediction))
