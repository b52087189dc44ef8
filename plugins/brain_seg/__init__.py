"""brain_seg: Swin UNETR 3D brain-tumour segmentation (BraTS), MONAI-compatible.

Registration only (nothing heavy is imported here): the ``segment`` task lives in
:mod:`sigplex.plugins.brain_seg.task`, the model in :mod:`sigplex.plugins.brain_seg.swin_unetr`,
the data pipeline in :mod:`.data` / :mod:`.transforms` and the NIfTI readers in
:mod:`sigplex.datasets.nifti`.
"""
from sigplex.core.plugins import hookimpl
from sigplex.core.task import TaskSpec

REQUIRES = ("monai", "nibabel", "einops")


@hookimpl
def register_tasks(register):
    register(TaskSpec(
        name="segment",
        description="Brain-tumour segmentation (TC/WT/ET) of 4-modality MRI with Swin UNETR",
        factory="sigplex.plugins.brain_seg.task:BrainSegTask",
        requires=REQUIRES,
        extra="brain",
        models=("sigplex.plugins.brain_seg.swin_unetr",),
    ))
