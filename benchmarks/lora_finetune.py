"""LoRA vs full fine-tuning of a transformer encoder: step time and peak training memory.

Both runs train the same model (``sigplex.core.backbones.transformer.TransformerEncoder`` if
importable, else a local stack of pre-LN Linear blocks of the same size) with AdamW. "ours" is
LoRA (r=8 on qkv/proj, the encoder's declared points), the peer is full fine-tuning.
``mem_*_mb`` is the peak memory allocated during one step from a fresh optimizer (activations
+ gradients + optimizer state); ``state_grad_*_mb`` counts gradients + AdamW state alone.
``mem_ratio`` = full / LoRA (goal ≥ 1.5).
"""
from __future__ import annotations

import torch
from torch import nn

from benchmarks._timing import peak_memory_mb, row


class _LocalEncoder(nn.Module):
    """Fallback encoder: pre-LN blocks with attn.qkv / attn.proj / mlp.fc1 / mlp.fc2 Linears."""

    adapter_targets = {"lora": ("*.qkv", "*.proj")}

    def __init__(self, dim: int, depth: int, heads: int):
        super().__init__()
        self.heads = heads
        self.blocks = nn.ModuleList()
        for _ in range(depth):
            blk = nn.Module()
            blk.norm1, blk.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
            blk.attn = nn.Module()
            blk.attn.qkv, blk.attn.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
            blk.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))
            self.blocks.append(blk)

    def forward(self, x):
        b, t, c = x.shape
        for blk in self.blocks:
            q, k, v = blk.attn.qkv(blk.norm1(x)).reshape(b, t, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
            a = torch.nn.functional.scaled_dot_product_attention(q, k, v)
            x = x + blk.attn.proj(a.transpose(1, 2).reshape(b, t, c))
            x = x + blk.mlp(blk.norm2(x))
        return x


def _encoder(dim, depth, heads):
    try:
        from sigplex.core.backbones.transformer import TransformerEncoder
        return TransformerEncoder(dim=dim, depth=depth, heads=heads), "TransformerEncoder"
    except ImportError:
        return _LocalEncoder(dim, depth, heads), "local Linear stack"


def _trainer(model, x, target):
    """(params, step(opt), fresh_step()) for AdamW training of ``model``'s trainable parameters."""
    params = [p for p in model.parameters() if p.requires_grad]

    def step(opt):
        opt.zero_grad(set_to_none=True)
        loss = torch.nn.functional.mse_loss(model(x), target)
        loss.backward()
        opt.step()

    def fresh_step():  # gradients and optimizer state are allocated inside
        for p in params:
            p.grad = None
        step(torch.optim.AdamW(params, lr=1e-4))

    return params, step, fresh_step


def _interleaved_times(steps, repeat):
    """Median seconds of each step function, run alternately (shared-CPU noise hits both)."""
    import statistics
    import time

    times = [[] for _ in steps]
    for _ in range(repeat):
        for i, fn in enumerate(steps):
            start = time.perf_counter()
            fn()
            times[i].append(time.perf_counter() - start)
    return [statistics.median(t) for t in times]


def run(quick: bool = False) -> list[dict]:
    from sigplex.core.adapters import apply_adapter

    torch.manual_seed(0)
    dim, heads = 512, 8
    depth, batch, seq = (2, 4, 64) if quick else (6, 8, 128)
    x = torch.randn(batch, seq, dim)
    target = torch.randn(batch, seq, dim)

    full, source = _encoder(dim, depth, heads)
    lora, _ = _encoder(dim, depth, heads)
    lora.load_state_dict(full.state_dict())
    report = apply_adapter(lora, "lora:r=8,alpha=16")
    p_full, step_full, fresh_full = _trainer(full, x, target)
    p_lora, step_lora, fresh_lora = _trainer(lora, x, target)
    mem_full = peak_memory_mb(fresh_full)
    mem_lora = peak_memory_mb(fresh_lora)
    opt_full = torch.optim.AdamW(p_full, lr=1e-4)
    opt_lora = torch.optim.AdamW(p_lora, lr=1e-4)
    step_full(opt_full), step_lora(opt_lora)  # warm-up
    t_full, t_lora = _interleaved_times([lambda: step_full(opt_full), lambda: step_lora(opt_lora)],
                                        repeat=3 if quick else 5)
    sg_full = sum(p.numel() for p in p_full) * (4 + 8) / 2**20  # fp32 grad + AdamW exp_avg, exp_avg_sq
    sg_lora = sum(p.numel() for p in p_lora) * (4 + 8) / 2**20

    return [row(
        "lora_finetune_step", t_lora, "full_finetune", t_full,
        model=f"{source} dim={dim} depth={depth} batch={batch}x{seq}",
        trainable_share=round(report.share, 5),
        mem_ours_mb=round(mem_lora, 1), mem_peer_mb=round(mem_full, 1),
        mem_ratio=round(mem_full / mem_lora, 2) if mem_lora > 0 else None,
        state_grad_ours_mb=round(sg_lora, 2), state_grad_peer_mb=round(sg_full, 1),
        state_grad_ratio=round(sg_full / sg_lora, 1),
    )]
