"""Loading model weights strictly, from run directories, checkpoint folders or weights files.

Weights files are ``.safetensors`` or torch files read with ``weights_only=True``; a task may
map a foreign layout with ``load_weights(model, weights, source=...)``.
"""
from __future__ import annotations

from pathlib import Path

from .errors import UserError


def load_base_weights(task, model, source: str | Path, what: str = "--init-from", weights: dict | None = None) -> None:
    """Load full base weights into ``model`` from a run dir, a checkpoint folder or a weights file.

    ``weights``: the state dict of the weights file ``source``, when the caller has read it already.
    """
    from .fileio import load_weights_file
    from .train import checkpoint as ckpt

    source = Path(source)
    if weights is None and source.is_dir():
        path = ckpt.pick_checkpoint(source)
        weights, meta = ckpt.load_checkpoint_weights(path)
        if meta.get("adapter"):
            raise UserError(f"{what} {source}: holds adapter weights only; give the base model's run or weights")
    elif weights is None:
        weights = load_weights_file(source)
    loader = getattr(task, "load_weights", None)
    if loader is not None:
        loader(model, weights, source=str(source))
        return
    load_state_strict(model, weights, source)


def load_state_strict(model, weights: dict, source, what: str = "the model") -> None:
    """``model.load_state_dict(weights, strict=True)`` with one-line errors naming ``source`` and the keys."""
    expected = model.state_dict()
    missing, unexpected = sorted(set(expected) - set(weights)), sorted(set(weights) - set(expected))
    if missing or unexpected:
        raise UserError(f"{source}: weights do not fit {what} (missing {_few(missing)}; unexpected {_few(unexpected)})")
    try:
        model.load_state_dict(weights, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        raise UserError(f"{source}: weights do not fit {what}: {first[-1].strip() if first else exc}") from None


def _few(keys: list, n: int = 3) -> str:
    if not keys:
        return "none"
    more = f" and {len(keys) - n} more" if len(keys) > n else ""
    return ", ".join(keys[:n]) + more


def is_weights_file(path: str | Path) -> bool:
    """Whether ``path`` is a bare weights file, not a run directory or a file inside a run's checkpoint folder."""
    from .train.checkpoint import CHECKPOINTS

    p = Path(path)
    if not p.is_file():
        return False
    in_run = p.parent.parent.name == CHECKPOINTS and (p.parent.parent.parent / "run.json").is_file()
    return not in_run and not (p.name == "model.safetensors" and (p.parent / "meta.json").is_file())


def implied_settings(task, source: str | Path, weights: dict | None = None) -> dict:
    """The config a bare weights file implies (a nested dict), from the task's ``weights_config`` hook.

    ``weights``: the file's state dict, when the caller has read it already (else it is read here).

    A task that recognises foreign checkpoint layouts (speech_sep: ClearerVoice-Studio's MossFormer2_SS)
    returns the model settings that fit them, so ``--init-from``/``--checkpoint FILE`` need no
    ``--set model.*``. It sits just above the task's defaults: the user's ``--config`` and ``--set``
    still win.
    """
    from .config import set_dotted
    from .fileio import load_weights_file

    hook = getattr(task, "weights_config", None)
    if hook is None or not is_weights_file(source):
        return {}
    tree: dict = {}
    if weights is None:
        weights = load_weights_file(source)
    for key, value in (hook(weights, source=str(source)) or {}).items():
        set_dotted(tree, key.split("."), value)
    return tree
