"""ClST: the convolution-linked signal transformer for modulation recognition (Hou et al., IEEE TWC 2024).

Reimplemented from the paper's description (arXiv 2312.17446) — three parts:

* **a hierarchy of transformer stages containing convolution** — each stage starts with a
  convolutional token embedding (an overlapping strided ``Conv1d`` over the previous stage's
  tokens + LayerNorm), so the sequence shortens and widens stage by stage (128 IQ samples ->
  64 -> 32 -> 16 tokens by default);
* **convolution-transformer projection (CTP)** blocks — pre-norm transformer blocks whose
  query/key/value come from a convolutional projection (depthwise ``Conv1d`` + BatchNorm, then
  the linear ``qkv``) instead of a linear projection of each token alone;
* **parallel spatial-channel attention (PSCA)** — from the same projections, attention over
  time steps (each token attends to the others) and attention over channels (each feature
  channel attends to the others across the whole sequence, on L2-normalised queries/keys with a
  learned per-head temperature) run in parallel and are summed before the output projection.

Both attentions go through :func:`sigplex.core.ops.attention` (SDPA). The paper's code is not
public and only its abstract-level description was available here, so kernel sizes, widths and
the exact fusion are this reimplementation's choices (documented in docs/plugins/rf_modrec.md).

Input ``[batch, 2, samples]`` (I, Q); output logits ``[batch, n_classes]``; any length works.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from sigplex.core.models import register_model
from sigplex.core.ops import attention


class ConvEmbed(nn.Module):
    """Convolutional token embedding: ``[B, C_in, T] -> [B, T / stride, dim]`` (overlapping conv + LayerNorm)."""

    def __init__(self, in_channels: int, dim: int, kernel: int, stride: int):
        super().__init__()
        self.conv = nn.Conv1d(in_channels, dim, kernel, stride=stride, padding=kernel // 2)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x):
        return self.norm(self.conv(x).transpose(1, 2))


class PSCA(nn.Module):
    """Parallel spatial-channel attention on a convolutional projection of ``[B, T, C]`` tokens."""

    def __init__(self, dim: int, heads: int, kernel: int = 3, attn_dropout: float = 0.0):
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim={dim} must be divisible by heads={heads}")
        self.heads, self.attn_dropout = heads, attn_dropout
        self.conv = nn.Conv1d(dim, dim, kernel, padding=kernel // 2, groups=dim, bias=False)  # CTP projection
        self.bn = nn.BatchNorm1d(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.temperature = nn.Parameter(torch.ones(heads, 1, 1))
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        b, t, c = x.shape
        h = self.bn(self.conv(x.transpose(1, 2))).transpose(1, 2)
        q, k, v = self.qkv(h).view(b, t, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4).unbind(0)
        p = self.attn_dropout if self.training else 0.0  # > 0 leaves SDPA's fused CPU kernel
        spatial = attention(q, k, v, dropout_p=p)  # [B, H, T, d]: time steps attend to time steps
        # channels attend to channels: tokens are the d channels of a head, features their T values
        qc = (F.normalize(q.transpose(-2, -1), dim=-1) * self.temperature).contiguous()
        kc = F.normalize(k.transpose(-2, -1), dim=-1).contiguous()
        channel = attention(qc, kc, v.transpose(-2, -1).contiguous(), scale=1.0, dropout_p=p).transpose(-2, -1)
        return self.proj((spatial + channel).transpose(1, 2).reshape(b, t, c))


class CTPBlock(nn.Module):
    """Convolution-transformer projection block: ``x + PSCA(LN x)``, then ``x + MLP(LN x)``."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float = 2.0, kernel: int = 3, dropout: float = 0.1,
                 attn_dropout: float = 0.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = PSCA(dim, heads, kernel, attn_dropout)
        self.norm2 = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, dim),
                                 nn.Dropout(dropout))

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class Stage(nn.Module):
    def __init__(self, in_channels, dim, depth, heads, embed_kernel, stride, mlp_ratio, kernel, dropout, attn_dropout):
        super().__init__()
        self.embed = ConvEmbed(in_channels, dim, embed_kernel, stride)
        self.blocks = nn.ModuleList(CTPBlock(dim, heads, mlp_ratio, kernel, dropout, attn_dropout) for _ in range(depth))

    def forward(self, x):  # [B, C_in, T] -> [B, T', dim]
        x = self.embed(x)
        for block in self.blocks:
            x = block(x)
        return x


@register_model("clst", domain="rf", tiny={"dims": (8, 16), "depths": (1, 1), "heads": (1, 2)},
                example_input=lambda: torch.randn(2, 2, 128))
class ClST(nn.Module):
    """Convolution-linked signal transformer: ``[B, 2, T] -> [B, n_classes]`` logits."""

    variable_length = True
    adapter_targets = {"lora": ("*.attn.qkv", "*.attn.proj"), "bottleneck": ("*.mlp",), "conv": ("*.mlp",)}

    def __init__(self, n_classes: int = 11, n_samples: int = 128, in_channels: int = 2, dims=(32, 64, 128),
                 depths=(1, 2, 2), heads=(1, 2, 4), embed_kernels=(7, 3, 3), strides=(2, 2, 2), mlp_ratio: float = 2.0,
                 kernel: int = 3, dropout: float = 0.1, attn_dropout: float = 0.0):
        super().__init__()
        if not (len(dims) == len(depths) == len(heads)):
            raise ValueError("dims, depths and heads need one entry per stage")
        self.n_samples = n_samples
        stages, c = [], in_channels
        for i, (dim, depth, h) in enumerate(zip(dims, depths, heads)):
            ek, st = embed_kernels[min(i, len(embed_kernels) - 1)], strides[min(i, len(strides) - 1)]
            stages.append(Stage(c, dim, depth, h, ek, st, mlp_ratio, kernel, dropout, attn_dropout))
            c = dim
        self.stages = nn.ModuleList(stages)
        self.norm = nn.LayerNorm(c)
        self.head = nn.Linear(c, n_classes)

    def forward_features(self, x):
        """``[B, 2, T]`` -> pooled features ``[B, dims[-1]]``."""
        for i, stage in enumerate(self.stages):
            x = stage(x if i == 0 else x.transpose(1, 2))
        return self.norm(x).mean(1)

    def forward_head(self, features):
        return self.head(features)

    def forward(self, x):
        return self.forward_head(self.forward_features(x))
