"""Model cards: ``MODEL_CARD.md`` + ``card.json`` for every run, in the Hugging Face model-card layout.

A card says what the model is for and what it is not: task, model and parameter count, data
source and split sizes, validation and test metrics, training budget and machine, adapter,
licences of bundled data and weights, intended use and limitations. The text about use and
limits comes from the task (``Task.intended_use``, ``Task.limitations``, ``Task.data_license``).
The Trainer writes the card at the end of every run; ``platform card RUN`` regenerates it.
"""
from __future__ import annotations

from pathlib import Path

import yaml

from .device import machine
from .run import RunDir


def _split_size(dataset) -> int | None:
    try:
        return int(len(dataset))
    except Exception:
        return None


def build_card(run_dir: Path, *, task=None, model=None, prepared=None) -> dict:
    """The facts of a card as a dict (``card.json``)."""
    from . import __version__

    run = RunDir(run_dir)
    info = run.info if run.is_run() else {}
    summary = run.summary
    config = run.config_dict if run.config_file.is_file() else {}
    card = {
        "sigplex_version": __version__,
        "plugin": info.get("plugin"), "task": info.get("task"),
        "model": {"name": (config.get("model") or {}).get("name"), "config": config.get("model")},
        "data": {"source": info.get("data") or "embedded default data of the task"},
        "metrics": {"validation": summary.get("val") or {}, "test": summary.get("test") or {},
                    "monitor": summary.get("monitor"), "best": summary.get("best")},
        "training": {"steps": summary.get("steps"), "epochs": summary.get("epochs"),
                     "seconds": summary.get("train_seconds"), "batch_size": (config.get("trainer") or {}).get("batch_size"),
                     "precision": (config.get("trainer") or {}).get("precision"), "optim": config.get("optim"),
                     "init_from": info.get("init_from"), "created": info.get("created")},
        "adapter": info.get("adapter"),
        "machine": info.get("machine") or machine(),
    }
    if model is not None:
        card["model"]["class"] = f"{type(model).__module__}.{type(model).__name__}"
        card["model"]["parameters"] = int(sum(p.numel() for p in model.parameters()))
        card["model"]["trainable_parameters"] = int(sum(p.numel() for p in model.parameters() if p.requires_grad))
    if prepared is not None:
        card["data"]["splits"] = {s: _split_size(getattr(prepared, s)) for s in ("train", "val", "test")
                                  if getattr(prepared, s, None) is not None}
    if task is not None:
        card["intended_use"] = task.card.intended_use
        card["limitations"] = task.card.limitations
        card["license"] = {"data": task.card.data_license, "weights": "as the run's owner decides",
                           "code": "Apache-2.0 (sigplex)"}
    previous = run.card
    if previous is not None and task is None:  # regenerating without the task: keep its text
        for key in ("intended_use", "limitations", "license", "model", "data"):
            if key in previous and (key not in card or isinstance(card[key], dict)):
                merged = dict(previous[key]) if isinstance(previous[key], dict) else previous[key]
                if isinstance(merged, dict):
                    merged.update({k: v for k, v in card.get(key, {}).items() if v is not None})
                card[key] = merged
    return card


def _table(metrics: dict) -> str:
    if not metrics:
        return "_none recorded_\n"
    rows = "\n".join(f"| {k} | {v:.4g} |" if isinstance(v, (int, float)) else f"| {k} | {v} |" for k, v in metrics.items())
    return "| metric | value |\n|---|---:|\n" + rows + "\n"


def card_markdown(card: dict) -> str:
    """``MODEL_CARD.md``: YAML front matter (Hugging Face layout) and the sections a reviewer reads."""
    m, d, t = card.get("model", {}), card.get("data", {}), card.get("training", {})
    front = {"library_name": "sigplex", "tags": [t for t in ("sigplex", card.get("plugin"), card.get("task")) if t],
             "license": "other", "model_name": f"{card.get('plugin')}-{card.get('task')}-{m.get('name')}"}
    params = m.get("parameters")
    splits = d.get("splits") or {}
    lines = [
        "---", yaml.safe_dump(front, sort_keys=False).strip(), "---", "",
        f"# Model card: {card.get('plugin')} / {card.get('task')}", "",
        "## Model details", "",
        f"- Model: `{m.get('name')}`" + (f" (`{m.get('class')}`)" if m.get("class") else ""),
        f"- Parameters: {params:,}" if isinstance(params, int) else "- Parameters: unknown",
        f"- Adapter: `{card.get('adapter')}`" if card.get("adapter") else "- Adapter: none (all weights trained)",
        f"- Made with sigplex {card.get('sigplex_version')}", "",
        "## Intended use", "", card.get("intended_use") or "_The task gives no statement of intended use._", "",
        "## Limitations", "", card.get("limitations") or "_The task states no limitations; treat it as unvalidated._", "",
        "## Training data", "",
        f"- Source: {d.get('source')}",
        "- Split sizes: " + (", ".join(f"{k} {v}" for k, v in splits.items()) if splits else "not recorded"), "",
        "## Evaluation", "", "Validation (last validation of the run):", "",
        _table(card.get("metrics", {}).get("validation", {})),
        "Test (best checkpoint):", "", _table(card.get("metrics", {}).get("test", {})),
        "## Training budget", "",
        f"- Steps: {t.get('steps')}, epochs: {t.get('epochs')}, wall-clock: {t.get('seconds')} s",
        f"- Batch size: {t.get('batch_size')}, precision: {t.get('precision')}",
        f"- Machine: {card.get('machine', {}).get('processor')}, {card.get('machine', {}).get('cpu_count')} CPUs, "
        f"accelerator: {card.get('machine', {}).get('cuda') or 'none'}, torch {card.get('machine', {}).get('torch')}", "",
        "## Licences", "",
        f"- Bundled data: {card.get('license', {}).get('data') or 'not stated by the task'}",
        f"- Weights: {card.get('license', {}).get('weights', 'not stated')}",
        f"- Code: {card.get('license', {}).get('code', 'Apache-2.0 (sigplex)')}", "",
    ]
    return "\n".join(lines)


def write_card(run_dir: str | Path, *, task=None, model=None, prepared=None) -> Path:
    """Write ``MODEL_CARD.md`` and ``card.json`` into ``run_dir`` atomically; returns the markdown path."""
    run = RunDir(run_dir).require()
    card = build_card(run.path, task=task, model=model, prepared=prepared)
    run.write_card(card, card_markdown(card))
    return run.card_markdown
