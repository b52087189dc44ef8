"""speech_sep: monaural speech separation with MossFormer2 / MossFormer and long-audio inference.

Registration only (nothing heavy is imported here): the ``separate`` task lives in
:mod:`sigplex.plugins.speech_sep.task`, the models in :mod:`.mossformer2` and :mod:`.mossformer`,
and the audio readers in :mod:`sigplex.datasets.audio`.
"""
from sigplex.core.plugins import hookimpl
from sigplex.core.task import TaskSpec

MODELS = ("sigplex.plugins.speech_sep.mossformer", "sigplex.plugins.speech_sep.mossformer2")


@hookimpl
def register_tasks(register):
    register(TaskSpec(
        name="separate",
        description="Monaural speech separation (MossFormer2, SI-SDR + PIT) with chunked long-audio inference",
        factory="sigplex.plugins.speech_sep.task:SeparationTask",
        requires=("torchaudio", "soundfile"),
        extra="audio",
        models=MODELS,
    ))
