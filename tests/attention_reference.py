"""Naive float64 references of the core's attention math, shared by the ops and blocks tests."""
from __future__ import annotations

import torch


def naive_mixed(quad_q, quad_k, lin_q, lin_k, v, group_size, causal=False, mask=None):
    """The whole T×T matrix in float64: block-diagonal relu² + (causal: earlier-chunk) linear part."""
    qq, kq, ql, kl, v = (t.double() for t in (quad_q, quad_k, lin_q, lin_k, v))
    n = qq.shape[-2]
    chunk = torch.arange(n) // group_size
    same = chunk[:, None] == chunk[None, :]
    quad = torch.relu(qq @ kq.transpose(-1, -2) / group_size) ** 2 * same
    lin = ql @ kl.transpose(-1, -2)
    if causal:
        quad = quad * torch.ones(n, n).tril()
        lin = lin * (chunk[None, :] < chunk[:, None]) / group_size
    else:
        lin = lin / n
    w = quad + lin
    if mask is not None:
        w = w * mask[..., None, :].double()
    return w @ v


def naive_rotary(x, rotary_dim, base=10000.0, offset=0):
    """Complex-number rotation of adjacent channel pairs (RoFormer), float64."""
    x = x.double()
    n = x.shape[-2]
    theta = base ** (-torch.arange(0, rotary_dim, 2, dtype=torch.float64) / rotary_dim)
    pos = torch.arange(offset, offset + n, dtype=torch.float64)
    rot = torch.polar(torch.ones(n, rotary_dim // 2, dtype=torch.float64), pos[:, None] * theta)
    z = torch.view_as_complex(x[..., :rotary_dim].reshape(*x.shape[:-1], rotary_dim // 2, 2).contiguous())
    y = torch.view_as_real(z * rot).flatten(-2)
    return torch.cat((y, x[..., rotary_dim:]), -1)
