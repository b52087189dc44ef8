"""DBConformer trained end to end by braindecode's ``EEGClassifier`` (skorch) and by the sigplex Trainer.

The same module, initial weights and data in both loops: the motor_imagery task's default
simulated recordings as the task prepares them (filtered, aligned, 4 s windows, LOSO split), the
DBConformer of the task's default config. Both: batch 32 shuffled, the last partial batch of an
epoch dropped (braindecode's default), Adam lr 1e-3 constant, no weight decay, cross-entropy, the
same number of optimizer steps (whole epochs over the training windows). A bare PyTorch loop over
the same tensors (no DataLoader, no logging) gives the floor both loops are measured against.
Throughput = training windows per second between step ``WARM`` and the last step (ours: the last
but one, as the last also validates and checkpoints), timed by a callback in each loop.
Metric: accuracy of each trained model on the same test-subject windows.
ratio = peer seconds per window / ours (> 1: the sigplex Trainer is faster). Each loop also runs compiled:
ours with ``trainer.compile=true``, skorch with its ``compile=True`` (both ``torch.compile`` with default
options; the compilation falls in the warm-up steps, before the timed ones). Rows: ours eager and compiled,
each against skorch eager and skorch compiled on the same DBConformer, and against skorch training
braindecode's own ``EEGConformer`` (eager; same data, loop settings and epochs; its accuracy beside ours).
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks._timing import row

BATCH, LR, WARM = 32, 1e-3, 5
TASK = "motor_imagery"


def _prepared():
    from sigplex.core.api import load_task

    _, task, config = load_task("eeg_conformer", TASK)
    return task, task.build_data(config, None)


def _accuracy(model, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    with torch.no_grad():
        pred = torch.cat([model(x[i:i + 256]).argmax(1) for i in range(0, len(x), 256)])
    return float((pred == y).float().mean())


def _train_ours(init: Path, steps: int, test, compiled: bool = False) -> dict:
    import sigplex.core as sp
    from sigplex.core.run import latest_valid_checkpoint
    from sigplex.core.train.callbacks import Callback

    stamps: dict[int, float] = {}

    class StepTimer(Callback):
        def on_step_end(self, trainer, step, logs):
            stamps[step] = time.perf_counter()

    overrides = {"trainer.batch_size": BATCH, "trainer.max_steps": steps, "trainer.val_every": steps,
                 "trainer.checkpoint_every": steps, "trainer.log_every": steps, "trainer.progress": "none",
                 "trainer.tensorboard": False, "trainer.num_workers": 0, "trainer.drop_last": True,
                 "optim.name": "adam", "optim.lr": LR,
                 "optim.weight_decay": 0.0, "optim.schedule": "constant", "optim.warmup_steps": 0,
                 "trainer.compile": compiled}
    with tempfile.TemporaryDirectory() as tmp:
        run = sp.fit("eeg_conformer", task=TASK, overrides=overrides, init_from=init, out=Path(tmp) / "run",
                     callbacks=[StepTimer()])
        model = sp.load_run(latest_valid_checkpoint(run.path)).model  # the final weights, as skorch's
        acc = _accuracy(model, test.x, test.y)
    first, last = WARM, max(stamps) - 1  # the last step also validates and checkpoints: excluded
    return {"windows_per_s": (last - first) * BATCH / (stamps[last] - stamps[first]), "accuracy": acc,
            "steps": len(stamps)}


def _train_peer(model, train, epochs: int, test, compiled: bool = False) -> dict:
    from braindecode import EEGClassifier
    from skorch.callbacks import Callback

    stamps: list[tuple[float, int]] = []

    class BatchTimer(Callback):
        def on_batch_end(self, net, batch=None, training=None, **kwargs):
            if training:
                stamps.append((time.perf_counter(), len(batch[1])))

    clf = EEGClassifier(model, criterion=torch.nn.CrossEntropyLoss, optimizer=torch.optim.Adam, optimizer__lr=LR,
                        batch_size=BATCH, max_epochs=epochs, train_split=None, iterator_train__shuffle=True,
                        callbacks=[("batch_timer", BatchTimer())], device="cpu", verbose=0, compile=compiled,
                        classes=list(range(int(train.y.max()) + 1)))
    clf.fit(train.x.numpy(), train.y.numpy())
    windows = sum(n for _, n in stamps[WARM + 1:])
    return {"windows_per_s": windows / (stamps[-1][0] - stamps[WARM][0]),
            "accuracy": _accuracy(clf.module_, test.x, test.y), "steps": len(stamps)}


def _eegconformer(train, config):
    """braindecode's EEGConformer at the task's window shape and classes."""
    from braindecode.models import EEGConformer

    return EEGConformer(n_chans=train.x.shape[1], n_outputs=int(train.y.max()) + 1, n_times=train.x.shape[2],
                        sfreq=float(config.data.sfreq))


def _train_bare(model, train, steps: int) -> dict:
    """The floor: forward, loss, backward and Adam step on shuffled batches sliced from the tensors."""
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    gen = torch.Generator().manual_seed(0)
    order = torch.cat([torch.randperm(len(train), generator=gen) for _ in range(-(-steps * BATCH // len(train)) + 1)])
    model.train()
    stamps = []
    for s in range(steps):
        idx = order[s * BATCH:(s + 1) * BATCH]
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(train.x[idx]), train.y[idx]).backward()
        opt.step()
        stamps.append(time.perf_counter())
    return {"windows_per_s": (len(stamps) - 1 - WARM) * BATCH / (stamps[-1] - stamps[WARM])}


def run(quick: bool = False) -> list[dict]:
    from safetensors.torch import save_file

    torch.set_num_threads(2)
    task, prepared = _prepared()
    train, test = prepared.train, prepared.test
    epochs = 3 if quick else 20
    steps = epochs * (len(train) // BATCH)
    torch.manual_seed(0)
    model = task.build_model(prepared.config)
    with tempfile.TemporaryDirectory() as tmp:
        init = Path(tmp) / "init.safetensors"
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(init))
        ours = _train_ours(init, steps, test)
        ours_compiled = _train_ours(init, steps, test, compiled=True)
    torch.manual_seed(0)
    np.random.seed(0)
    bare_model = task.build_model(prepared.config)
    bare_model.load_state_dict(model.state_dict())
    peer_model = task.build_model(prepared.config)
    peer_model.load_state_dict(model.state_dict())
    peers = {"skorch, eager": _train_peer(model, train, epochs, test)}
    torch.manual_seed(0)
    np.random.seed(0)
    peers["skorch, compiled"] = _train_peer(peer_model, train, epochs, test, compiled=True)
    torch.manual_seed(0)
    np.random.seed(0)
    peers["skorch, braindecode EEGConformer"] = _train_peer(_eegconformer(train, prepared.config), train, epochs, test)
    bare = _train_bare(bare_model, train, steps)
    return [row("eeg_train_loops", BATCH / mine["windows_per_s"], f"braindecode EEGClassifier ({how})",
                BATCH / peer["windows_per_s"], model="dbconformer", task=TASK, engine=engine, train_windows=len(train),
                epochs=epochs, steps_ours=mine["steps"], steps_peer=peer["steps"],
                windows_per_s_ours=round(mine["windows_per_s"], 1), windows_per_s_peer=round(peer["windows_per_s"], 1),
                windows_per_s_bare_loop=round(bare["windows_per_s"], 1),
                test_accuracy_ours=round(mine["accuracy"], 4), test_accuracy_peer=round(peer["accuracy"], 4))
            for engine, mine in (("eager", ours), ("compiled", ours_compiled)) for how, peer in peers.items()]
