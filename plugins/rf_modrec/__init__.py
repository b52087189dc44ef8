"""rf_modrec: automatic modulation recognition of IQ frames with ClST, its distilled students and VT-CNN2.

Registration only (nothing heavy is imported here): the ``classify`` task lives in
:mod:`sigplex.plugins.rf_modrec.task`; the models in :mod:`.clst` (ClST), :mod:`.students`
(KD-CNN, KD-MobileNet) and :mod:`.vtcnn2` (the VT-CNN2 baseline); the frame generator and the
RadioML readers in :mod:`sigplex.datasets.rf`.
"""
from sigplex.core.plugins import hookimpl
from sigplex.core.task import TaskSpec


@hookimpl
def register_tasks(register):
    register(TaskSpec(
        name="classify",
        description="Modulation recognition of IQ frames (ClST, KD-CNN, KD-MobileNet, VT-CNN2) on RadioML-like data",
        factory="sigplex.plugins.rf_modrec.task:ClassifyTask",
        requires=("sionna", "h5py"),
        extra="rf",
        models=("sigplex.plugins.rf_modrec.clst", "sigplex.plugins.rf_modrec.students",
                "sigplex.plugins.rf_modrec.vtcnn2"),
    ))
