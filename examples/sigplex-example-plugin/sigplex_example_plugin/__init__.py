"""sigplex example plugin: registers the ``denoise`` task (cheap: no torch import here)."""
from sigplex.core.plugins import hookimpl
from sigplex.core.task import TaskSpec


@hookimpl
def register_tasks(register):
    register(TaskSpec(
        name="denoise",
        description="Denoise 1-D signals (sums of sines + Gaussian noise) with a small conv net",
        factory="sigplex_example_plugin.task:DenoiseTask",
        requires=("numpy",),
        models=("sigplex_example_plugin.model",),
    ))
