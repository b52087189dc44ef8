"""Resumable, distributed batch sampling: the data order is a pure function of (seed, epoch).

Every epoch draws one permutation from a generator seeded with ``seed + epoch``; the global
batch ``b`` is ``perm[b*B:(b+1)*B]`` and rank ``r`` of ``W`` takes its ``r``-th slice, so the
union over ranks is exactly the single-process batch. Each item carries its own seed, so
random augmentations are reproducible too. Resuming is ``set_position(epoch, batch)``.

>>> s = ResumableBatchSampler(10, batch_size=4, seed=0)
>>> len(s), [i for i, _ in next(iter(s))] == [i for i, _ in next(iter(s))]
(2, True)
"""
from __future__ import annotations

from ..errors import UserError


def item_seed(seed: int, epoch: int, position: int) -> int:
    """A 32-bit seed for the item at ``position`` of ``epoch``'s order."""
    x = (seed * 1_000_003 + epoch) * 1_000_003 + position
    x ^= x >> 17
    x = (x * 0x9E3779B1) & 0xFFFFFFFF
    return x


class ResumableBatchSampler:
    """Yields lists of ``(index, item_seed)`` for one rank; start anywhere with :meth:`set_position`."""

    def __init__(self, n_items: int, batch_size: int, seed: int = 0, *, shuffle: bool = True,
                 drop_last: bool = True, rank: int = 0, world_size: int = 1):
        if batch_size % world_size:
            raise UserError(
                f"trainer.batch_size={batch_size} must be divisible by the number of processes ({world_size})"
            )
        if n_items < batch_size and drop_last:
            raise UserError(
                f"trainer.batch_size={batch_size} is larger than the training set ({n_items} items); "
                "lower it or set trainer.drop_last=false"
            )
        if n_items == 0:
            raise UserError("the training set is empty")
        self.n, self.batch_size, self.seed = n_items, batch_size, seed
        self.shuffle, self.drop_last = shuffle, drop_last
        self.rank, self.world = rank, world_size
        self.epoch, self.start = 0, 0

    def __len__(self) -> int:
        full, rest = divmod(self.n, self.batch_size)
        return full if self.drop_last or rest == 0 else full + 1

    def set_position(self, epoch: int, batch: int) -> None:
        self.epoch, self.start = epoch, batch

    def order(self, epoch: int) -> list[int]:
        import torch

        if not self.shuffle:
            return list(range(self.n))
        g = torch.Generator().manual_seed(self.seed * 7919 + epoch)
        return torch.randperm(self.n, generator=g).tolist()

    def __iter__(self):
        order = self.order(self.epoch)
        for b in range(self.start, len(self)):
            chunk = order[b * self.batch_size:(b + 1) * self.batch_size]
            per_rank = -(-len(chunk) // self.world)
            lo = self.rank * per_rank
            mine = chunk[lo:lo + per_rank]
            yield [(i, item_seed(self.seed, self.epoch, b * self.batch_size + lo + j)) for j, i in enumerate(mine)]


class SeededItems:
    """A dataset view whose items are fetched under their own seed, without touching global RNG."""

    def __init__(self, dataset, seed_hook=None):
        self.dataset, self.seed_hook = dataset, seed_hook

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, key):
        import random

        import numpy as np
        import torch

        index, seed = key
        py_state, np_state = random.getstate(), np.random.get_state()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            random.seed(seed)
            np.random.seed(seed)
            if self.seed_hook is not None:
                self.seed_hook(seed)
            try:
                return self.dataset[index]
            finally:
                random.setstate(py_state)
                np.random.set_state(np_state)


class IndexedItems:
    """A dataset view for deterministic items: drops the per-item seed (no RNG work at all)."""

    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, key):
        return self.dataset[key[0]]
