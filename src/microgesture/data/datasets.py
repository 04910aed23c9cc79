"""Torch datasets over canonical clips.

A sample is a dict holding each requested modality as a float32 tensor (`joint` [M, T, V, C],
`rgb` [3, T, H, W], ...; with K > 1 test clips every modality gets a leading [K] axis and
`num_clips` says K), the targets `label` (MG class, -1 unknown) and `emotion` (the video's
label: 1 win, 0 lose, -1 unknown), and `index` (position in the split), `video_id` and
`frame_inds` (the frames used, relative to the clip start); with the `face` modality also
`face_missing` (bool [T], [K, T] with K clips: frames without a confirmed face, to be masked).
Random augmentation draws from a generator seeded by (seed, epoch, index): the same epoch always
sees the same augmented samples, which is what makes `--resume` exact. With `hide_labels` the targets are -1 whatever the file
says: a split served so (the unlabelled target subjects of domain adaptation) cannot leak its
labels into training.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

TARGETS = ("label", "emotion")


def _targets(clip: dict[str, Any], index: int, hide_labels: bool) -> dict[str, torch.Tensor]:
    out = {key: torch.tensor(-1 if hide_labels else int(clip.get(key, -1)), dtype=torch.long) for key in TARGETS}
    out["index"] = torch.tensor(index, dtype=torch.long)
    out["video_id"] = torch.tensor(int(clip.get("video_id", -1)), dtype=torch.long)
    return out


class ClipDataset(Dataset):
    """Clips through `pipeline` (see data/transforms/pipelines.py), yielding the named `modalities`."""

    def __init__(self, clips: Sequence[dict[str, Any]], pipeline: Callable, modalities: Sequence[str], *,
                 seed: int = 0, hide_labels: bool = False):
        self.clips = list(clips)
        self.pipeline = pipeline
        self.modalities = tuple(modalities)
        self.seed = seed
        self.hide_labels = hide_labels

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Any]:
        index, epoch = key if isinstance(key, tuple) else (key, 0)
        clip = self.clips[index]
        rng = np.random.default_rng([self.seed, epoch, index])
        sample = self.pipeline(dict(clip), rng)
        out = {m: torch.from_numpy(np.ascontiguousarray(sample[m], dtype=np.float32)) for m in self.modalities}
        out.update(_targets(clip, index, self.hide_labels))
        out["frame_inds"] = torch.from_numpy(np.asarray(sample["frame_inds"], dtype=np.int64))
        if "face_missing" in sample:  # which face frames a model should mask
            out["face_missing"] = torch.from_numpy(np.asarray(sample["face_missing"], dtype=bool))
        out["num_clips"] = torch.tensor(int(sample.get("num_clips", 1)), dtype=torch.long)
        return out


class CachedTokenDataset(Dataset):
    """Encoder outputs stored by `microgesture extract` (data/cache.py), one dict per clip."""

    def __init__(self, clips: Sequence[dict[str, Any]], cache: Any, *, hide_labels: bool = False):
        self.clips = list(clips)
        self.cache = cache
        self.hide_labels = hide_labels
        cache.require([c["frame_dir"] for c in self.clips])

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Any]:
        index = key[0] if isinstance(key, tuple) else key
        clip = self.clips[index]
        out = dict(self.cache.get(clip["frame_dir"]))
        out.update(_targets(clip, index, self.hide_labels))
        out["num_clips"] = torch.tensor(1, dtype=torch.long)
        return out
