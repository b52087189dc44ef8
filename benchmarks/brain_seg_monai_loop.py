"""Swin UNETR trained end to end in MONAI's own loop: MONAI's ``SwinUNETR`` against ours, same weights.

The loop is a MONAI user's: ``CacheDataset`` over the brain_seg phantom cases with the plugin's
training transforms (foreground crop, normalisation, random 64^3 crop, flips, intensity jitter),
``DataLoader`` (batch 1, shuffled, one seed), ``DiceLoss(sigmoid=True)``, AdamW lr 1e-4. Both
models start from the same weights and see the same crops in the same order. Throughput = cases
per second from step ``WARM`` to the last step. Metric: mean Dice of the three regions (TC, WT,
ET) on the held-out phantom test cases, sliding-window inference at 64^3, threshold 0.5.
ratio = MONAI seconds per case / ours (> 1: ours trains faster).
"""
from __future__ import annotations

import time

import torch

from benchmarks._timing import row

ROI, WARM, LR = (64, 64, 64), 3, 1e-4


def _loaders(seed: int):
    from monai.data import CacheDataset, DataLoader

    from sigplex.plugins.brain_seg.data import phantom_records
    from sigplex.plugins.brain_seg.transforms import eval_transforms, train_transforms

    def items(split):
        return [dict(r.to_dict(), reference=str(r.images[0])) for r in phantom_records(split)]

    augment = train_transforms(ROI)
    augment.set_random_state(seed)  # the same crops and flips for both models
    train = CacheDataset(items("train"), augment, cache_rate=1.0, num_workers=0, progress=False)
    test = CacheDataset(items("test"), eval_transforms(), cache_rate=1.0, num_workers=0, progress=False)
    gen = torch.Generator().manual_seed(seed)
    return DataLoader(train, batch_size=1, shuffle=True, num_workers=0, generator=gen), test


def _train(model, epochs: int, seed: int) -> dict:
    from monai.inferers import sliding_window_inference
    from monai.losses import DiceLoss
    from monai.metrics import DiceMetric

    torch.manual_seed(seed)
    loader, test = _loaders(seed)
    loss_fn = DiceLoss(sigmoid=True)
    opt = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=1e-5)
    stamps = []
    model.train()
    for _ in range(epochs):
        for batch in loader:
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(batch["image"]), batch["label"])
            loss.backward()
            opt.step()
            stamps.append(time.perf_counter())
    metric = DiceMetric(include_background=True, reduction="mean")
    model.eval()
    with torch.no_grad():
        for case in test:
            logits = sliding_window_inference(case["image"][None], ROI, 2, model, overlap=0.25)
            metric((torch.sigmoid(logits) > 0.5).float(), case["label"][None])
    return {"cases_per_s": (len(stamps) - 1 - WARM) / (stamps[-1] - stamps[WARM]),
            "dice": float(metric.aggregate()), "steps": len(stamps), "last_loss": float(loss)}


def run(quick: bool = False) -> list[dict]:
    from monai.networks.nets import SwinUNETR as MonaiSwinUNETR

    from sigplex.plugins.brain_seg.swin_unetr import SwinUNETR

    torch.set_num_threads(2)
    feature_size, epochs = 12, (2 if quick else 6)
    torch.manual_seed(0)
    peer = MonaiSwinUNETR(in_channels=4, out_channels=3, feature_size=feature_size)
    ours = SwinUNETR(in_channels=4, out_channels=3, feature_size=feature_size)
    ours.load_state_dict(peer.state_dict(), strict=True)
    r_ours = _train(ours, epochs, seed=0)
    r_peer = _train(peer, epochs, seed=0)
    return [row("brain_seg_monai_loop", 1 / r_ours["cases_per_s"], "monai SwinUNETR in the same MONAI loop",
                1 / r_peer["cases_per_s"], feature_size=feature_size, roi="64^3", epochs=epochs,
                steps=r_ours["steps"], cases_per_s_ours=round(r_ours["cases_per_s"], 3),
                cases_per_s_peer=round(r_peer["cases_per_s"], 3), test_dice_ours=round(r_ours["dice"], 4),
                test_dice_peer=round(r_peer["dice"], 4), last_loss_ours=round(r_ours["last_loss"], 4),
                last_loss_peer=round(r_peer["last_loss"], 4))]
