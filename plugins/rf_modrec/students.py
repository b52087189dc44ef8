"""The lightweight students of signal knowledge distillation (SKD): KD-CNN and KD-MobileNet.

Both take ``[batch, 2, samples]`` IQ frames and return logits, pool globally over time (any
length works) and have well under a tenth of ClST's parameters at their defaults. They are
trained alone or as students of a ClST teacher (``platform train --distill-from``), whose
temperature-softened logits they match with a KL term mixed with cross-entropy (the hybrid loss).

* :class:`KDCNN` — three Conv1d-BatchNorm-ReLU layers (max-pooling after the first two), global
  average pooling and a linear classifier.
* :class:`KDMobileNet` — MobileNet-style depthwise-separable blocks (depthwise Conv1d, then
  pointwise 1x1 Conv1d, each with BatchNorm and ReLU6), strided to shorten the sequence.
"""
from __future__ import annotations

import torch
from torch import nn

from sigplex.core.models import register_model


class ConvBNReLU(nn.Sequential):
    def __init__(self, c_in, c_out, kernel, stride=1, groups=1, act=nn.ReLU):
        super().__init__()
        self.conv = nn.Conv1d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, groups=groups, bias=False)
        self.bn = nn.BatchNorm1d(c_out)
        self.act = act()


@register_model("kd_cnn", domain="rf", tiny={"widths": (4, 6, 8)}, example_input=lambda: torch.randn(2, 2, 128))
class KDCNN(nn.Module):
    """KD-CNN student: ``[B, 2, T] -> [B, n_classes]``."""

    variable_length = True
    adapter_targets = {"lora": ("features.*.conv", "head"), "conv": ("features.1", "features.2")}

    def __init__(self, n_classes: int = 11, n_samples: int = 128, in_channels: int = 2, widths=(32, 48, 64),
                 kernels=(7, 5, 3), dropout: float = 0.1):
        super().__init__()
        self.n_samples = n_samples
        layers, c = [], in_channels
        for w, k in zip(widths, kernels):
            layers.append(ConvBNReLU(c, w, k))
            c = w
        self.features = nn.Sequential(*layers)
        self.pool = nn.MaxPool1d(2)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(c, n_classes)

    def forward_features(self, x):
        n = len(self.features)
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i < n - 1:
                x = self.pool(x)
        return x.mean(-1)

    def forward(self, x):
        return self.head(self.drop(self.forward_features(x)))


class SeparableBlock(nn.Module):
    """Depthwise Conv1d (stride) + pointwise Conv1d, each with BatchNorm and ReLU6."""

    def __init__(self, c_in, c_out, stride, kernel=3):
        super().__init__()
        self.depthwise = ConvBNReLU(c_in, c_in, kernel, stride, groups=c_in, act=nn.ReLU6)
        self.pointwise = ConvBNReLU(c_in, c_out, 1, act=nn.ReLU6)

    def forward(self, x):
        return self.pointwise(self.depthwise(x))


@register_model("kd_mobilenet", domain="rf", tiny={"stem": 4, "widths": (8, 8), "strides": (2, 1)},
                example_input=lambda: torch.randn(2, 2, 128))
class KDMobileNet(nn.Module):
    """KD-MobileNet student: ``[B, 2, T] -> [B, n_classes]``."""

    variable_length = True
    adapter_targets = {"lora": ("blocks.*.pointwise.conv", "stem.conv", "head"), "conv": ("blocks.*.pointwise",)}

    def __init__(self, n_classes: int = 11, n_samples: int = 128, in_channels: int = 2, stem: int = 16,
                 widths=(32, 64, 64, 96), strides=(2, 2, 1, 2), kernel: int = 3, dropout: float = 0.1):
        super().__init__()
        self.n_samples = n_samples
        self.stem = ConvBNReLU(in_channels, stem, 5, act=nn.ReLU6)
        blocks, c = [], stem
        for w, s in zip(widths, strides):
            blocks.append(SeparableBlock(c, w, s, kernel))
            c = w
        self.blocks = nn.Sequential(*blocks)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(c, n_classes)

    def forward_features(self, x):
        return self.blocks(self.stem(x)).mean(-1)

    def forward(self, x):
        return self.head(self.drop(self.forward_features(x)))
