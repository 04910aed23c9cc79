"""Torch datasets over canonical clips, and a sampler that makes every epoch reproducible.

A sample is a dict: `skeleton` float32 [M, T, V, C] (or [clips, M, T, V, C] at multi-clip test
time), `label` (MG class, -1 unknown), `emotion` (1 win, 0 lose, -1 unknown), `index` (position in
the split) and `frame_inds` (the frames used, relative to the clip start, for the RGB stream).
Random augmentation draws from a generator seeded by (seed, epoch, index): the same epoch always
sees the same augmented samples, which is what makes `--resume` exact.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler


class ClipDataset(Dataset):
    """Skeleton clips through `pipeline`; with `rgb`, also the RGB frames at the same sampled frames.

    `rgb` is called as ``rgb(sample, rng, video_path)`` after the skeleton pipeline (see
    data/rgb.py: RGBClip), and `video_path(clip)` resolves a clip's video file.
    """

    def __init__(self, clips: Sequence[dict[str, Any]], pipeline: Callable, *, seed: int = 0,
                 rgb: Callable | None = None, video_path: Callable | None = None):
        self.clips = list(clips)
        self.pipeline = pipeline
        self.seed = seed
        self.rgb = rgb
        self.video_path = video_path

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Any]:
        index, epoch = key if isinstance(key, tuple) else (key, 0)
        clip = self.clips[index]
        rng = np.random.default_rng([self.seed, epoch, index])
        sample = self.pipeline(dict(clip), rng)
        out = {
            "skeleton": torch.from_numpy(np.ascontiguousarray(sample["skeleton"], dtype=np.float32)),
            "label": torch.tensor(int(clip["label"]), dtype=torch.long),
            "emotion": torch.tensor(int(clip.get("emotion", -1)), dtype=torch.long),
            "index": torch.tensor(index, dtype=torch.long),
            "frame_inds": torch.from_numpy(np.asarray(sample["frame_inds"], dtype=np.int64)),
        }
        if self.rgb is not None:
            sample = self.rgb(sample, rng, self.video_path(clip) if self.video_path else clip.get("video_path"))
            out["rgb"] = torch.from_numpy(np.ascontiguousarray(sample["rgb"], dtype=np.float32))
        return out


class CachedTokenDataset(Dataset):
    """Encoder outputs stored by `microgesture extract` (data/cache.py), one dict per clip."""

    def __init__(self, clips: Sequence[dict[str, Any]], cache: Any):
        self.clips = list(clips)
        self.cache = cache
        cache.require([c["frame_dir"] for c in self.clips])

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Any]:
        index = key[0] if isinstance(key, tuple) else key
        clip = self.clips[index]
        out = dict(self.cache.get(clip["frame_dir"]))
        out["label"] = torch.tensor(int(clip["label"]), dtype=torch.long)
        out["emotion"] = torch.tensor(int(clip.get("emotion", -1)), dtype=torch.long)
        out["index"] = torch.tensor(index, dtype=torch.long)
        return out


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
