"""Samplers that make every epoch reproducible, which is what makes `--resume` exact."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from torch.utils.data import Sampler


class EpochSampler(Sampler):
    """Yields (index, epoch) pairs: a per-epoch permutation from (seed, epoch), split across ranks.

    Lightning calls `set_epoch` before each epoch; the data module also sets it when a run
    resumes, before the first iterator is made. Each rank gets every `world_size`-th index of the
    padded permutation, as DistributedSampler does.
    """

    def __init__(self, size: int, *, seed: int = 0, shuffle: bool = True, rank: int = 0, world_size: int = 1):
        self.size, self.seed, self.shuffle = size, seed, shuffle
        self.rank, self.world_size = rank, world_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return -(-self.size // self.world_size)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        order = np.arange(self.size)
        if self.shuffle:
            order = np.random.default_rng([self.seed, self.epoch]).permutation(self.size)
        padded = np.resize(order, len(self) * self.world_size)
        epoch = self.epoch
        for index in padded[self.rank :: self.world_size]:
            yield int(index), epoch
