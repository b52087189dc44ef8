"""Optimizers and learning-rate schedules from :class:`~sigplex.core.config.OptimConfig`."""
from __future__ import annotations

import math


def build_optimizer(params, cfg):
    import torch

    params = [p for p in params if p.requires_grad]
    if not params:
        from ..errors import UserError

        raise UserError("no trainable parameters: the model is fully frozen")
    if cfg.name == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay)
    if cfg.name == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay)
    return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)


def lr_factor(step: int, cfg, max_steps: int) -> float:
    """The multiplier of the base lr at optimizer step ``step`` (0-based) for non-plateau schedules."""
    if cfg.warmup_steps and step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    if cfg.schedule == "cosine":
        span = max(1, max_steps - cfg.warmup_steps)
        progress = min(1.0, (step - cfg.warmup_steps) / span)
        return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
    if cfg.schedule == "step":
        return cfg.gamma ** ((step - cfg.warmup_steps) // cfg.step_size)
    return 1.0


class Schedule:
    """Per-step schedule (LambdaLR) plus ReduceLROnPlateau driven by validation, in one object."""

    def __init__(self, optimizer, cfg, max_steps: int, monitor_mode: str = "min"):
        import torch

        self.cfg = cfg
        self.per_step = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda s: lr_factor(s, cfg, max_steps) if cfg.schedule != "plateau" else lr_factor(s, cfg, 1)
        )
        self.plateau = None
        if cfg.schedule == "plateau":
            self.plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(
                optimizer, mode=monitor_mode, factor=cfg.gamma, patience=cfg.plateau_patience
            )

    def step(self) -> None:
        if self.plateau is not None and self.per_step.last_epoch >= self.cfg.warmup_steps:
            return  # after warm-up, only validation moves a plateau schedule
        self.per_step.step()

    def validation(self, value: float | None) -> None:
        if self.plateau is not None and value is not None:
            self.plateau.step(value)

    def state_dict(self) -> dict:
        return {"per_step": self.per_step.state_dict(),
                "plateau": self.plateau.state_dict() if self.plateau is not None else None}

    def load_state_dict(self, state: dict) -> None:
        self.per_step.load_state_dict(state["per_step"])
        if self.plateau is not None and state.get("plateau") is not None:
            self.plateau.load_state_dict(state["plateau"])
