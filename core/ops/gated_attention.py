"""Joint local (quadratic, per chunk) + global (linear) attention of FLASH / MossFormer.

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

:func:`mixed_chunk_attention` is that math as a pure function. The full MossFormer layer
built on it (token shift, projections, gating) is
:class:`sigplex.core.blocks.GatedAttentionUnit`.

>>> import torch
>>> q = qk = torch.randn(2, 50, 16)
>>> mixed_chunk_attention(q, qk, q, qk, torch.randn(2, 50, 32), group_size=16).shape
torch.Size([2, 50, 32])
"""
from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F

from .inference import eager_inference

# Inference computes the output a block of chunks at a time, each block's output about this many
# bytes, so that its local scores and output stay in cache while the global term is added to it:
# one [T, E] buffer instead of two, each value row read once by the local product. Measured on
# 2 cores (MossFormer shapes: qk 128, E 2048, chunks of 256), whole-tensor vs blocks:
# 21 vs 16 ms at T = 2k, 82 vs 74 ms at 8k, 318 vs 298 ms at 32k.
BLOCK_BYTES = 4 * 2 ** 20


def _pad_tokens(x: torch.Tensor, pad: int) -> torch.Tensor:
    return F.pad(x, (0, 0, 0, pad)) if pad else x


def _blocked_global_local(qq, kq, ql, vv, kv, c: int) -> torch.Tensor:
    """Non-causal inference: ``relu(qq kqᵀ / c)² vv + ql kv`` per chunk, in cache-sized blocks of chunks.

    qq, kq, ql: ``[L, g, c, s]``; vv: ``[L, g, c, e]``; kv: ``[L, s, e]`` -> ``[L, g, c, e]``.
    """
    lead, g, e = qq.shape[0], qq.shape[1], vv.shape[-1]
    out = vv.new_empty(lead * g, c, e)
    rows = [t.reshape(lead * g, c, -1) for t in (qq, kq, ql, vv)]
    step = max(1, BLOCK_BYTES // (c * e * vv.element_size()))
    # blocks never straddle two batch rows, so each adds one kv
    for b, start in itertools.product(range(lead), range(0, g, step)):
        r = slice(b * g + start, b * g + min(g, start + step))
        q, k, lq, v = (t[r] for t in rows)
        scores = (q / c) @ k.transpose(-1, -2)
        scores.relu_().square_()
        block = out[r]
        torch.matmul(scores, v, out=block)
        block.view(-1, e).addmm_(lq.reshape(-1, lq.shape[-1]), kv[b])
    return out.view(lead, g, c, e)


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
    if not causal:
        kv = lin_k.transpose(-1, -2) @ values / n  # [..., s, e]: the global part's summary
    if not causal and dropout_p == 0.0 and eager_inference(quad_q, quad_k, lin_q, lin_k, values):
        flat = [t.reshape(-1, *t.shape[-3:]) for t in (qq, kq, chunks(lin_q, s), vv)]
        out = _blocked_global_local(*flat, kv.reshape(-1, s, e), c).reshape(*lead, g * c, e)
        return out[..., :n, :] if pad else out
    attn = (qq / c) @ kq.transpose(-1, -2)  # [..., g, c, c]; scale the smaller operand
    attn = F.relu(attn).square() if attn.requires_grad else attn.relu_().square_()  # in place: no temporaries
    if causal:
        attn = attn.masked_fill(
            torch.ones(c, c, dtype=torch.bool, device=attn.device).triu(1), 0.0
        )
    if dropout_p > 0.0:
        attn = F.dropout(attn, p=dropout_p)
    out = attn @ vv  # [..., g, c, e]

    if not causal:
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


__all__ = ["mixed_chunk_attention"]
