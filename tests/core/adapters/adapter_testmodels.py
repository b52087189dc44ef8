"""Small models for the adapter tests: a transformer block, a conv net and a nested model."""
from __future__ import annotations

import torch
from torch import nn


class Attn(nn.Module):
    def __init__(self, dim=16, heads=2):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        b, t, c = x.shape
        q, k, v = self.qkv(x).reshape(b, t, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        y = torch.nn.functional.scaled_dot_product_attention(q, k, v)
        return self.proj(y.transpose(1, 2).reshape(b, t, c))


class Mlp(nn.Module):
    def __init__(self, dim=16, hidden=32):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    """Pre-LN transformer block with attn.qkv, attn.proj, mlp.fc1, mlp.fc2."""

    adapter_targets = {"lora": ("*.qkv", "*.proj"), "bottleneck": ("mlp",), "conv": ("mlp",)}

    def __init__(self, dim=16):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attn(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class TinyTransformer(nn.Module):
    adapter_targets = {"lora": ("*.attn.qkv", "*.attn.proj"), "bottleneck": ("*.mlp",), "conv": ("*.mlp",)}

    def __init__(self, dim=16, depth=2, classes=3):
        super().__init__()
        self.blocks = nn.ModuleList(Block(dim) for _ in range(depth))
        self.head = nn.Linear(dim, classes)

    def forward(self, x):
        for blk in self.blocks:
            x = blk(x)
        return self.head(x.mean(1))


class Wrapper(nn.Module):
    """No declarations of its own: the defaults come from the ``encoder`` submodule."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Linear(4, 16)
        self.encoder = TinyTransformer()

    def forward(self, x):
        return self.encoder(self.stem(x))


class ConvNet(nn.Module):
    """Conv1d → Conv2d → Conv3d net, channels-first throughout."""

    adapter_targets = {"lora": ("c1", "c2", "c3"), "conv": ("c1", "c2", "c3")}

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv1d(3, 6, 3, padding=1)
        self.c2 = nn.Conv2d(6, 8, 3, stride=2, padding=1)
        self.c3 = nn.Conv3d(8, 4, 3, padding=1, padding_mode="circular")

    def forward(self, x):  # x: [B, 3, 64]
        b = x.shape[0]
        y = torch.relu(self.c1(x))  # [B, 6, 64]
        y = torch.relu(self.c2(y.reshape(b, 6, 8, 8)))  # [B, 8, 4, 4]
        y = self.c3(y.reshape(b, 8, 4, 2, 2))  # [B, 4, 4, 2, 2]
        return y


def randomize_adapters(model, seed=0):
    """Give every adapter parameter random values (so adapters do something)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if ".adapter_" in name:
                p.copy_(torch.randn(p.shape, generator=g) * 0.1)
