"""Mamba block: the selective state-space mixer (``sigplex.core.ops.selective_scan``) with its projections.

``x + out_proj(SSM(silu(conv(x_in))) ⊙ silu(z))`` where ``[x_in, z] = in_proj(LayerNorm(x))``; the
causal depthwise ``conv`` has ``conv_kernel`` taps, ``x_proj`` makes the input-dependent ``Δ`` (rank
``dt_rank``, widened by ``dt_proj``), ``B`` and ``C``. ``[B, T, dim] -> [B, T, dim]``, causal.

Streaming: :meth:`MambaBlock.step` takes one frame ``[B, dim]`` and a :class:`MambaState` (None at the
start) and returns the output frame and the next state; ``forward(x, state, return_state=True)`` runs
a whole segment from a state and returns the state after it, so long inputs can be fed in pieces.
Either way the outputs equal one full pass.

>>> import torch
>>> block = MambaBlock(16, state_dim=4)
>>> x = torch.randn(2, 30, 16)
>>> y, state = block(x[:, :20], return_state=True)
>>> y_next, state = block.step(x[:, 20], state)
>>> torch.allclose(y_next, block(x)[:, 20], atol=1e-5)
True
"""
from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from ..ops.selective_scan import selective_scan, selective_scan_step


class MambaState(NamedTuple):
    """What a :class:`MambaBlock` carries between steps: the conv's last inputs and the SSM state."""

    conv: torch.Tensor  # [B, inner, conv_kernel - 1]
    ssm: torch.Tensor  # [B, inner, state_dim]


class MambaBlock(nn.Module):
    """Pre-norm residual Mamba layer (see the module docstring); ``inner = expand · dim`` channels."""

    adapter_targets = {"lora": ("*.in_proj", "*.x_proj", "*.dt_proj", "*.out_proj"), "bottleneck": ("*.out_proj",)}

    def __init__(self, dim: int, state_dim: int = 16, expand: int = 2, conv_kernel: int = 4,
                 dt_rank: int | None = None, dt_min: float = 1e-3, dt_max: float = 1e-1, chunk_size: int = 16):
        super().__init__()
        inner = expand * dim
        self.dim, self.inner, self.state_dim, self.chunk_size = dim, inner, state_dim, chunk_size
        self.dt_rank = dt_rank or math.ceil(dim / 16)
        self.norm = nn.LayerNorm(dim)
        self.in_proj = nn.Linear(dim, 2 * inner)
        self.conv = nn.Conv1d(inner, inner, conv_kernel, groups=inner)
        self.x_proj = nn.Linear(inner, self.dt_rank + 2 * state_dim, bias=False)
        self.dt_proj = nn.Linear(self.dt_rank, inner)
        dt = torch.exp(torch.rand(inner) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min))
        with torch.no_grad():  # softplus(bias) = dt at init
            self.dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))
        self.a_log = nn.Parameter(torch.log(torch.arange(1, state_dim + 1, dtype=torch.float32)).repeat(inner, 1))
        self.d = nn.Parameter(torch.ones(inner))
        self.out_proj = nn.Linear(inner, dim)

    def _ssm_inputs(self, xs: torch.Tensor):
        """``xs [B, T, inner]`` (after the conv) -> Δ before softplus ``[B, T, inner]``, B and C ``[B, T, N]``."""
        dt, b, c = self.x_proj(xs).split((self.dt_rank, self.state_dim, self.state_dim), dim=-1)
        return self.dt_proj(dt), b, c

    def forward(self, x: torch.Tensor, state: MambaState | None = None, return_state: bool = False):
        """``x [B, T, dim]`` from ``state`` (zeros when None) -> ``y`` (and the state after ``x``)."""
        xs, z = self.in_proj(self.norm(x)).chunk(2, dim=-1)
        xs = xs.transpose(1, 2)  # [B, inner, T]
        k = self.conv.kernel_size[0]
        past = state.conv if state is not None else xs.new_zeros(xs.shape[0], self.inner, k - 1)
        padded = torch.cat((past.to(xs.dtype), xs), dim=-1)
        xs = F.silu(self.conv(padded))
        delta, b, c = self._ssm_inputs(xs.transpose(1, 2))
        y, last = selective_scan(xs, delta.transpose(1, 2), -torch.exp(self.a_log), b.transpose(1, 2),
                                 c.transpose(1, 2), self.d, z.transpose(1, 2), delta_softplus=True,
                                 initial_state=state.ssm if state is not None else None,
                                 return_last_state=True, chunk_size=self.chunk_size)
        out = x + self.out_proj(y.transpose(1, 2))
        if not return_state:
            return out
        return out, MambaState(padded[..., padded.shape[-1] - (k - 1):], last)

    def step(self, x: torch.Tensor, state: MambaState | None = None):
        """One frame ``x [B, dim]`` -> ``(y [B, dim], next state)``; no sequence-length work."""
        xs, z = self.in_proj(self.norm(x)).chunk(2, dim=-1)
        k = self.conv.kernel_size[0]
        past = state.conv if state is not None else xs.new_zeros(xs.shape[0], self.inner, k - 1)
        window = torch.cat((past.to(xs.dtype), xs[..., None]), dim=-1)  # [B, inner, k]
        xs = F.silu((window * self.conv.weight[:, 0]).sum(-1) + self.conv.bias)
        delta, b, c = self._ssm_inputs(xs)
        y, ssm = selective_scan_step(state.ssm if state is not None else None, xs, delta, -torch.exp(self.a_log),
                                     b, c, self.d, z, delta_softplus=True)
        return x + self.out_proj(y), MambaState(window[..., 1:], ssm)


__all__ = ["MambaBlock", "MambaState"]
