"""Bags of clips per video, for models that decide per video (multiple-instance learning).

`VideoBagDataset` wraps a clip dataset (`ClipDataset` or `CachedTokenDataset`): item i is one
video's clips, each made by the clip dataset as usual, stacked on a leading [K] axis. In
training a bag is `clips_per_video` clips drawn at random (without replacement; all of them when
the video has fewer), from a generator seeded by (seed, epoch, item), so `--resume` stays exact;
each video appears `repeats` times an epoch. At evaluation a bag is every clip of the video, in
order. `collate_bags` pads the bags of a batch to the longest with copies of their last clip.

A bag holds each per-clip tensor as [K, ...] (`label` and `index`, the clips' positions in the
split, are -1 in padded slots), `clip_pad` [K] (True = padded slot), and per video `emotion`,
`video_id` and `bag_index` (the video's position in `videos`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

VIDEO_KEYS = ("emotion", "video_id", "bag_index")
PAD_MINUS_ONE = ("label", "index")


def group_by_video(clips: Sequence[dict[str, Any]]) -> tuple[list[int], list[list[int]]]:
    """Video ids in order of first appearance, and the positions of each video's clips."""
    members: dict[int, list[int]] = {}
    for i, clip in enumerate(clips):
        members.setdefault(int(clip.get("video_id", -1)), []).append(i)
    return list(members), list(members.values())


class VideoBagDataset(Dataset):
    def __init__(self, dataset: Dataset, clips: Sequence[dict[str, Any]], *, clips_per_video: int, train: bool,
                 seed: int = 0, repeats: int = 1):
        if clips_per_video < 1 or repeats < 1:
            raise ValueError(f"clips_per_video and repeats must be >= 1, got {clips_per_video} and {repeats}")
        self.dataset, self.train, self.seed = dataset, train, seed
        self.clips_per_video, self.repeats = clips_per_video, repeats if train else 1
        self.videos, self.members = group_by_video(clips)

    def __len__(self) -> int:
        return len(self.videos) * self.repeats

    def _pick(self, members: list[int], item: int, epoch: int) -> list[int]:
        if not self.train or len(members) <= self.clips_per_video:
            return members
        rng = np.random.default_rng([self.seed, epoch, item, 1])
        chosen = rng.choice(len(members), size=self.clips_per_video, replace=False)
        return [members[i] for i in sorted(chosen)]

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Any]:
        item, epoch = key if isinstance(key, tuple) else (key, 0)
        v = item % len(self.videos)
        samples = [self.dataset[(i, epoch)] for i in self._pick(self.members[v], item, epoch)]
        out = {k: torch.stack([s[k] for s in samples]) for k, value in samples[0].items()
               if torch.is_tensor(value) and k not in VIDEO_KEYS}
        out["emotion"] = samples[0]["emotion"]
        out["video_id"] = samples[0]["video_id"]
        out["bag_index"] = torch.tensor(v, dtype=torch.long)
        out["clip_pad"] = torch.zeros(len(samples), dtype=torch.bool)
        return out


def collate_bags(bags: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
    """Stack bags, padding each to the batch's longest (copies of the last clip, marked in `clip_pad`)."""
    longest = max(len(b["clip_pad"]) for b in bags)
    out = {}
    for key in bags[0]:
        if key in VIDEO_KEYS:
            out[key] = torch.stack([b[key] for b in bags])
            continue
        padded = []
        for bag in bags:
            value, missing = bag[key], longest - len(bag["clip_pad"])
            if missing:
                fill = value[-1:].expand(missing, *value.shape[1:])
                if key in PAD_MINUS_ONE:
                    fill = torch.full_like(fill, -1)
                elif key == "clip_pad":
                    fill = torch.ones_like(fill)
                value = torch.cat([value, fill])
            padded.append(value)
        out[key] = torch.stack(padded)
    return out
