"""Naive recurrent references of the long-sequence mixers (sigplex.core.ops), token by token, for the tests only."""
import torch
import torch.nn.functional as F


def rel_err(got, expected):
    """max |got - expected| / max |expected|: the tests' float64 measure of exactness."""
    return float((got - expected).abs().max() / expected.abs().max().clamp_min(1e-300))


def grads(fn, *inputs):
    """Gradients of ``(fn(*inputs) * w).sum()`` (a fixed random weight w) with respect to every input."""
    inputs = [t.detach().clone().requires_grad_() for t in inputs]
    out = fn(*inputs)
    w = torch.randn(out.shape, generator=torch.Generator().manual_seed(123), dtype=out.dtype)
    return torch.autograd.grad((out * w).sum(), inputs)


def naive_s4d(u, log_dt, log_a_real, a_imag, c, d=None):
    """S4D's recurrence: x_t = Ā x_{t-1} + B̄ u_t, y_t = 2 Re(C x_t) + D u_t (complex128, ZOH, B = 1)."""
    a = torch.complex(-torch.exp(log_a_real), a_imag)
    abar = torch.exp(torch.exp(log_dt)[:, None] * a)
    bbar = (abar - 1) / a
    cc = torch.complex(c[..., 0], c[..., 1])
    x = torch.zeros(u.shape[0], *a.shape, dtype=abar.dtype)
    ys = []
    for t in range(u.shape[-1]):
        x = abar * x + bbar * u[..., t, None]
        ys.append(2 * (cc * x).sum(-1).real)
    y = torch.stack(ys, -1)
    return y if d is None else y + u * d[:, None]


def naive_selective_scan(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False, state=None):
    """Mamba's sequential recurrence, one token at a time; returns (y [b, d, l], last state [b, d, n])."""
    if delta_bias is not None:
        delta = delta + delta_bias[:, None]
    if delta_softplus:
        delta = F.softplus(delta)
    h = torch.zeros(u.shape[0], *A.shape, dtype=u.dtype) if state is None else state
    ys = []
    for t in range(u.shape[-1]):
        h = torch.exp(delta[:, :, t, None] * A) * h + (delta[:, :, t] * u[:, :, t])[..., None] * B[:, None, :, t]
        ys.append((h * C[:, None, :, t]).sum(-1))
    y = torch.stack(ys, -1)
    if D is not None:
        y = y + u * D[:, None]
    if z is not None:
        y = y * F.silu(z)
    return y, h


def naive_gla(q, k, v, log_g, scale=None, state=None):
    """Gated linear attention: S_t = diag(exp(log_g_t)) S_{t-1} + k_t v_tᵀ, o_t = scale·q_tᵀ S_t.

    q, k, log_g [B, H, T, K], v [B, H, T, V]; returns (o [B, H, T, V], S [B, H, K, V])."""
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    s = q.new_zeros(*q.shape[:2], q.shape[-1], v.shape[-1]) if state is None else state
    out = []
    for t in range(q.shape[2]):
        s = torch.exp(log_g[:, :, t, :, None]) * s + k[:, :, t, :, None] * v[:, :, t, None, :]
        out.append(scale * (q[:, :, t, :, None] * s).sum(-2))
    return torch.stack(out, 2), s


def naive_delta_rule(q, k, v, beta, scale=None, state=None):
    """DeltaNet: S_t = S_{t-1} (I - β_t k_t k_tᵀ) + β_t v_t k_tᵀ, o_t = scale·S_t q_t (state as [K, V] here:
    S_t = (I - β k kᵀ) S_{t-1} + β k vᵀ). q, k [B, H, T, K], v [B, H, T, V], beta [B, H, T]."""
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    s = q.new_zeros(*q.shape[:2], q.shape[-1], v.shape[-1]) if state is None else state
    out = []
    for t in range(q.shape[2]):
        kt, vt, bt = k[:, :, t], v[:, :, t], beta[:, :, t, None]
        pred = (kt[..., None] * s).sum(-2)  # kᵀ S
        s = s + kt[..., None] * (bt * (vt - pred))[..., None, :]
        out.append(scale * (q[:, :, t, :, None] * s).sum(-2))
    return torch.stack(out, 2), s
