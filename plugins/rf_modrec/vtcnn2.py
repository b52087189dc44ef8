"""VT-CNN2: the CNN baseline of O'Shea, Corgan and Clancy, "Convolutional Radio Modulation Recognition Networks" (2016).

The IQ frame is a one-channel 2 x T image: zero-pad the time axis by 2 on each side, Conv2d
with 256 filters of 1 x 3 (ReLU, dropout), pad again, Conv2d with 80 filters of 2 x 3 (ReLU,
dropout), flatten, dense 256 (ReLU, dropout), dense to the classes. Dropout 0.5 as in the
paper. The flatten fixes the input length to ``n_samples``.
"""
from __future__ import annotations

import torch
from torch import nn

from sigplex.core.models import register_model


@register_model("vtcnn2", domain="rf", tiny={"channels": (8, 4), "hidden": 16, "n_samples": 32},
                example_input=lambda: torch.randn(2, 2, 32))
class VTCNN2(nn.Module):
    """``[B, 2, n_samples] -> [B, n_classes]`` logits (about 2.8 M parameters at 128 samples)."""

    variable_length = False
    adapter_targets = {"lora": ("conv1", "conv2", "fc1", "fc2"), "conv": ("conv2",)}

    def __init__(self, n_classes: int = 11, n_samples: int = 128, in_channels: int = 2, channels=(256, 80),
                 hidden: int = 256, dropout: float = 0.5):
        super().__init__()
        self.n_samples = n_samples
        self.pad = nn.ZeroPad2d((2, 2, 0, 0))
        self.conv1 = nn.Conv2d(1, channels[0], (1, 3))
        self.conv2 = nn.Conv2d(channels[0], channels[1], (in_channels, 3))
        self.drop = nn.Dropout(dropout)
        width = n_samples + 4  # (+4 -2) twice
        self.fc1 = nn.Linear(channels[1] * width, hidden)
        self.fc2 = nn.Linear(hidden, n_classes)

    def forward(self, x):
        if x.shape[-1] != self.n_samples:
            raise ValueError(f"VT-CNN2 takes frames of {self.n_samples} samples, got {x.shape[-1]}")
        h = self.drop(torch.relu(self.conv1(self.pad(x[:, None]))))
        h = self.drop(torch.relu(self.conv2(self.pad(h))))
        h = self.drop(torch.relu(self.fc1(h.flatten(1))))
        return self.fc2(h)
