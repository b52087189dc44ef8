"""AdaFortiTran and FortiTran: conv + transformer OFDM channel estimators (Guler & Jafarkhani, ICC 2025).

Pipeline (real and imaginary parts run through the same network as two real grids):
LS at the pilot grid ``[n_pf, n_ps]`` -> Linear upsampler to the full ``[F, S]`` grid ->
conv enhancer 1→8→32→8→1 (3×3, ReLU) -> ``patch`` patches as tokens -> (AdaFortiTran only)
channel-adaptivity module: one MLP per prior (SNR dB, delay spread ns, Doppler Hz)
1→7→42→2·N reshaped to ``N×2`` and concatenated to the N tokens -> Linear to ``dim`` +
learnable position encoding -> pre-LN transformer encoder (``sigplex.core.backbones``) ->
Linear back to patches, fold -> residual with the conv features -> second conv enhancer.
"""
from __future__ import annotations

import torch
from torch import nn

from sigplex.core.backbones.transformer import TransformerEncoder
from sigplex.core.models import register_model

# fixed affine normalisation of the priors (centre, scale): SNR dB, delay spread ns, Doppler Hz
PRIOR_NORM = ((15.0, 15.0), (200.0, 150.0), (800.0, 600.0))


class ConvEnhancer(nn.Sequential):
    """Four 3×3 convolutions 1→c1→c2→c1→1 with ReLU between them (the paper's feature enhancer)."""

    def __init__(self, channels: tuple[int, int] = (8, 32)):
        c1, c2 = channels
        super().__init__(nn.Conv2d(1, c1, 3, padding=1), nn.ReLU(), nn.Conv2d(c1, c2, 3, padding=1), nn.ReLU(),
                         nn.Conv2d(c2, c1, 3, padding=1), nn.ReLU(), nn.Conv2d(c1, 1, 3, padding=1))


class PriorAdapter(nn.Module):
    """Channel-adaptivity module: one MLP per prior, 1→h1→h2→2·N, reshaped to ``[B, N, 2]`` each, concatenated."""

    def __init__(self, n_tokens: int, hidden: tuple[int, int] = (7, 42), per_token: int = 2, n_priors: int = 3):
        super().__init__()
        self.n_tokens, self.per_token = n_tokens, per_token
        self.mlps = nn.ModuleList(
            nn.Sequential(nn.Linear(1, hidden[0]), nn.ReLU(), nn.Linear(hidden[0], hidden[1]), nn.ReLU(),
                          nn.Linear(hidden[1], n_tokens * per_token))
            for _ in range(n_priors))
        norm = torch.tensor(PRIOR_NORM[:n_priors])
        self.register_buffer("centre", norm[:, 0].clone(), persistent=False)
        self.register_buffer("scale", norm[:, 1].clone(), persistent=False)

    def forward(self, priors):  # [B, 3] -> [B, N, 6]
        z = (priors - self.centre) / self.scale
        outs = [mlp(z[:, i:i + 1]).reshape(-1, self.n_tokens, self.per_token) for i, mlp in enumerate(self.mlps)]
        return torch.cat(outs, dim=-1)


class FortiTran(nn.Module):
    """FortiTran: the AdaFortiTran pipeline without priors. ``forward(ls [B,2,n_pf,n_ps]) -> [B,2,F,S]``."""

    adapter_targets = {"lora": ("*.attn.qkv", "*.attn.proj"), "bottleneck": ("*.mlp",), "conv": ("*.mlp",)}
    uses_priors = False

    def __init__(self, n_subcarriers: int = 120, n_symbols: int = 14, pilot_shape: tuple[int, int] = (12, 2),
                 patch: tuple[int, int] = (3, 2), dim: int = 128, depth: int = 6, heads: int = 4,
                 mlp_ratio: float = 4.0, dropout: float = 0.1, enhancer: tuple[int, int] = (8, 32),
                 prior_hidden: tuple[int, int] = (7, 42)):
        super().__init__()
        F, S = n_subcarriers, n_symbols
        pf, ps = patch
        if F % pf or S % ps:
            raise ValueError(f"patch {patch}: must divide the grid {F}x{S}")
        self.grid, self.pilot_shape, self.patch = (F, S), tuple(pilot_shape), (pf, ps)
        self.n_tokens = (F // pf) * (S // ps)
        self.upsample = nn.Linear(pilot_shape[0] * pilot_shape[1], F * S)
        self.enhance = ConvEnhancer(enhancer)
        extra = 0
        if self.uses_priors:
            self.priors = PriorAdapter(self.n_tokens, prior_hidden)
            extra = 6
        self.embed = nn.Linear(pf * ps + extra, dim)
        self.pos = nn.Parameter(torch.zeros(1, self.n_tokens, dim))
        nn.init.trunc_normal_(self.pos, std=0.02)
        self.encoder = TransformerEncoder(dim, depth, heads, mlp_ratio=mlp_ratio, dropout=dropout)
        self.head = nn.Linear(dim, pf * ps)
        self.refine = ConvEnhancer(enhancer)

    def to_tokens(self, x):  # [M, F, S] -> [M, N, pf*ps]
        (F, S), (pf, ps) = self.grid, self.patch
        x = x.reshape(-1, F // pf, pf, S // ps, ps).permute(0, 1, 3, 2, 4)
        return x.reshape(x.shape[0], self.n_tokens, pf * ps)

    def from_tokens(self, t):  # [M, N, pf*ps] -> [M, F, S]
        (F, S), (pf, ps) = self.grid, self.patch
        t = t.reshape(-1, F // pf, S // ps, pf, ps).permute(0, 1, 3, 2, 4)
        return t.reshape(t.shape[0], F, S)

    def forward_features(self, ls, priors=None):
        """Shallow conv features and the transformer's folded output, each ``[2B, 1, F, S]``."""
        B = ls.shape[0]
        F, S = self.grid
        x = ls.reshape(B * 2, -1)                       # real and imaginary parts as two real grids
        shallow = self.enhance(self.upsample(x).reshape(B * 2, 1, F, S))
        tokens = self.to_tokens(shallow[:, 0])
        if self.uses_priors:
            ada = self.priors(priors.to(tokens.dtype)).repeat_interleave(2, dim=0)
            tokens = torch.cat([tokens, ada], dim=-1)
        z = self.encoder(self.embed(tokens) + self.pos)
        return shallow, self.from_tokens(self.head(z))[:, None]

    def forward_head(self, shallow, deep):
        B2 = shallow.shape[0]
        return self.refine(deep + shallow).reshape(B2 // 2, 2, *self.grid)

    def forward(self, ls, priors=None):
        return self.forward_head(*self.forward_features(ls, priors))


class AdaFortiTran(FortiTran):
    """AdaFortiTran: FortiTran + SNR/delay-spread/Doppler priors. ``forward(ls, priors [B,3]) -> [B,2,F,S]``."""

    uses_priors = True

    def forward(self, ls, priors):
        return self.forward_head(*self.forward_features(ls, priors))


TINY = dict(n_subcarriers=12, n_symbols=4, pilot_shape=(3, 2), patch=(3, 2), dim=16, depth=1, heads=2,
            enhancer=(4, 8), prior_hidden=(3, 6), dropout=0.0)


def _tiny_ls():
    return torch.randn(2, 2, 3, 2)


def _tiny_priors():
    return torch.tensor([[10.0, 100.0, 500.0], [20.0, 300.0, 900.0]])


register_model("adafortitran", domain="ofdm", tiny=TINY, default={},
               example_input=lambda: (_tiny_ls(), _tiny_priors()))(AdaFortiTran)
register_model("fortitran", domain="ofdm", tiny=TINY, default={}, example_input=_tiny_ls)(FortiTran)

__all__ = ["AdaFortiTran", "ConvEnhancer", "FortiTran", "PriorAdapter"]
