"""sigplex.core: the domain-free core — plugins, config, Trainer, ops, backbones, adapters, CLI.

The Python API mirrors the CLI and is imported lazily (``import sigplex.core`` loads neither
torch nor any domain library):

* ``fit(plugin, ...) -> RunDir`` — ``platform train``
* ``load_run(run_dir) -> Predictor`` — a trained model; ``.predict(x)``, ``.evaluate()``
* ``evaluate(...)``, ``predict(...)``, ``export(...)`` — the other commands
* ``load_pretrained(plugin)`` — a task's shipped weights; ``Predictor.predict_many(inputs, out_dir)`` — batches
* ``cross_validate(plugin, out=...)`` — one run per fold of the task's ``folds``
* ``get_plugin_manager()`` — what ``platform plugins list`` shows
"""
from __future__ import annotations

__version__ = "0.1.0"

_LAZY = {
    "fit": "api", "load_run": "api", "evaluate": "api", "predict": "api", "export": "api",
    "Predictor": "predictor", "RunDir": "run", "load_pretrained": "api", "load_predictor": "api",
    "cross_validate": "api", "load_task": "api", "Prepared": "task", "Pretrained": "task",
    "get_plugin_manager": "plugins", "PluginManager": "plugins", "hookimpl": "plugins",
    "TaskSpec": "task", "Task": "task", "DataSplits": "task",
    "TaskConfig": "config", "Section": "config", "resolve_config": "config",
    "UserError": "errors", "Trainer": "train", "Callback": "train",
    "register_model": "models", "create_model": "models", "list_models": "models",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        module = importlib.import_module(f".{_LAZY[name]}", __name__)
        value = getattr(module, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'sigplex.core' has no attribute {name!r}")


def __dir__():
    return __all__
