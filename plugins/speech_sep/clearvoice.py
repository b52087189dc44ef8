"""ClearerVoice-Studio's MossFormer2_SS network as a variant of our modules: ``MossFormer2(variant="clearvoice")``.

ClearerVoice-Studio (the ``clearvoice`` package) publishes MossFormer2 separators trained on
WSJ0-2mix and friends (``MossFormer2_SS_16K`` and an 8 kHz sibling). Their network is built from
the same blocks as ours (encoder, gated attention units, gated dilated FSMN, gated mask output)
and differs in four places, reproduced here so that their weights load and give the same output:

- framing: no padding -- frames start at sample 0 and output samples after the last whole frame
  are zero (:func:`unpadded_forward`);
- mask net: the layer stack is followed by LayerNorm (eps 1e-6), then GroupNorm(1, N) plus a skip
  from the stack's input, before the PReLU (:class:`SkipNormMaskNet`);
- recurrent module: the gated unit adds its input back, ``u ⊙ FSMN(v) + h``
  (:class:`ClearVoiceFSMNBlock`);
- FSMN memory: dilated layer ``l`` reads the channel concatenation ``[y_l-1, ..., y_1, x]`` (so
  its grouped conv pairs neighbouring channels of that stack), each conv is followed by an
  instance norm, and the memory returns the last layer alone (:class:`ConcatDenseMemory`).

Their checkpoint names are mapped onto ours by :mod:`.clearvoice_weights`.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .fsmn import DilatedDenseMemory, GatedFSMNBlock
from .mossformer import MaskNet


class ConcatDenseMemory(DilatedDenseMemory):
    """Dense dilated memory on ``[B, C, T]``: conv -> InstanceNorm -> PReLU per layer, each layer on the channel
    concatenation of all earlier outputs (newest first) and the input; returns the last layer's output."""

    def __init__(self, dim: int, kernel_size: int = 39, dilations=(1, 2)):
        super().__init__(dim, kernel_size, dilations)
        self.norms = nn.ModuleList(nn.InstanceNorm1d(dim, affine=True) for _ in dilations)

    def forward(self, x):
        stack = x
        for conv, norm, act in zip(self.convs, self.norms, self.acts):
            out = act(norm(conv(stack)))
            stack = torch.cat((out, stack), dim=1)
        return out

    def forward_channels_last(self, x):
        return self.forward(x.transpose(1, 2)).transpose(1, 2)  # their layer order: no layout fast path


class ClearVoiceFSMNBlock(GatedFSMNBlock):
    """:class:`GatedFSMNBlock` with the gated unit's residual and :class:`ConcatDenseMemory`."""

    def __init__(self, dim: int, inner: int = 256, kernel_size: int = 39, dilations=(1, 2),
                 conv_kernel: int = 17, dropout: float = 0.1):
        super().__init__(dim, inner, kernel_size, dilations, conv_kernel, dropout)
        self.fsmn.memory = ConcatDenseMemory(inner, kernel_size, dilations)

    def forward(self, x):
        h = self.norm_in(self.in_act(self.in_proj(x)))
        gated = self.to_u(h) * self.fsmn(self.to_v(h)) + h
        return x + self.out_proj(self.norm_out(gated))


class SkipNormMaskNet(MaskNet):
    """:class:`MaskNet` whose layer stack ends in LayerNorm(eps 1e-6) -> GroupNorm(1, N) + skip, then PReLU."""

    def __init__(self, dim: int, num_spks: int, layers: list[nn.Module]):
        super().__init__(dim, num_spks, layers)
        self.norm_out = nn.LayerNorm(dim, eps=1e-6)
        self.norm_skip = nn.GroupNorm(1, dim, eps=1e-8)

    def forward(self, feats):
        b, n, length = feats.shape
        h = skip = self.pos(self.conv_in(self.norm(feats)).transpose(1, 2).contiguous())  # [B, L, N]
        for layer in self.layers:
            h = layer(h)
        h = self.act(self.norm_skip(self.norm_out(h).transpose(1, 2)) + skip.transpose(1, 2))  # [B, N, L]
        h = self.conv_spk(h).reshape(b * self.num_spks, n, length)
        h = torch.tanh(self.gate_tanh(h)) * torch.sigmoid(self.gate_sigmoid(h))
        return torch.relu(self.conv_out(h)).reshape(b, self.num_spks, n, length)


def unpadded_forward(model, x: torch.Tensor) -> torch.Tensor:
    """``[B, T] -> [B, spks, T]`` with frames from sample 0 and no padding (inputs shorter than one frame are
    zero-padded to one); the samples after the last whole frame come out as zeros."""
    if x.dim() == 3:
        x = x.squeeze(1)
    t = x.shape[-1]
    if t < model.kernel_size:
        x = F.pad(x, (0, model.kernel_size - t))
    feats, masks = model.forward_features(x)
    b, s, n, length = masks.shape
    out = model.decoder((feats.unsqueeze(1) * masks).reshape(b * s, n, length)).reshape(b, s, -1)
    return F.pad(out, (0, max(0, t - out.shape[-1])))[..., :t]


__all__ = ["ClearVoiceFSMNBlock", "ConcatDenseMemory", "SkipNormMaskNet", "unpadded_forward"]
