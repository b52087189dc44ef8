"""eeg_conformer: DBConformer EEG decoding with MNE (motor imagery and seizure detection).

Registration only (no torch or mne import here): the tasks live in
:mod:`sigplex.plugins.eeg_conformer.task`, the model in :mod:`.dbconformer`, the MNE readers,
preprocessing, Euclidean alignment and simulated default data in :mod:`sigplex.datasets.eeg`.
"""
from sigplex.core.plugins import hookimpl
from sigplex.core.task import TaskSpec

REQUIRES = ("mne",)
MODELS = ("sigplex.plugins.eeg_conformer.dbconformer",)


@hookimpl
def register_tasks(register):
    register(TaskSpec(
        name="motor_imagery",
        description="EEG motor-imagery decoding with DBConformer (MNE readers, LOSO/within/k-fold)",
        factory="sigplex.plugins.eeg_conformer.task:MotorImageryTask",
        requires=REQUIRES, extra="eeg", models=MODELS,
    ))
    register(TaskSpec(
        name="seizure",
        description="EEG seizure detection on sliding windows with DBConformer (sensitivity, AUROC, FA/h)",
        factory="sigplex.plugins.eeg_conformer.task:SeizureTask",
        requires=REQUIRES, extra="eeg", models=MODELS,
    ))
