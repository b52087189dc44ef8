"""Scaled dot-product attention: one entry for every model, dispatching to PyTorch SDPA.

``attention(q, k, v, bias=None, mask=None, scale=None, dropout_p=0.0)`` takes tensors shaped
``[..., heads, tokens, head_dim]``. ``bias`` is an additive float tensor, ``mask`` is either
boolean (True = attend, SDPA's convention) or additive float; both broadcast to
``[..., heads, q_len, k_len]``. A lone boolean mask goes to SDPA as is; a bias and a mask
are folded into one additive mask (masked entries become ``-inf``). ``scale`` overrides the
default ``1/sqrt(head_dim)`` (EEG Conformer-style models use ``1/sqrt(embed_dim)``).

Fully masked query rows (every key masked out) give an output of **zeros** and zero
gradients, on both paths -- the same convention as SDPA (never NaN).

``dropout_p`` is applied whenever it is > 0: passing ``p if self.training else 0.0`` is the
caller's job (as with SDPA).

The fused path (SDPA) is the default; set ``SIGPLEX_FUSED_ATTN=0`` (or call
:func:`set_fused_attention`, or use the :func:`fused_attention` context manager) to run
:func:`attention_reference`, the plain math, for debugging numerics. Both paths are tested
against each other.

:class:`MultiHeadAttention` is the module every sigplex transformer uses: fused ``qkv``
Linear, ``proj`` output Linear, batch-first ``[B, T, C]``, numerically equal to
``torch.nn.MultiheadAttention`` with the same weights (see :meth:`MultiHeadAttention.from_torch`).

>>> import torch
>>> q = k = v = torch.randn(2, 4, 10, 8)
>>> attention(q, k, v).shape
torch.Size([2, 4, 10, 8])
>>> mha = MultiHeadAttention(32, num_heads=4)
>>> mha(torch.randn(2, 10, 32)).shape
torch.Size([2, 10, 32])
"""
from __future__ import annotations

import os
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils._python_dispatch import _get_current_dispatch_mode

from ..device import cpu_fast_path

_FUSED = os.environ.get("SIGPLEX_FUSED_ATTN", "1").strip().lower() not in {"0", "false", "no", "off"}
# MultiHeadAttention inference takes torch's native fused MHA kernel up to this many tokens x heads (CPU):
# measured on 2 cores (benchmarks/mha.py), it beats SDPA there (B32 T63 H10: 1.08 vs 0.90 of the peer's time),
# and SDPA wins above (B32 T128 H16: 1.61 vs 0.96; B8 T256 H8: 1.33 vs 1.04)
NATIVE_MAX_TOKENS_X_HEADS = 1024


def fused_attention_enabled() -> bool:
    """Whether ops use fused kernels (SDPA) rather than the reference math."""
    return _FUSED


def set_fused_attention(enabled: bool) -> None:
    """Switch every attention op between the fused path and the reference math."""
    global _FUSED
    _FUSED = bool(enabled)


@contextmanager
def fused_attention(enabled: bool):
    """Context manager form of :func:`set_fused_attention`."""
    previous = _FUSED
    set_fused_attention(enabled)
    try:
        yield
    finally:
        set_fused_attention(previous)


def combine_bias_and_mask(bias, mask, dtype):
    """Fold an additive ``bias`` and a boolean/additive ``mask`` into one additive mask (or None).

    A boolean ``mask`` marks allowed positions with True; disallowed ones become ``-inf``.
    The result broadcasts like ``bias + mask``.
    """
    if mask is not None and mask.dtype == torch.bool:
        base = bias.to(dtype) if bias is not None else torch.zeros((), dtype=dtype, device=mask.device)
        return torch.where(mask, base, torch.full((), float("-inf"), dtype=dtype, device=mask.device))
    if bias is None:
        return None if mask is None else mask.to(dtype)
    bias = bias.to(dtype)
    return bias if mask is None else bias + mask.to(dtype)


def attention(q, k, v, bias=None, mask=None, scale=None, dropout_p: float = 0.0):
    """Softmax attention ``softmax(q kᵀ·scale + bias + mask) v`` through SDPA when enabled.

    q: ``[..., H, Lq, D]``, k: ``[..., H, Lk, D]``, v: ``[..., H, Lk, Dv]`` -> ``[..., H, Lq, Dv]``.
    """
    if bias is None and mask is not None and mask.dtype == torch.bool and _FUSED:
        # SDPA takes a boolean mask natively: no additive mask to materialise.
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p, scale=scale)
    additive = combine_bias_and_mask(bias, mask, q.dtype)
    if additive is not None and additive.dim() < q.dim():
        # same broadcast, but SDPA's CPU flash kernel takes only a mask with q's rank: a [H, L, S]
        # mask against [B, H, L, D] would send it to the unfused math path (2x slower here)
        additive = additive.view((1,) * (q.dim() - additive.dim()) + tuple(additive.shape))
    if not _FUSED:
        return attention_reference(q, k, v, additive, scale=scale, dropout_p=dropout_p)
    return F.scaled_dot_product_attention(
        q, k, v, attn_mask=additive, dropout_p=dropout_p, scale=scale
    )


def attention_reference(q, k, v, additive_mask=None, scale=None, dropout_p: float = 0.0):
    """The plain-math path: explicit scores, softmax and weighted sum.

    Rows whose scores are all ``-inf`` give zero weights (output 0), as SDPA does.
    """
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    scores = (q @ k.transpose(-2, -1)) * scale
    if additive_mask is not None:
        if additive_mask.dtype == torch.bool:
            additive_mask = combine_bias_and_mask(None, additive_mask, scores.dtype)
        scores = scores + additive_mask
        dead = torch.isneginf(scores).all(dim=-1, keepdim=True)
        # Give dead rows finite scores so softmax (and its backward) stays NaN-free, then zero them.
        scores = scores.masked_fill(dead, 0.0)
        weights = scores.softmax(dim=-1).masked_fill(dead, 0.0)
    else:
        weights = scores.softmax(dim=-1)
    if dropout_p > 0.0:
        weights = F.dropout(weights, p=dropout_p)
    return weights @ v


class MultiHeadAttention(nn.Module):
    """Multi-head attention over ``[B, T, C]`` with a fused ``qkv`` Linear and a ``proj`` Linear.

    ``scale`` overrides ``1/sqrt(head_dim)`` (e.g. ``embed_dim ** -0.5`` for the EEG Conformer
    lineage). ``dropout`` is attention-weight dropout, active only in training mode.
    ``forward(x, context=None, bias=None, mask=None, key_padding_mask=None)``:

    - ``context`` (``[B, S, C]``): keys/values source for cross-attention (default: ``x``);
    - ``bias``: additive, broadcast to ``[B, heads, T, S]``;
    - ``mask``: boolean True = attend (or additive), broadcast to ``[B, heads, T, S]``;
    - ``key_padding_mask``: ``[B, S]`` boolean, **True = padding (ignored)**, as in
      ``torch.nn.MultiheadAttention``.

    Parameter names (``qkv``, ``proj``) are where LoRA adapters attach.

    Small-shape inference (no grad, plain self-attention, ``tokens x heads <= 1024``, CPU)
    dispatches to PyTorch's fused native multi-head-attention kernel, the one
    ``torch.nn.MultiheadAttention`` takes in eval mode: at head widths of 4-16 SDPA's blocked
    kernel spends its time on per-block overhead. Everything else -- training, masks, biases,
    cross-attention, adapters' hooks, tracing/export -- goes through :func:`attention` (SDPA).
    ``benchmarks/mha.py`` measures both against the peer.

    >>> import torch
    >>> ref = torch.nn.MultiheadAttention(16, 2, batch_first=True)
    >>> ours = MultiHeadAttention.from_torch(ref)
    >>> x = torch.randn(3, 7, 16)
    >>> bool(torch.allclose(ours(x), ref(x, x, x, need_weights=False)[0], atol=1e-6))
    True
    """

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0, bias: bool = True,
                 scale: float | None = None):
        super().__init__()
        if embed_dim % num_heads:
            raise ValueError(f"embed_dim={embed_dim} must be divisible by num_heads={num_heads}")
        self.embed_dim = embed_dim
        self.num_heads = num_heads
        self.head_dim = embed_dim // num_heads
        self.scale = scale
        self.dropout = dropout
        self.qkv = nn.Linear(embed_dim, 3 * embed_dim, bias=bias)
        self.proj = nn.Linear(embed_dim, embed_dim, bias=bias)

    @classmethod
    def from_torch(cls, mha: nn.MultiheadAttention, scale: float | None = None) -> "MultiHeadAttention":
        """A copy of ``torch.nn.MultiheadAttention`` ``mha`` (packed in-projection, no bias_k/v)."""
        if mha.in_proj_weight is None or mha.bias_k is not None or mha.add_zero_attn:
            raise ValueError("only packed in-projection without bias_k/bias_v/add_zero_attn is supported")
        has_bias = mha.in_proj_bias is not None
        out = cls(mha.embed_dim, mha.num_heads, dropout=mha.dropout, bias=has_bias, scale=scale)
        with torch.no_grad():
            out.qkv.weight.copy_(mha.in_proj_weight)
            out.proj.weight.copy_(mha.out_proj.weight)
            if has_bias:
                out.qkv.bias.copy_(mha.in_proj_bias)
                out.proj.bias.copy_(mha.out_proj.bias)
        return out.to(mha.in_proj_weight.device, mha.in_proj_weight.dtype)

    def _native_ok(self, x) -> bool:
        """Whether this call may take the fused native kernel (see the class docstring)."""
        if torch.jit.is_tracing() or torch.jit.is_scripting() or torch.compiler.is_compiling():
            return False
        if (not _FUSED or x.dim() != 3 or not cpu_fast_path(x) or x.dtype != torch.float32
                or x.shape[1] * self.num_heads > NATIVE_MAX_TOKENS_X_HEADS or (self.training and self.dropout > 0)):
            return False
        if torch.is_grad_enabled() and (x.requires_grad or self.qkv.weight.requires_grad or self.proj.weight.requires_grad
                                        or any(p is not None and p.requires_grad for p in (self.qkv.bias, self.proj.bias))):
            return False
        hooked = any(m._forward_hooks or m._forward_pre_hooks for m in (self, self.qkv, self.proj))
        return not hooked and type(self.qkv) is nn.Linear and type(self.proj) is nn.Linear \
            and _get_current_dispatch_mode() is None

    def _native_forward(self, x):
        c = self.embed_dim
        w, b = self.qkv.weight, self.qkv.bias
        if b is None:
            b = torch.zeros(3 * c, dtype=x.dtype)
        if self.scale is not None:  # the kernel scales q by 1/sqrt(head_dim): fold the ratio into q's projection
            ratio = torch.ones(3 * c, 1, dtype=x.dtype)
            ratio[:c] = self.scale * self.head_dim ** 0.5
            w, b = w * ratio, b * ratio[:, 0]
        pb = self.proj.bias if self.proj.bias is not None else torch.zeros(c, dtype=x.dtype)
        return torch._native_multi_head_attention(x, x, x, c, self.num_heads, w, b, self.proj.weight, pb,
                                                  None, False)[0]

    def _heads(self, t, parts: int):
        b, n, _ = t.shape
        return t.view(b, n, parts, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)

    def forward(self, x, context=None, bias=None, mask=None, key_padding_mask=None):
        if context is None and bias is None and mask is None and key_padding_mask is None and self._native_ok(x):
            return self._native_forward(x)
        b, n, c = x.shape
        if context is None:
            q, k, v = self._heads(self.qkv(x), 3).unbind(0)
        else:
            w, bb = self.qkv.weight, self.qkv.bias
            q = self._heads(F.linear(x, w[:c], None if bb is None else bb[:c]), 1)[0]
            k, v = self._heads(F.linear(context, w[c:], None if bb is None else bb[c:]), 2).unbind(0)
        if key_padding_mask is not None:
            keep = ~key_padding_mask.to(torch.bool)[:, None, None, :]
            if mask is None:
                mask = keep
            elif mask.dtype == torch.bool:
                mask = mask & keep
            else:
                mask = combine_bias_and_mask(mask, keep, q.dtype)
        out = attention(q, k, v, bias=bias, mask=mask, scale=self.scale,
                        dropout_p=self.dropout if self.training else 0.0)
        return self.proj(out.transpose(1, 2).reshape(b, n, c))


__all__ = [
    "MultiHeadAttention",
    "attention",
    "attention_reference",
    "combine_bias_and_mask",
    "fused_attention",
    "fused_attention_enabled",
    "set_fused_attention",
]
