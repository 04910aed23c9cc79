"""Samplers that make every epoch reproducible, which is what makes `--resume` exact."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

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

    def order(self, rng: np.random.Generator) -> np.ndarray:
        """This epoch's indices (all ranks together), drawn from `rng` alone."""
        return rng.permutation(self.size) if self.shuffle else np.arange(self.size)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        order = self.order(np.random.default_rng([self.seed, self.epoch]))
        padded = np.resize(order, len(self) * self.world_size)
        epoch = self.epoch
        for index in padded[self.rank :: self.world_size]:
            yield int(index), epoch


class ClassBalancedSampler(EpochSampler):
    """An epoch of `size` draws with replacement in which class c comes up with probability
    ~ n_c ** power: power 0 is class-balanced sampling (every class equally often), 0.5
    square-root sampling, 1 the usual instance sampling (Kang et al. 2020, "Decoupling
    Representation and Classifier for Long-Tailed Recognition").

    Draws come from (seed, epoch) like `EpochSampler`'s permutation, and are split across ranks
    the same way, so a resumed run sees the same epochs. Unlabelled clips (-1) form one group.
    """

    def __init__(self, labels: Sequence[int], *, power: float = 0.0, seed: int = 0, rank: int = 0,
                 world_size: int = 1):
        super().__init__(len(labels), seed=seed, shuffle=True, rank=rank, world_size=world_size)
        labels = np.asarray(labels, dtype=np.int64)
        _, group, counts = np.unique(labels, return_inverse=True, return_counts=True)
        per_clip = counts[group].astype(np.float64) ** (power - 1.0)  # class share n_c * n_c^(p-1) = n_c^p
        self.probabilities = per_clip / per_clip.sum()

    def order(self, rng: np.random.Generator) -> np.ndarray:
        return rng.choice(self.size, size=self.size, replace=True, p=self.probabilities)
