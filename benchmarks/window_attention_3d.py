"""3D shifted-window attention: sigplex vs MONAI 1.6.1, forward and forward+backward.

Two comparisons with the same weights, fp32, 2 threads:

- ``step``: one whole shifted-window attention step on a channels-last grid (what a Swin block
  does around its attention: MONAI builds the mask, pads, rolls, partitions, attends, reverses,
  rolls back, crops; sigplex's ``WindowAttention.forward_grid`` uses a cached plan, one gather
  each way and SDPA). Grid 32^3 x 24 channels, 3 heads, window 7, shift 3 (stage 1 of Swin
  UNETR at 64^3, feature_size 24); ``--quick``: grid 21^3.
- ``module``: the ``WindowAttention(x_windows, mask)`` call alone on pre-partitioned windows, each
  with its library's shift mask (MONAI: -100 across regions; sigplex: ``MASK_VALUE`` = -1e4, the
  same weights without float32 denormals in the softmax).

Forward+backward rows time both of sigplex's backwards -- the hand-written one (``own_backward_s``) and
PyTorch's autograd through SDPA (``pytorch_backward_s``) -- and report as ``ours_s`` the one this machine's
kernel choice trains with (``backward``; :mod:`sigplex.core.kernels`).
``device``: where both run (``benchmarks device_check`` passes it).
"""
from __future__ import annotations

import torch

from benchmarks._timing import median_times_interleaved, row, synced


def run(quick: bool = False, device: str = "cpu") -> list[dict]:
    from monai.networks.nets import swin_unetr as ms

    from sigplex.core.device import set_kernel_choices
    from sigplex.core.kernels import choose_kernels
    from sigplex.core.ops.window import WindowAttention, padded_shape, shifted_window_mask

    torch.set_num_threads(2)
    torch.manual_seed(0)
    dim, heads, window, shift = 24, 3, (7, 7, 7), (3, 3, 3)
    grid = (21, 21, 21) if quick else (32, 32, 32)
    block = ms.SwinTransformerBlock(dim, heads, window, shift, qkv_bias=True)
    block.norm1 = torch.nn.Identity()  # time the attention step only
    ours = WindowAttention(dim, heads, window, qkv_bias=True)
    ours.load_state_dict(block.attn.state_dict())
    block.to(device)
    ours.to(device)
    extra = {} if torch.device(device).type == "cpu" else {"device": str(device)}

    def timed(fns):
        return median_times_interleaved({k: synced(f, device) for k, f in fns.items()}, repeat=repeat)

    repeat = 3 if quick else 5
    # the backward this machine trains with (sigplex.core.kernels); both paths are timed and reported
    chosen = "own" if choose_kernels(device=device)["window_backward"] else "default"

    def both_paths(step):
        def with_choice(on):
            def call():
                previous = set_kernel_choices({"window_backward": on})
                try:
                    return step()
                finally:
                    set_kernel_choices(previous)
            return call
        return {"own": with_choice(True), "default": with_choice(False)}

    def paths(t):
        return {"backward": chosen, "own_backward_s": round(t["own"], 5), "pytorch_backward_s": round(t["default"], 5)}
    padded = list(padded_shape(grid, window))

    def monai_step(x):
        mask = ms.compute_mask(padded, window, shift, x.device)  # as BasicLayer does per forward
        return block.forward_part1(x, mask)

    rows = []
    x = torch.randn(1, *grid, dim, device=device)
    with torch.no_grad():
        diff = (ours.forward_grid(x, shift) - monai_step(x)).abs().max().item()
        t = timed({"ours": lambda: ours.forward_grid(x, shift), "monai": lambda: monai_step(x)})
    rows.append(row("window_attention_3d", t["ours"], "monai shifted-window step", t["monai"], mode="forward",
                    what="step", grid=f"{grid[0]}^3x{dim}", max_abs_diff=float(f"{diff:.1e}"), **extra))

    xg = x.clone().requires_grad_()

    def fb(fn):
        def step():
            out = fn(xg)
            out.square().mean().backward()
            xg.grad = None
        return step

    t = timed({**both_paths(fb(lambda v: ours.forward_grid(v, shift))), "monai": fb(monai_step)})
    rows.append(row("window_attention_3d", t[chosen], "monai shifted-window step", t["monai"],
                    mode="forward+backward", what="step", grid=f"{grid[0]}^3x{dim}", **paths(t), **extra))

    # the module alone, on pre-partitioned windows, each with its library's shift mask (the same
    # regions; MONAI adds -100 across them, sigplex MASK_VALUE = -1e4: equal weights, no denormals)
    mask = ms.compute_mask(padded, window, shift, torch.device(device))
    own = shifted_window_mask(padded, window, shift, device)
    xw = torch.randn(mask.shape[0], 343, dim, device=device)
    theirs = block.attn
    with torch.no_grad():
        t = timed({"ours": lambda: ours(xw, own), "monai": lambda: theirs(xw, mask)})
    rows.append(row("window_attention_3d", t["ours"], "monai WindowAttention", t["monai"], mode="forward",
                    what="module", windows=int(mask.shape[0]), **extra))
    xwg = xw.clone().requires_grad_()

    def fbm(mod, m):
        def step():
            mod(xwg, m).square().mean().backward()
            xwg.grad = None
        return step

    t = timed({**both_paths(fbm(ours, own)), "monai": fbm(theirs, mask)})
    rows.append(row("window_attention_3d", t[chosen], "monai WindowAttention", t["monai"], mode="forward+backward",
                    what="module", windows=int(mask.shape[0]), **paths(t), **extra))
    return rows
