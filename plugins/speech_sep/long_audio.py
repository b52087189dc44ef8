"""Chunked overlap-add separation of recordings of any length, with speaker-order stitching.

The recording is cut into chunks of ``chunk`` samples that overlap by at least ``overlap``
(at most ``chunk / 2``) samples; the last chunk is moved back to end at the recording's end. Each chunk is separated
on its own, so the model's memory depends on ``chunk`` only, never on the recording's length.
A separator may return its speakers in any order for every chunk, so each chunk's outputs are
aligned to the previous chunk's (already aligned) outputs on their shared overlap: the
permutation maximising the summed normalised correlation (exhaustive for up to 3 speakers,
Hungarian beyond), then optionally a least-squares gain per speaker, then a linear cross-fade over the last
``overlap`` samples the two chunks share (complementary ramps: the weights sum to one everywhere).

The loop over chunks lives in this driver, never in a model's forward pass.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from .losses import best_permutation


def chunk_starts(length: int, chunk: int, overlap: int) -> list[int]:
    """Start samples of the chunks covering ``length`` samples (consecutive overlaps ``>= overlap``)."""
    if chunk <= 0 or not 0 < overlap <= chunk // 2:
        raise ValueError(f"need chunk > 0 and 0 < overlap <= chunk / 2, got chunk={chunk}, overlap={overlap}")
    if length <= chunk:
        return [0]
    hop = chunk - overlap
    starts = list(range(0, length - chunk, hop))
    starts.append(length - chunk)
    return starts


def align_to_previous(prev: torch.Tensor, cur: torch.Tensor, match_gain: bool = True) -> torch.Tensor:
    """Reorder (and rescale) ``cur [S, O]`` so its speakers line up with ``prev [S, O]``; returns the
    permutation ``[S]`` (``cur[perm[j]]`` continues ``prev[j]``) and the gains ``[S]``."""
    p = prev.double()
    c = cur.double()
    dots = c @ p.T  # [S_cur, S_prev]
    norms = c.norm(dim=1)[:, None] * p.norm(dim=1)[None, :] + 1e-12
    perm = best_permutation((-dots / norms)[None])[0]
    c = c[perm]
    if match_gain:
        energy = c.square().sum(1)
        gains = torch.where(energy > 1e-12, (c * p).sum(1) / energy.clamp(min=1e-12), torch.ones_like(energy))
        gains = gains.clamp(0.1, 10.0)
    else:
        gains = torch.ones(c.shape[0], dtype=torch.float64)
    return perm, gains.to(cur.dtype)


@torch.no_grad()
def separate_long(separate: Callable[[torch.Tensor], torch.Tensor], mixture, num_spks: int, chunk: int,
                  overlap: int, *, match_gain: bool = True, out: np.ndarray | None = None,
                  device: str | torch.device = "cpu") -> np.ndarray:
    """Separate a 1-D ``mixture`` (numpy array, memmap or tensor) of any length -> ``[S, T]`` float32.

    ``separate`` maps ``[1, t]`` to ``[1, S, t]`` (a model). ``out`` may be a preallocated
    ``[S, T]`` array (e.g. ``np.memmap``) so that nothing of size ``T`` is held in RAM.
    """
    length = int(mixture.shape[-1])
    starts = chunk_starts(length, chunk, overlap)
    if out is None:
        out = np.zeros((num_spks, length), dtype=np.float32)
    else:
        out[...] = 0.0
    prev_tail, prev_end = None, 0  # aligned estimate of the previous chunk on [starts[k], prev_end)
    for k, start in enumerate(starts):
        end = min(start + chunk, length)
        seg = mixture[start:end]
        seg = torch.as_tensor(np.asarray(seg, dtype=np.float32)).to(device)
        est = separate(seg[None])[0].float().cpu()  # [S, t]
        if est.shape != (num_spks, end - start):
            raise ValueError(f"separator returned {tuple(est.shape)}, expected {(num_spks, end - start)}")
        weight = torch.ones(end - start)
        ramp = (torch.arange(overlap) + 0.5) / overlap
        if k > 0:
            shared = prev_end - start  # >= overlap; the cross-fade uses its last `overlap` samples
            perm, gains = align_to_previous(prev_tail, est[:, :shared], match_gain)
            est = est[perm] * gains[:, None]
            weight[:shared - overlap] = 0.0
            weight[shared - overlap:shared] = ramp
        if k + 1 < len(starts):
            weight[end - start - overlap:] *= 1.0 - ramp
            prev_tail = est[:, starts[k + 1] - start:].clone()
        prev_end = end
        out[:, start:end] += (est * weight).numpy()
    return out


def separate(model, mixture, num_spks: int, sample_rate: int, chunk_seconds: float, overlap_seconds: float) -> np.ndarray:
    """``[T] -> [S, T]`` with ``model`` (called as ``model(x)`` on ``[1, t]``): one pass if the mixture fits a
    chunk of ``chunk_seconds``, else chunked overlap-add with chunks overlapping by ``overlap_seconds``."""
    from sigplex.core.infer import model_device

    chunk, overlap = int(round(chunk_seconds * sample_rate)), int(round(overlap_seconds * sample_rate))
    return separate_long(model, mixture, num_spks, chunk, max(1, overlap), device=model_device(model))


__all__ = ["align_to_previous", "chunk_starts", "separate", "separate_long"]
