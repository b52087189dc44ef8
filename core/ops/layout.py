"""Memory-layout helpers for ``[B, C, *S]`` grids: channels-last memory format and channels-last views.

oneDNN runs CPU convolutions fastest in channels-last memory; :func:`channels_last` puts a tensor
there (a no-op when it already is). :func:`channels_to_last` / :func:`channels_to_first` move the
channel dim of a tensor as a view, without copying.
"""
from __future__ import annotations

import torch


def channels_to_last(x: torch.Tensor) -> torch.Tensor:
    """``[B, C, *S]`` -> ``[B, *S, C]`` (a view)."""
    return x.permute(0, *range(2, x.ndim), 1)


def channels_to_first(x: torch.Tensor) -> torch.Tensor:
    """``[B, *S, C]`` -> ``[B, C, *S]`` (a view)."""
    return x.permute(0, x.ndim - 1, *range(1, x.ndim - 1))


def channels_last(x: torch.Tensor) -> torch.Tensor:
    """``x`` in channels-last memory format (no copy when it already is; untouched when tracing)."""
    if torch.jit.is_tracing() or torch.jit.is_scripting() or torch.onnx.is_in_onnx_export():
        return x
    if x.ndim == 5:
        return x.contiguous(memory_format=torch.channels_last_3d)
    return x.contiguous(memory_format=torch.channels_last) if x.ndim == 4 else x


__all__ = ["channels_last", "channels_to_first", "channels_to_last"]
