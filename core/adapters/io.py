"""Adapter-only checkpoints: safetensors files holding adapter tensors, specs and a base fingerprint.

File layout: tensors are the adapter entries of ``model.state_dict()`` (e.g.
``blocks.0.attn.qkv.adapter_lora.A``) plus the base tensors training changed (trained norm
parameters, moved buffers: see :mod:`.norms`); metadata holds ``adapter_format``
(``sigplex-adapter/2``), ``adapter_specs`` (JSON list of spec strings with exact module names
as targets), ``adapter_norms`` (the norm rule: ``eval`` or ``train``), ``adapter_base_keys``
(JSON list of the base tensors saved) and ``adapter_base_fingerprint`` (:func:`base_fingerprint`
of the base model the adapters were trained on). Loading onto a base with another fingerprint
is a UserError naming the file. ``sigplex-adapter/1`` files (adapter tensors only) still load.
:func:`adapter_checkpoint` / :func:`load_adapter_checkpoint` give the same tensors and metadata
to a trainer that writes its own checkpoint files.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
from torch import nn

from ..errors import UserError, notify
from ..fileio import atomic_write_bytes
from .base import adapter_module_names, is_adapter_key, merged_stash
from .inject import AdapterReport, adapter_specs, apply_adapter, has_adapters, summary
from .norms import (
    base_modules,
    changed_base_state,
    norm_parameters,
    norm_rule,
    restore_base_state,
    tracks_statistics,
)
from .spec import parse_specs

FORMAT = "sigplex-adapter/2"
#: formats this version reads: /1 saved adapter tensors only (base statistics drifted unsaved)
READABLE = ("sigplex-adapter/1", FORMAT)


def adapter_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The adapter entries of ``model.state_dict()`` (parameters and buffers), same key names."""
    names = adapter_module_names(model)
    return {k: v for k, v in model.state_dict().items() if is_adapter_key(k, names)}


def base_fingerprint(model: nn.Module, *, trained_norms: bool | None = None) -> str:
    """sha256 over the sorted base (non-adapter) parameter names, shapes, dtypes and values.

    Buffers (e.g. BatchNorm running stats) are left out, and so are the norm parameters when
    the norms train (``trained_norms``; default: the model's norm rule is ``train``): those are
    saved with the adapters. Cached on the model until a base parameter is replaced or modified.
    """
    if merged_stash(model):
        raise UserError("the model has merged LoRA adapters, so its base weights are not the base's; "
                        "call unmerge_adapters(model) first")
    names = adapter_module_names(model)
    if trained_norms is None:
        trained_norms = norm_rule(model) == "train"
    skip = {n for n, _ in norm_parameters(model)} if trained_norms else set()
    params = sorted((n, p) for n, p in model.named_parameters() if not is_adapter_key(n, names) and n not in skip)
    key = (trained_norms,) + tuple((n, p.data_ptr(), p._version, p.dtype, tuple(p.shape)) for n, p in params)
    cached = model.__dict__.get("_sigplex_base_fingerprint")
    if cached and cached[0] == key:
        return cached[1]
    digest = _fingerprint(params)
    model.__dict__["_sigplex_base_fingerprint"] = (key, digest)
    return digest


def _fingerprint(params) -> str:
    h = hashlib.sha256()
    for name, p in params:
        t = p.detach().to("cpu").contiguous().reshape(-1)
        h.update(f"{name}|{tuple(p.shape)}|{p.dtype}\n".encode())
        h.update(hashlib.sha256(t.view(torch.uint8).numpy().tobytes()).digest())
    return h.hexdigest()


def save_adapter(model: nn.Module, path, *, overwrite: bool = False) -> Path:
    """Write the model's adapters (only) to a safetensors file, atomically. Returns the path.

    An existing file is an error unless ``overwrite=True``.
    """
    from safetensors.torch import save

    path = Path(path)
    if not has_adapters(model):
        raise UserError(f"{path}: the model has no adapters to save"
                        + (" (they are merged; call unmerge_adapters first)" if merged_stash(model) else ""))
    if path.exists() and not overwrite:
        raise UserError(f"{path}: file exists; choose a new path or pass overwrite=True")
    if not path.parent.is_dir():
        raise UserError(f"{path}: folder {path.parent} does not exist")
    tensors, metadata = adapter_checkpoint(model)
    atomic_write_bytes(path, save(tensors, metadata=metadata))
    return path


def adapter_checkpoint(model: nn.Module) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """``(tensors, metadata)`` of the model's adapters, for a trainer's own checkpoint files.

    Tensors are CPU copies of :func:`adapter_state_dict` and of the base tensors training changed;
    metadata (str → str, safetensors style) holds ``adapter_format``, ``adapter_specs``,
    ``adapter_norms``, ``adapter_base_keys`` and ``adapter_base_fingerprint``.
    """
    if not has_adapters(model):
        raise UserError("the model has no adapters" + (" (they are merged; call unmerge_adapters first)"
                                                       if merged_stash(model) else ""))
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in adapter_state_dict(model).items()}
    base = changed_base_state(model)
    metadata = {
        "adapter_format": FORMAT,
        "adapter_specs": json.dumps(adapter_specs(model)),
        "adapter_norms": norm_rule(model),
        "adapter_base_keys": json.dumps(sorted(base)),
        "adapter_base_fingerprint": base_fingerprint(model),
    }
    return {**tensors, **base}, metadata


def read_adapter_file(path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Tensors and metadata of an adapter file; clear errors for missing or foreign files."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: adapter file not found")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError) as exc:
        raise UserError(f"{path}: not a readable safetensors file ({exc})") from None
    if meta.get("adapter_format") not in READABLE:
        raise UserError(f"{path}: not a sigplex adapter file (metadata adapter_format "
                        f"{meta.get('adapter_format')!r}, expected {FORMAT!r})")
    return tensors, meta


def load_adapter(model: nn.Module, path, *, check_base: bool = True) -> AdapterReport:
    """Load an adapter file into ``model`` (in place). Returns a report.

    A plain model first gets the saved specs applied; a model that already has adapters must
    have exactly the file's adapter keys. The base fingerprint must match the file's unless
    ``check_base=False``. Errors name the file.
    """
    tensors, meta = read_adapter_file(path)
    return load_adapter_checkpoint(model, tensors, meta=meta, source=str(path), check_base=check_base)


def load_adapter_checkpoint(model: nn.Module, weights: dict[str, torch.Tensor], *, meta: dict | None = None,
                            source: str = "adapter checkpoint", check_base: bool = True) -> AdapterReport:
    """Load adapter tensors (from :func:`adapter_checkpoint`) into ``model``, in place.

    With ``meta`` (its ``adapter_*`` entries): the base fingerprint is checked (unless
    ``check_base=False``) and, if the model has no adapters yet, the saved specs are applied
    first, under the saved norm rule. Without ``meta`` the model must already carry the adapters.
    Base tensors in ``weights`` (those training changed) are loaded too, and every other base
    buffer is put back to its value when the adapters were applied. ``source`` names the file in
    error messages.
    """
    meta = meta or {}
    specs = _saved_specs(meta, source)
    rule = meta.get("adapter_norms")
    if rule not in (None, "eval", "train"):
        raise UserError(f"{source}: metadata 'adapter_norms' is {rule!r}; expected 'eval' or 'train'")
    if has_adapters(model) and rule is not None and rule != norm_rule(model):
        raise UserError(f"{source}: saved with the base's norms {'trained' if rule == 'train' else 'held'}, but "
                        f"this model's norms are {'trained' if norm_rule(model) == 'train' else 'held'}; "
                        f"set adapter.train_norms={'true' if rule == 'train' else 'false'}")
    if check_base and meta.get("adapter_base_fingerprint"):
        fp = base_fingerprint(model, trained_norms=rule == "train" if rule else None)
        saved = meta["adapter_base_fingerprint"]
        if fp != saved:
            raise UserError(
                f"{source}: these adapters were trained on a different base model (base fingerprint "
                f"{saved[:12]}…, this model {fp[:12]}…); load the base weights they were trained on first "
                "(or pass check_base=False)")
    report = None
    if not has_adapters(model):
        if specs is None:
            raise UserError(f"{source}: the model has no adapters and no adapter specs were given; "
                            "apply_adapter(model, spec) first")
        try:
            report = apply_adapter(model, specs, train_norms=rule == "train")
        except UserError as exc:
            raise UserError(f"{source}: cannot apply the saved adapter specs to {type(model).__name__}: {exc}") from None
    full = model.state_dict()
    names = adapter_module_names(model)
    own = {k for k in full if is_adapter_key(k, names)}
    base_keys = _base_keys(full, names, weights, meta, source)
    adapter_weights = {k: v for k, v in weights.items() if k not in base_keys}
    missing = sorted(own - set(adapter_weights))
    extra = sorted(set(adapter_weights) - own)
    if missing or extra:
        raise UserError(f"{source}: adapter keys differ from the model's (missing {missing[:3]}, "
                        f"unexpected {extra[:3]}); load onto a plain model to apply the saved specs")
    for k, v in weights.items():
        if tuple(v.shape) != tuple(full[k].shape):
            raise UserError(f"{source}: {k}: shape {tuple(v.shape)} in the file, {tuple(full[k].shape)} in the model")
    model.load_state_dict(adapter_weights, strict=False)
    restore_base_state(model, {k: weights[k] for k in base_keys})
    if meta.get("adapter_format") == READABLE[0]:
        _warn_unsaved_statistics(model, source)
    if report is None:
        info = summary(model)
        now = adapter_specs(model)
        report = AdapterReport(info.trainable, info.total, info.adapters, now,
                               {s: list(parse_specs(s)[0].targets or ()) for s in now})
    return report


def _saved_specs(meta: dict, source: str) -> list[str] | None:
    if "adapter_specs" not in meta:
        return None
    try:
        specs = json.loads(meta["adapter_specs"])
        assert isinstance(specs, list) and all(isinstance(s, str) for s in specs)
    except (ValueError, AssertionError):
        raise UserError(f"{source}: metadata 'adapter_specs' is not a JSON list of spec strings") from None
    return specs


def _base_keys(full: dict, names: set[str], weights: dict, meta: dict, source: str) -> set[str]:
    """The base (non-adapter) keys among ``weights``: the metadata's list, else those outside the adapters
    (``full``: the model's state_dict, ``names``: its adapter module names)."""
    if "adapter_base_keys" in meta:
        try:
            keys = set(json.loads(meta["adapter_base_keys"]))
        except (ValueError, TypeError):
            raise UserError(f"{source}: metadata 'adapter_base_keys' is not a JSON list of tensor names") from None
    else:
        keys = {k for k in weights if not is_adapter_key(k, names)}
    wrong = sorted(k for k in keys if k not in weights or k not in full or is_adapter_key(k, names))
    if wrong:
        raise UserError(f"{source}: base tensor {wrong[0]!r} is listed but missing from the file or the model")
    return keys


def _warn_unsaved_statistics(model: nn.Module, source: str) -> None:
    """A sigplex-adapter/1 checkpoint of a model with running statistics: they drifted and were not saved."""
    norms = [name for name, m in base_modules(model) if tracks_statistics(m)]
    if norms:
        notify(f"{source}: saved before adapter runs kept their norm statistics; the statistics of {len(norms)} "
               f"norm layer(s) (e.g. {norms[0]!r}) moved during training and were not saved, so this model uses "
               "the base's and may not reproduce the run's scores exactly")
