"""Gated attention unit with joint local (quadratic, per chunk) + global (linear) attention.

This is the attention of FLASH (Hua et al., 2022, "Transformer Quality in Linear Time") as
used by MossFormer / MossFormer2 for speech separation. Time and memory are linear in the
sequence length ``T``:

- **local** (quadratic inside non-overlapping chunks of ``group_size`` tokens, the sequence
  zero-padded to a multiple): ``relu(q kᵀ / group_size)²`` -- no softmax, so it is plain
  batched matmuls, ``O(T · group_size)``;
- **global** (linear over the whole sequence): ``lin_q · (lin_kᵀ v) / T``, ``O(T)``.
- **causal**: the local part is masked to ``s <= t`` inside each chunk and the global part
  only sees *previous* chunks, ``lin_q_g · Σ_{h<g} lin_k_hᵀ v_h / group_size`` (an exclusive
  cumulative sum over chunks; dividing by the chunk size rather than by ``T`` keeps the
  output at ``t`` independent of how many tokens follow).

:func:`mixed_chunk_attention` is that math as a pure function; :class:`GatedAttentionUnit`
is the full MossFormer-style layer: optional token shift of half the channels, projections
``FFConvM`` (norm → Linear → SiLU → depthwise conv k=17 with residual → dropout) to a hidden
``[v, u]`` and a shared low-dim ``qk``, :class:`OffsetScale` into quad/lin queries and keys,
rotary embedding, joint attention applied to both ``v`` and ``u``, gated output
``(att_u ⊙ v) ⊙ σ(att_v ⊙ u)``, projection back and residual.

>>> import torch
>>> gau = GatedAttentionUnit(dim=32, group_size=16, query_key_dim=16, rotary_dim=8)
>>> gau(torch.randn(2, 50, 32)).shape
torch.Size([2, 50, 32])
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .rotary import RotaryEmbedding


def _pad_tokens(x: torch.Tensor, pad: int) -> torch.Tensor:
    return F.pad(x, (0, 0, 0, pad)) if pad else x


def mixed_chunk_attention(quad_q, quad_k, lin_q, lin_k, values, group_size: int = 256,
                          causal: bool = False, mask=None, dropout_p: float = 0.0):
    """Joint local + global attention of FLASH / MossFormer (single head, no softmax).

    quad_q, quad_k, lin_q, lin_k: ``[..., T, S]``; values: ``[..., T, E]`` (MossFormer passes
    ``[v, u]`` concatenated, so both streams are attended in one matmul) -> ``[..., T, E]``.
    ``mask``: optional ``[..., T]`` boolean, True = valid token; invalid tokens are removed as
    keys (their queries still get an output). ``dropout_p`` drops entries of the local
    attention matrix (pass 0 in eval). Non-causal global part is divided by ``T``, the causal
    one by ``group_size``.
    """
    *lead, n, s = quad_q.shape
    e = values.shape[-1]
    c = group_size
    if mask is not None:
        keep = mask.to(quad_k.dtype)[..., None]
        quad_k = quad_k * keep
        lin_k = lin_k * keep
    pad = (-n) % c
    g = (n + pad) // c

    def chunks(t, width):
        return _pad_tokens(t, pad).reshape(*lead, g, c, width)

    qq, kq, vv = chunks(quad_q, s), chunks(quad_k, s), chunks(values, e)
    attn = F.relu((qq / c) @ kq.transpose(-1, -2)).square()  # [..., g, c, c]; scale the smaller operand
    if causal:
        attn = attn.masked_fill(
            torch.ones(c, c, dtype=torch.bool, device=attn.device).triu(1), 0.0
        )
    if dropout_p > 0.0:
        attn = F.dropout(attn, p=dropout_p)
    out = attn @ vv  # [..., g, c, e]

    if not causal:
        kv = lin_k.transpose(-1, -2) @ values / n  # [..., s, e]
        out = out.reshape(*lead, g * c, e)
        out = out[..., :n, :] if pad else out
        if out.dim() == 3:  # fused add: out + lin_q @ kv without a temporary
            return torch.baddbmm(out, lin_q, kv)
        return out + lin_q @ kv

    ql, kl = chunks(lin_q, s), chunks(lin_k, s)
    kv = kl.transpose(-1, -2) @ vv / c  # [..., g, s, e] per chunk
    # Previous chunks only: the inclusive cumsum of all but the last chunk, shifted by one.
    kv = torch.cat((torch.zeros_like(kv[..., :1, :, :]), kv[..., :-1, :, :].cumsum(dim=-3)), dim=-3)
    out = (out + ql @ kv).reshape(*lead, g * c, e)
    return out[..., :n, :] if pad else out


class ScaleNorm(nn.Module):
    """``g · x / max(‖x‖₂ / sqrt(dim), eps)`` with one learnable scalar ``g`` (MossFormer's norm)."""

    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__()
        self.scale = dim ** -0.5
        self.eps = eps
        self.g = nn.Parameter(torch.ones(1))

    def forward(self, x):
        norm = x.norm(dim=-1, keepdim=True) * self.scale
        return x / norm.clamp(min=self.eps) * self.g


class ConvModule(nn.Module):
    """Depthwise 1-D conv over time with a residual, on ``[B, T, C]``: ``x + dwconv(x)``.

    ``causal=True`` pads on the left only, so the output at ``t`` sees inputs ``<= t``.
    """

    def __init__(self, dim: int, kernel_size: int = 17, causal: bool = False):
        super().__init__()
        self.causal = causal
        self.kernel_size = kernel_size
        self.conv = nn.Conv1d(dim, dim, kernel_size, groups=dim, bias=False)

    def forward(self, x):
        y = x.transpose(1, 2)
        k = self.kernel_size
        y = F.pad(y, (k - 1, 0) if self.causal else ((k - 1) // 2, k // 2))
        return x + self.conv(y).transpose(1, 2)


class FFConvM(nn.Module):
    """Projection block of MossFormer: norm → Linear → SiLU → :class:`ConvModule` → dropout."""

    def __init__(self, dim_in: int, dim_out: int, norm: str = "layernorm", kernel_size: int = 17,
                 dropout: float = 0.1, causal: bool = False):
        super().__init__()
        if norm == "layernorm":
            self.norm = nn.LayerNorm(dim_in)
        elif norm == "scalenorm":
            self.norm = ScaleNorm(dim_in)
        else:
            raise ValueError(f"norm must be 'layernorm' or 'scalenorm', got {norm!r}")
        self.linear = nn.Linear(dim_in, dim_out)
        self.act = nn.SiLU()
        self.conv = ConvModule(dim_out, kernel_size, causal=causal)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):
        return self.dropout(self.conv(self.act(self.linear(self.norm(x)))))


class OffsetScale(nn.Module):
    """``heads`` per-channel affine copies of one tensor: ``x · γ_h + β_h`` -> ``[heads, ..., dim]``."""

    def __init__(self, dim: int, heads: int = 4):
        super().__init__()
        self.gamma = nn.Parameter(torch.empty(heads, dim).normal_(std=0.02))
        self.beta = nn.Parameter(torch.zeros(heads, dim))

    def forward(self, x):
        shape = (self.gamma.shape[0],) + (1,) * (x.dim() - 1) + (x.shape[-1],)
        return x.unsqueeze(0) * self.gamma.view(shape) + self.beta.view(shape)


class GatedAttentionUnit(nn.Module):
    """MossFormer / FLASH gated attention unit with shared ``qk``: ``[B, T, dim] -> [B, T, dim]``.

    Arguments: ``group_size`` (local chunk, 256 in MossFormer), ``query_key_dim`` (shared qk
    width, 128), ``expansion_factor`` (v and u are each ``dim * expansion_factor`` wide, 2.0),
    ``rotary_dim`` (first channels of q/k rotated, 32; 0 disables), ``shift_tokens`` (shift half
    the channels one step forward in time), ``norm`` ("scalenorm" or "layernorm") in the
    projections, ``kernel_size`` of their depthwise convs (17), ``dropout`` after them,
    ``attn_dropout`` on the local attention matrix, ``causal`` (causal attention *and* causal
    convs). ``forward(x, mask=None)``: ``mask`` ``[B, T]`` True = valid removes padded keys
    (the convs still see the padded frames, so zero them if it matters).

    Submodules: ``to_hidden`` (-> ``[v, u]``), ``to_qk``, ``qk_offset_scale``, ``rotary``,
    ``to_out`` -- all :class:`FFConvM` but the two in the middle.
    """

    def __init__(self, dim: int, group_size: int = 256, query_key_dim: int = 128,
                 expansion_factor: float = 2.0, rotary_dim: int = 32, shift_tokens: bool = True,
                 norm: str = "scalenorm", kernel_size: int = 17, dropout: float = 0.1,
                 attn_dropout: float = 0.0, causal: bool = False):
        super().__init__()
        hidden = int(dim * expansion_factor)
        self.dim, self.hidden_dim, self.query_key_dim = dim, hidden, query_key_dim
        self.group_size = group_size
        self.causal = causal
        self.shift_tokens = shift_tokens
        self.attn_dropout = attn_dropout
        kw = dict(norm=norm, kernel_size=kernel_size, dropout=dropout, causal=causal)
        self.to_hidden = FFConvM(dim, 2 * hidden, **kw)
        self.to_qk = FFConvM(dim, query_key_dim, **kw)
        self.qk_offset_scale = OffsetScale(query_key_dim, heads=4)
        self.rotary = RotaryEmbedding(min(rotary_dim, query_key_dim)) if rotary_dim else None
        self.to_out = FFConvM(hidden, dim, **kw)

    def forward(self, x, mask=None):
        h = x
        if self.shift_tokens:
            shifted, passed = h.chunk(2, dim=-1)
            h = torch.cat((F.pad(shifted, (0, 0, 1, -1)), passed), dim=-1)
        vu = self.to_hidden(h)  # [B, T, 2 * hidden] = [v, u]
        qk = self.qk_offset_scale(self.to_qk(h))  # [4, B, T, S]
        if self.rotary is not None:
            qk = self.rotary(qk)
        quad_q, lin_q, quad_k, lin_k = qk.unbind(0)
        att = mixed_chunk_attention(
            quad_q, quad_k, lin_q, lin_k, vu, group_size=self.group_size, causal=self.causal,
            mask=mask, dropout_p=self.attn_dropout if self.training else 0.0,
        )
        v, u = vu.chunk(2, dim=-1)
        att_v, att_u = att.chunk(2, dim=-1)
        out = (att_u * v) * torch.sigmoid(att_v * u)
        return x + self.to_out(out)


__all__ = [
    "ConvModule",
    "FFConvM",
    "GatedAttentionUnit",
    "OffsetScale",
    "ScaleNorm",
    "mixed_chunk_attention",
]
