"""Gated dilated FSMN: the RNN-free recurrent module MossFormer2 adds after each MossFormer block.

A feedforward sequential memory network (FSMN) models recurrence with learnable FIR
filters (depthwise convolutions over time) instead of a recurrent state. MossFormer2 uses:

- :class:`DilatedDenseMemory` -- a stack of depthwise convolutions with growing dilation
  (1, 2, ...), densely connected: layer ``l`` sees, per channel, the block input and every
  earlier layer's output (DenseNet-style, grouped so that channels never mix);
- :class:`DilatedFSMN` -- Linear -> ReLU -> Linear (no bias) projection, then that memory,
  with residuals;
- :class:`GatedFSMNBlock` -- 1x1 projection down + PReLU, norm, a gated convolutional unit
  (``u ⊙ FSMN(v)``, ``u`` and ``v`` from :class:`~sigplex.core.blocks.FFConvM`),
  norm, 1x1 projection back, residual.

All modules work on ``[batch, time, channels]``; there is no loop over time.
"""
from __future__ import annotations

import torch
from torch import nn

from sigplex.core.blocks import FFConvM, depthwise_conv_channels_last
from sigplex.core.ops import eager_inference


class DilatedDenseMemory(nn.Module):
    """Densely connected dilated depthwise convs over time on ``[B, C, T]`` -> ``[B, C, T]``.

    Layer ``l`` (dilation ``dilations[l]``) takes, for each channel ``c``, the ``l + 1`` maps
    ``[x_c, y1_c, ..., yl_c]`` (grouped conv with ``groups=C``) and adds its output to the stack.
    The output is the last layer's map plus the input.
    """

    def __init__(self, dim: int, kernel_size: int = 39, dilations=(1, 2)):
        super().__init__()
        self.dim = dim
        self.convs = nn.ModuleList()
        self.acts = nn.ModuleList()
        for i, d in enumerate(dilations):
            pad = d * (kernel_size - 1) // 2
            self.convs.append(nn.Conv1d(dim * (i + 1), dim, kernel_size, dilation=d, padding=pad,
                                        groups=dim, bias=False))
            self.acts.append(nn.PReLU(dim))

    def forward(self, x):
        feats = [x]
        for conv, act in zip(self.convs, self.acts):
            # [B, C, k, T] -> [B, C*k, T] keeps channel c's k maps contiguous for groups=C.
            stacked = torch.stack(feats, dim=2).flatten(1, 2)
            feats.append(act(conv(stacked)))
        return x + feats[-1]

    def forward_channels_last(self, x):
        """:meth:`forward` on ``[B, T, C]`` for inference (same result, no transposed copies): each
        layer's grouped conv is one depthwise conv per earlier map, summed, in the ``[B, T, C]``
        layout itself (:func:`~sigplex.core.blocks.depthwise_conv_channels_last`)."""
        feats = [x]
        for conv, act in zip(self.convs, self.acts):
            d, p = conv.dilation[0], conv.padding[0]
            y = depthwise_conv_channels_last(feats[0], conv.weight[:, :1], (p, p), dilation=d)
            for i in range(1, len(feats)):  # the layer's input maps (one per earlier layer), not time steps
                y += depthwise_conv_channels_last(feats[i], conv.weight[:, i:i + 1], (p, p), dilation=d)
            feats.append(torch.where(y >= 0, y, y * act.weight))  # PReLU, per channel (last dim)
        return x + feats[-1]


class DilatedFSMN(nn.Module):
    """FSMN layer on ``[B, T, C]``: ``p = W2 relu(W1 x)``, output ``x + p + memory(p)``."""

    def __init__(self, dim: int, hidden: int, kernel_size: int = 39, dilations=(1, 2)):
        super().__init__()
        self.linear = nn.Linear(dim, hidden)
        self.project = nn.Linear(hidden, dim, bias=False)
        self.memory = DilatedDenseMemory(dim, kernel_size, dilations)

    def forward(self, x):
        p = self.project(torch.relu(self.linear(x)))
        if eager_inference(p, *(c.weight for c in self.memory.convs)):
            return x + self.memory.forward_channels_last(p)
        return x + self.memory(p.transpose(1, 2)).transpose(1, 2)


class GatedFSMNBlock(nn.Module):
    """MossFormer2's recurrent module on ``[B, T, dim]`` (residual; output shape = input shape)."""

    def __init__(self, dim: int, inner: int = 256, kernel_size: int = 39, dilations=(1, 2),
                 conv_kernel: int = 17, dropout: float = 0.1):
        super().__init__()
        self.in_proj = nn.Linear(dim, inner)
        self.in_act = nn.PReLU()
        self.norm_in = nn.LayerNorm(inner)
        kw = dict(norm="layernorm", kernel_size=conv_kernel, dropout=dropout)
        self.to_u = FFConvM(inner, inner, **kw)
        self.to_v = FFConvM(inner, inner, **kw)
        self.fsmn = DilatedFSMN(inner, inner, kernel_size, dilations)
        self.norm_out = nn.LayerNorm(inner)
        self.out_proj = nn.Linear(inner, dim)

    def forward(self, x):
        h = self.norm_in(self.in_act(self.in_proj(x)))
        gated = self.to_u(h) * self.fsmn(self.to_v(h))
        return x + self.out_proj(self.norm_out(gated))


__all__ = ["DilatedDenseMemory", "DilatedFSMN", "GatedFSMNBlock"]
