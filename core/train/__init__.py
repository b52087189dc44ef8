"""Training: the Trainer, its callbacks, checkpoints, samplers and distributed helpers."""
from .callbacks import Callback
from .trainer import Trainer

__all__ = ["Callback", "Trainer"]
