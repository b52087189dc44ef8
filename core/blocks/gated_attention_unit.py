"""MossFormer / FLASH gated attention unit: one layer of joint local + global attention with gating.

Built on :func:`sigplex.core.ops.gated_attention.mixed_chunk_attention` (the kernel) and the
blocks :class:`FFConvM` and :class:`OffsetScale`: optional token shift of half the channels,
projections ``FFConvM`` (norm → Linear → SiLU → depthwise conv k=17 with residual → dropout)
to a hidden ``[v, u]`` and a shared low-dim ``qk``, ``OffsetScale`` into quad/lin queries and
keys, rotary embedding, joint attention applied to both ``v`` and ``u``, gated output
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

from ..ops.gated_attention import mixed_chunk_attention
from ..ops.rotary import RotaryEmbedding
from .ffconv import FFConvM
from .offset_scale import OffsetScale


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


__all__ = ["GatedAttentionUnit"]
