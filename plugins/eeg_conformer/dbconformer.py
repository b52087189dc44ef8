"""DBConformer (Wang et al., 2025, arXiv 2506.21140): a dual-branch convolutional transformer for EEG.

Reimplemented from the paper's description. Input ``[B, n_chans, n_times]`` -> logits ``[B, n_outputs]``.

* Temporal branch: pointwise conv over channels (C -> D) + BN, depthwise temporal conv + BN,
  GELU, average pooling and dropout -> ``n_tokens`` temporal tokens of size D, learnable position
  embedding, pre-LN transformer (``temporal_depth`` blocks); tokens are mean-pooled.
* Spatial branch: one shared temporal conv (1 -> F, k, stride) on every channel, ELU, mean over time,
  Linear(F -> D) -> one token per channel, position embedding, transformer (``spatial_depth``).
* Channel attention: Linear-Tanh-Linear scores per spatial token, softmax over channels,
  weighted pooling; the weights are what :meth:`DBConformer.channel_weights` returns (topomaps).
* Head: concat (2D) -> MLP 2D -> 64 -> 32 -> n_outputs.

Attention scores are scaled by ``1/sqrt(emb_dim)`` (EEG Conformer lineage) by default.
Kernel and pooling sizes default to durations in seconds times ``sfreq`` (63/125/25/5 samples at 250 Hz).
"""
from __future__ import annotations

import torch
from torch import nn

from sigplex.core.backbones.transformer import TransformerEncoder
from sigplex.core.models import register_model


def _samples(seconds: float, sfreq: float, odd: bool = False) -> int:
    n = max(1, int(round(seconds * sfreq)))
    return n + 1 if odd and n % 2 == 0 else n


FFT_CONV = True  # train-time FFT path of the long depthwise conv (set False to always use the Conv1d kernel)


def depthwise_conv(conv: nn.Conv1d, x):
    """``conv(x)`` for a depthwise, stride-1 Conv1d; computed by FFT when gradients are needed.

    PyTorch's CPU backward of a long depthwise Conv1d (k = 63) is several times slower than an FFT
    product, so training takes the FFT path; inference and export (tracing) use the Conv1d kernel.
    Both give the same result (tested to 1e-5).
    """
    if not (FFT_CONV and torch.is_grad_enabled()) or torch.jit.is_tracing() or torch.onnx.is_in_onnx_export():
        return conv(x)
    k, p, t = conv.kernel_size[0], conv.padding[0], x.shape[-1]
    out_len = t + 2 * p - k + 1
    n = 1 << (t + k - 1 - 1).bit_length()
    w = conv.weight[:, 0].flip(-1)  # convolution = cross-correlation with the flipped kernel
    full = torch.fft.irfft(torch.fft.rfft(x, n=n) * torch.fft.rfft(w, n=n), n=n)
    y = full[..., k - 1 - p: k - 1 - p + out_len]
    return y if conv.bias is None else y + conv.bias[:, None]


class TemporalTokens(nn.Module):
    """``[B, C, T] -> [B, N, D]``: pointwise channel mixing, depthwise temporal conv, pooling."""

    def __init__(self, n_chans: int, emb_dim: int, kernel: int, pool: int, stride: int, dropout: float):
        super().__init__()
        self.pointwise = nn.Conv1d(n_chans, emb_dim, 1)
        self.bn1 = nn.BatchNorm1d(emb_dim)
        self.depthwise = nn.Conv1d(emb_dim, emb_dim, kernel, padding=kernel // 2, groups=emb_dim)
        self.bn2 = nn.BatchNorm1d(emb_dim)
        self.act = nn.GELU()
        self.pool = nn.AvgPool1d(pool, stride)
        self.drop = nn.Dropout(dropout)

    def forward(self, x):
        x = self.bn1(self.pointwise(x))
        x = self.act(self.bn2(depthwise_conv(self.depthwise, x)))
        return self.drop(self.pool(x)).transpose(1, 2)


class SpatialTokens(nn.Module):
    """``[B, C, T] -> [B, C, D]``: the same small temporal conv on every channel, one token each."""

    def __init__(self, emb_dim: int, filters: int, kernel: int, stride: int, dropout: float):
        super().__init__()
        self.conv = nn.Conv1d(1, filters, kernel, stride=stride)
        self.act = nn.ELU()
        self.proj = nn.Linear(filters, emb_dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, x):
        b, c, t = x.shape
        h = self.act(self.conv(x.reshape(b * c, 1, t))).mean(-1)  # [B*C, F]: channels folded into the batch
        return self.drop(self.proj(h.reshape(b, c, -1)))


class ChannelAttention(nn.Module):
    """Scores each channel token (Linear-Tanh-Linear), softmax over channels, weighted sum."""

    def __init__(self, emb_dim: int, hidden: int | None = None):
        super().__init__()
        hidden = hidden or emb_dim
        self.score = nn.Sequential(nn.Linear(emb_dim, hidden), nn.Tanh(), nn.Linear(hidden, 1))

    def weights(self, tokens):
        return self.score(tokens).squeeze(-1).softmax(dim=-1)  # [B, C]

    def forward(self, tokens):
        w = self.weights(tokens)
        return torch.einsum("bc,bcd->bd", w, tokens), w


@register_model("dbconformer", domain="eeg",
                tiny={"n_chans": 4, "n_outputs": 2, "n_times": 128, "sfreq": 64.0, "emb_dim": 8, "heads": 2,
                      "temporal_depth": 1, "spatial_depth": 1},
                example_input=lambda: torch.randn(2, 4, 128),
                default={"n_chans": 22, "n_outputs": 4, "n_times": 1000, "sfreq": 250.0})
class DBConformer(nn.Module):
    """Dual-branch (temporal + spatial) conformer for EEG classification, braindecode-style constructor."""

    adapter_targets = {"lora": ("*.attn.qkv", "*.attn.proj"), "bottleneck": ("*.mlp",), "conv": ("*.mlp",)}

    def __init__(self, n_chans: int, n_outputs: int, n_times: int, sfreq: float = 250.0, *,
                 emb_dim: int = 40, heads: int = 10, temporal_depth: int = 2, spatial_depth: int = 2,
                 mlp_ratio: float = 4.0, dropout: float = 0.5, attn_dropout: float = 0.0,
                 temporal_kernel: int | None = None, pool_size: int | None = None, pool_stride: int | None = None,
                 spatial_filters: int = 16, spatial_kernel: int | None = None, spatial_stride: int | None = None,
                 head_hidden: tuple[int, int] = (64, 32), attn_scale: str = "embed"):
        super().__init__()
        self.n_chans, self.n_outputs, self.n_times, self.sfreq = int(n_chans), int(n_outputs), int(n_times), float(sfreq)
        temporal_kernel = temporal_kernel or _samples(0.25, sfreq, odd=True)
        pool_size = pool_size or _samples(0.5, sfreq)
        pool_stride = pool_stride or pool_size
        spatial_kernel = spatial_kernel or _samples(0.1, sfreq)
        spatial_stride = spatial_stride or _samples(0.02, sfreq)
        if n_times < pool_size or n_times < spatial_kernel:
            raise ValueError(f"n_times={n_times} is shorter than the pooling ({pool_size}) or spatial kernel "
                             f"({spatial_kernel}); use longer windows or smaller pool_size/spatial_kernel")
        if attn_scale not in ("embed", "head"):
            raise ValueError(f"attn_scale: expected 'embed' or 'head', got {attn_scale!r}")
        self.n_tokens = (n_times - pool_size) // pool_stride + 1
        scale = emb_dim ** -0.5 if attn_scale == "embed" else None
        self.temporal_embed = TemporalTokens(n_chans, emb_dim, temporal_kernel, pool_size, pool_stride, dropout)
        self.temporal_pos = nn.Parameter(torch.zeros(1, self.n_tokens, emb_dim))
        self.temporal = TransformerEncoder(emb_dim, temporal_depth, heads, mlp_ratio, dropout, attn_scale=scale,
                                           attn_dropout=attn_dropout)
        self.spatial_embed = SpatialTokens(emb_dim, spatial_filters, spatial_kernel, spatial_stride, dropout)
        self.spatial_pos = nn.Parameter(torch.zeros(1, n_chans, emb_dim))
        self.spatial = TransformerEncoder(emb_dim, spatial_depth, heads, mlp_ratio, dropout, attn_scale=scale,
                                          attn_dropout=attn_dropout)
        self.channel_attention = ChannelAttention(emb_dim)
        h1, h2 = head_hidden
        self.head = nn.Sequential(nn.Linear(2 * emb_dim, h1), nn.ELU(), nn.Dropout(dropout),
                                  nn.Linear(h1, h2), nn.ELU(), nn.Dropout(dropout), nn.Linear(h2, n_outputs))
        nn.init.trunc_normal_(self.temporal_pos, std=0.02)
        nn.init.trunc_normal_(self.spatial_pos, std=0.02)

    def _branches(self, x):
        t = self.temporal(self.temporal_embed(x) + self.temporal_pos).mean(1)
        s = self.spatial(self.spatial_embed(x) + self.spatial_pos)
        pooled, weights = self.channel_attention(s)
        return torch.cat([t, pooled], dim=-1), weights

    def forward_features(self, x):
        """Fused features ``[B, 2 * emb_dim]`` (temporal mean token ‖ channel-attention pooled token)."""
        return self._branches(x)[0]

    def forward_head(self, features):
        return self.head(features)

    def channel_weights(self, x):
        """Channel-attention weights ``[B, n_chans]`` (each row sums to 1)."""
        return self._branches(x)[1]

    def forward(self, x):
        return self.forward_head(self.forward_features(x))


__all__ = ["ChannelAttention", "DBConformer", "SpatialTokens", "TemporalTokens"]
