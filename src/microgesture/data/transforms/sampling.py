"""Temporal sampling: which frames of a clip the networks see."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from microgesture.data.transforms.core import Sample, keypoint_arrays, need_rng, sample_error
from microgesture.errors import ConfigError


@dataclass(frozen=True)
class UniformSample:
    """Pick `num_frames` frames spread evenly over the clip.

    The clip's T frames are split into `num_frames` segments with integer edges
    ``floor(i * T / num_frames)``. Train: one random frame inside each segment. Test: the segment
    centres; with `num_clips` K > 1, clip k takes position (k + 0.5) / K inside every segment, so
    the K clips are fixed and evenly offset. A clip shorter than `num_frames` repeats its frames in
    order (frame ``floor((i + f) * T / num_frames)``, f random in train, (k + 0.5) / K in test);
    every frame appears at least once and no index leaves [0, T).

    Writes `frame_inds` int64 [num_frames] (K == 1) or [K, num_frames] (K > 1), relative to the
    clip start: the RGB stream decodes frames ``start_frame + frame_inds`` so video and pose stay
    aligned. Gathers keypoint/keypoint_score along T; K > 1 adds a leading clip axis.
    Also writes `clip_len` and `num_clips`; `total_frames` keeps the source clip's length.
    """

    num_frames: int
    mode: str = "train"
    num_clips: int = 1

    def __post_init__(self) -> None:
        if int(self.num_frames) < 1:
            raise ConfigError(f"UniformSample: num_frames must be >= 1, got {self.num_frames}")
        if int(self.num_clips) < 1:
            raise ConfigError(f"UniformSample: num_clips must be >= 1, got {self.num_clips}")
        if self.mode not in ("train", "test"):
            raise ConfigError(f"UniformSample: mode must be 'train' or 'test', got {self.mode!r}")

    def __call__(self, sample: Sample, rng: np.random.Generator | None = None) -> Sample:
        kp, score = keypoint_arrays(sample)
        if kp.ndim != 4:
            raise sample_error(sample, "keypoint", f"shape {kp.shape}: already sampled? expected [M, T, V, 2]")
        total = kp.shape[1]
        if total < 1:
            raise sample_error(sample, "keypoint", "clip has no frames")
        if self.mode == "train":
            rng = need_rng(rng, self)
        inds = np.stack([self._indices(total, k, rng) for k in range(self.num_clips)])
        if self.num_clips == 1:
            sample["keypoint"], sample["keypoint_score"] = kp[:, inds[0]], score[:, inds[0]]
            sample["frame_inds"] = inds[0]
        else:  # [M, K, n, ...] -> [K, M, n, ...]
            sample["keypoint"] = np.ascontiguousarray(np.moveaxis(kp[:, inds], 1, 0))
            sample["keypoint_score"] = np.ascontiguousarray(np.moveaxis(score[:, inds], 1, 0))
            sample["frame_inds"] = inds
        sample["clip_len"], sample["num_clips"] = self.num_frames, self.num_clips
        return sample

    def _indices(self, total: int, clip: int, rng: np.random.Generator | None) -> np.ndarray:
        n = self.num_frames
        if total < n:  # one shared offset keeps the order and visits every frame
            f = rng.random() if self.mode == "train" else (clip + 0.5) / self.num_clips
            inds = np.floor((np.arange(n) + f) * total / n).astype(np.int64)
            return np.minimum(inds, total - 1)
        edges = np.arange(n + 1, dtype=np.int64) * total // n
        starts, lengths = edges[:-1], np.diff(edges)
        if self.mode == "train":
            return starts + rng.integers(0, lengths)
        return starts + np.minimum((lengths * (clip + 0.5) / self.num_clips).astype(np.int64), lengths - 1)
