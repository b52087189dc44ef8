"""Knowledge distillation for any task: a frozen teacher on the same batch, and the matching loss.

``platform train --distill-from RUN_OR_WEIGHTS`` loads the teacher once: a run directory brings
its own config and fitted state; a bare weights file is built from the student's config with
``model.name = distill.teacher_model``. Each step the Trainer asks the task what to match
(``Task.distill_outputs``) of the student and of the teacher (eval mode, no_grad), and mixes
``(1 - alpha) * task_loss + alpha * match``. ``match`` is the KL divergence of
temperature-softened logits times ``T**2`` (Hinton et al.) or the MSE of outputs.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import UserError


@dataclass
class Teacher:
    """A frozen teacher model with the prepared state it expects."""

    model: object
    prepared: object
    source: str


def load_teacher(task, student_prepared, source: str | Path, device) -> Teacher:
    """Build and load the teacher named by ``--distill-from`` (run directory or weights file)."""
    from ..run import find_run, ready_model
    from ..task import Prepared, load_state

    source = Path(source)
    if not source.exists():
        raise UserError(f"--distill-from {source}: no such run directory or weights file")
    config = student_prepared.config
    if source.is_dir():
        run = find_run(source)
        if not run.config_file.is_file():
            raise UserError(f"{run}: {run.config_file.name} is missing; not a sigplex run directory")
        cfg = type(config).model_validate(run.config_dict)
        prepared = Prepared(config=cfg, state=load_state(run.path) or dict(student_prepared.state))
    else:
        name = config.distill.teacher_model
        if not name:
            raise UserError(f"--distill-from {source}: a bare weights file needs --set distill.teacher_model=NAME "
                            "(the registered model it holds)")
        try:
            model_section = type(config.model)(name=name)
        except Exception as exc:
            raise UserError(f"distill.teacher_model={name!r}: not a model of this task ({exc})") from None
        cfg = config.model_copy(update={"model": model_section})
        prepared = Prepared(config=cfg, state=dict(student_prepared.state))
    model = ready_model(task, prepared, source, device=str(device), what="--distill-from")
    for p in model.parameters():
        p.requires_grad_(False)
    return Teacher(model, prepared, str(source))


def distill_loss(student, teacher, kind: str, temperature: float):
    """The matching term between student and teacher outputs (tensors, or tuples/dicts of tensors)."""
    import torch.nn.functional as F

    if isinstance(student, (tuple, list)):
        return sum(distill_loss(s, t, kind, temperature) for s, t in zip(student, teacher)) / len(student)
    if isinstance(student, dict):
        return sum(distill_loss(student[k], teacher[k], kind, temperature) for k in student) / len(student)
    if student.shape != teacher.shape:
        raise UserError(f"distillation: student output {tuple(student.shape)} and teacher output "
                        f"{tuple(teacher.shape)} differ; the task's distill_outputs must return matching shapes")
    s, t = student.float(), teacher.float()
    if kind == "kl":
        T = temperature
        return F.kl_div(F.log_softmax(s / T, dim=-1), F.log_softmax(t / T, dim=-1), log_target=True,
                        reduction="batchmean") * (T * T)
    return F.mse_loss(s, t)
