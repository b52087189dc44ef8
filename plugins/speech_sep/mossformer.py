"""MossFormer (Zhao & Ma, 2023): conv encoder, gated-attention masking network, conv decoder.

Shared parts of both separation models live here (MossFormer2 in :mod:`.mossformer2` adds the
gated dilated-FSMN recurrent module after each block):

- :class:`ConvEncoder` -- ``Conv1d(1 -> N, kernel 16, stride 8)`` + ReLU;
- :class:`ConvDecoder` -- the transposed mirror, ``ConvTranspose1d(N -> 1)``;
- :class:`ScaledSinusoidalEmbedding` -- sinusoidal positions times one learnable scale;
- :class:`MaskNet` -- GroupNorm -> 1x1 -> positions -> blocks -> LayerNorm -> PReLU ->
  1x1 to ``N * spks`` -> gated output ``tanh(.) * sigmoid(.)`` -> 1x1 -> ReLU mask.
  Each block is the core :class:`~sigplex.core.blocks.GatedAttentionUnit`
  (token shift, rotary embedding, joint local quadratic + global linear attention,
  convolution modules), optionally followed by a recurrent module.

Models take ``[B, T]`` (or ``[B, 1, T]``) waveforms and return ``[B, spks, T]``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from sigplex.core.blocks import GatedAttentionUnit
from sigplex.core.models import register_model


class ConvEncoder(nn.Module):
    """Waveform ``[B, T]`` -> ReLU features ``[B, N, L]`` (``L = (T - kernel) // stride + 1``)."""

    def __init__(self, dim: int, kernel_size: int = 16, stride: int = 8):
        super().__init__()
        self.conv = nn.Conv1d(1, dim, kernel_size, stride=stride, bias=False)

    def forward(self, x):
        return torch.relu(self.conv(x.unsqueeze(1)))


class ConvDecoder(nn.Module):
    """Masked features ``[B, N, L]`` -> waveform ``[B, T']`` with a transposed conv."""

    def __init__(self, dim: int, kernel_size: int = 16, stride: int = 8):
        super().__init__()
        self.deconv = nn.ConvTranspose1d(dim, 1, kernel_size, stride=stride, bias=False)

    def forward(self, x):
        return self.deconv(x).squeeze(1)


class ScaledSinusoidalEmbedding(nn.Module):
    """``scale * [sin(p ω), cos(p ω)]`` for positions ``p`` along dim 1 of ``[B, L, C]``."""

    def __init__(self, dim: int):
        super().__init__()
        self.scale = nn.Parameter(torch.full((1,), dim ** -0.5))
        self.register_buffer("inv_freq", 10000.0 ** (-torch.arange(0, dim, 2).float() / dim), persistent=False)

    def forward(self, x):
        pos = torch.arange(x.shape[1], device=x.device, dtype=self.inv_freq.dtype)
        ang = pos[:, None] * self.inv_freq[None, :]
        emb = torch.cat((ang.sin(), ang.cos()), dim=-1)[:, : x.shape[-1]]
        return x + (emb * self.scale).to(x.dtype)


class MossFormerLayer(nn.Module):
    """One MossFormer block (``attn``) plus an optional recurrent module (``fsmn``), on ``[B, L, N]``."""

    def __init__(self, attn: nn.Module, fsmn: nn.Module | None = None):
        super().__init__()
        self.attn = attn
        self.fsmn = fsmn

    def forward(self, x):
        x = self.attn(x)
        return self.fsmn(x) if self.fsmn is not None else x


class MaskNet(nn.Module):
    """Single-path masking network: encoder features ``[B, N, L]`` -> masks ``[B, spks, N, L]``."""

    def __init__(self, dim: int, num_spks: int, layers: list[nn.Module]):
        super().__init__()
        self.num_spks = num_spks
        self.norm = nn.GroupNorm(1, dim, eps=1e-8)
        self.conv_in = nn.Conv1d(dim, dim, 1, bias=False)
        self.pos = ScaledSinusoidalEmbedding(dim)
        self.layers = nn.ModuleList(layers)
        self.norm_out = nn.LayerNorm(dim)
        self.act = nn.PReLU()
        self.conv_spk = nn.Conv1d(dim, dim * num_spks, 1)
        self.gate_tanh = nn.Conv1d(dim, dim, 1)
        self.gate_sigmoid = nn.Conv1d(dim, dim, 1)
        self.conv_out = nn.Conv1d(dim, dim, 1, bias=False)

    def forward(self, feats):
        b, n, length = feats.shape
        # [B, L, N], made contiguous once: a transposed view would keep the whole residual stream
        # strided (every residual add ~6x slower at paper size)
        h = self.conv_in(self.norm(feats)).transpose(1, 2).contiguous()
        h = self.pos(h)
        for layer in self.layers:
            h = layer(h)
        h = self.act(self.norm_out(h).transpose(1, 2))  # [B, N, L]
        h = self.conv_spk(h).reshape(b * self.num_spks, n, length)
        h = torch.tanh(self.gate_tanh(h)) * torch.sigmoid(self.gate_sigmoid(h))
        return torch.relu(self.conv_out(h)).reshape(b, self.num_spks, n, length)


class MaskingSeparator(nn.Module):
    """Encoder -> mask net -> decoder, with padding so every input sample is covered twice.

    Subclasses build ``self.masknet``; ``forward`` maps ``[B, T]`` to ``[B, spks, T]``.
    """

    adapter_targets = {
        "lora": ("*.attn.to_hidden.linear", "*.attn.to_qk.linear", "*.attn.to_out.linear"),
        "bottleneck": ("*.attn",),
        "conv": ("*.attn",),
    }

    def __init__(self, num_spks: int, dim: int, kernel_size: int, stride: int):
        super().__init__()
        if kernel_size < stride:
            raise ValueError(f"kernel_size={kernel_size} must be >= stride={stride}")
        self.num_spks, self.dim, self.kernel_size, self.stride = num_spks, dim, kernel_size, stride
        self.encoder = ConvEncoder(dim, kernel_size, stride)
        self.decoder = ConvDecoder(dim, kernel_size, stride)

    def forward_features(self, x):
        """Encoder features ``[B, N, L]`` and masks ``[B, spks, N, L]`` of a padded waveform."""
        feats = self.encoder(x)
        return feats, self.masknet(feats)

    def forward(self, x):
        if x.dim() == 3:
            x = x.squeeze(1)
        t = x.shape[-1]
        left = self.kernel_size - self.stride
        total = t + 2 * left
        total += (-(total - self.kernel_size)) % self.stride
        x = F.pad(x, (left, total - t - left))
        feats, masks = self.forward_features(x)
        b, s, n, length = masks.shape
        out = self.decoder((feats.unsqueeze(1) * masks).reshape(b * s, n, length))
        return out[:, left:left + t].reshape(b, s, t)


def _attn(dim, group_size, query_key_dim, expansion_factor, rotary_dim, dropout, attn_dropout):
    return GatedAttentionUnit(dim, group_size=group_size, query_key_dim=query_key_dim,
                              expansion_factor=expansion_factor, rotary_dim=rotary_dim, shift_tokens=True,
                              norm="scalenorm", kernel_size=17, dropout=dropout, attn_dropout=attn_dropout)


TINY = dict(num_spks=2, dim=16, num_layers=2, group_size=16, query_key_dim=8, rotary_dim=4)


@register_model("mossformer", domain="audio", tiny=TINY, example_input=lambda: torch.randn(2, 400),
                default={"num_spks": 2})
class MossFormer(MaskingSeparator):
    """MossFormer: ``num_layers`` gated attention blocks (N=512, 24 layers by default, ~42M params)."""

    def __init__(self, num_spks: int = 2, dim: int = 512, num_layers: int = 24, kernel_size: int = 16,
                 stride: int = 8, group_size: int = 256, query_key_dim: int = 128, expansion_factor: float = 2.0,
                 rotary_dim: int = 32, dropout: float = 0.1, attn_dropout: float = 0.1):
        super().__init__(num_spks, dim, kernel_size, stride)
        layers = [MossFormerLayer(_attn(dim, group_size, query_key_dim, expansion_factor, rotary_dim, dropout,
                                        attn_dropout)) for _ in range(num_layers)]
        self.masknet = MaskNet(dim, num_spks, layers)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


__all__ = ["ConvDecoder", "ConvEncoder", "MaskNet", "MaskingSeparator", "MossFormer", "MossFormerLayer",
           "ScaledSinusoidalEmbedding", "count_parameters"]
