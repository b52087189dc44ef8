"""SineDenoiser: a small residual 1-D conv net that predicts the clean signal from a noisy one."""
import torch
from torch import nn

from sigplex.core.models import register_model


@register_model("sine_denoiser", domain="example", tiny={"channels": 8, "depth": 2},
                example_input=lambda: torch.randn(2, 1, 64), default={"channels": 32, "depth": 4})
class SineDenoiser(nn.Module):
    """``[batch, 1, time] -> [batch, 1, time]``; the body's convs are the adapter points."""

    adapter_targets = {"lora": ("body.*.conv",), "conv": ("body.*.conv",), "bottleneck": ("body.*.conv",)}

    def __init__(self, channels: int = 32, depth: int = 4, kernel: int = 9, dropout: float = 0.1):
        super().__init__()
        self.stem = nn.Conv1d(1, channels, kernel, padding=kernel // 2)
        self.body = nn.ModuleList(ConvBlock(channels, kernel, dropout) for _ in range(depth))
        self.head = nn.Conv1d(channels, 1, 1)

    def forward(self, x):
        h = torch.relu(self.stem(x))
        for block in self.body:
            h = block(h)
        return x - self.head(h)  # predict the noise, subtract it


class ConvBlock(nn.Module):
    def __init__(self, channels: int, kernel: int, dropout: float):
        super().__init__()
        self.conv = nn.Conv1d(channels, channels, kernel, padding=kernel // 2)
        self.drop = nn.Dropout(dropout)

    def forward(self, x):
        return x + self.drop(torch.relu(self.conv(x)))
