"""Network inputs made from the skeleton: joint, bone and motion streams."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from microgesture.data.transforms.core import Sample, detected_mask, keypoint_arrays, sample_layout
from microgesture.domain.layouts import JointLayout
from microgesture.errors import ConfigError

from microgesture.domain.modalities import SKELETON_STREAMS as STREAMS


@dataclass(frozen=True)
class FormatStream:
    """Write the skeleton modality `stream` as float32 [..., M, T, V, C]: C = 2 coordinates (+ 1 score).

    joint: coordinates of detected joints (missing ones 0). bone: joint - parent
    (`layout.bone_pairs`); the center's bone is 0 with the center's score; a bone is 0 where child
    or parent is missing and its score is the smaller of the two. *_motion: difference to the next
    frame, 0 where either frame is missing, score the smaller of the two frames'; the last frame
    moves by 0 and keeps its own score. Writes `sample[stream]`; the sample's keypoints are unchanged,
    so several streams can be made from the same sampled, augmented frames.
    """

    stream: str = "joint"
    with_score: bool = True

    def __post_init__(self) -> None:
        if self.stream not in STREAMS:
            raise ConfigError(f"FormatStream: stream must be one of {STREAMS}, got {self.stream!r}")

    def __call__(self, sample: Sample, rng: np.random.Generator | None = None) -> Sample:
        kp, score = keypoint_arrays(sample)
        det = detected_mask(sample, kp, score)
        kp = np.where(det[..., None], kp, 0.0)
        score = np.where(det, score, 0.0)
        if self.stream.startswith("bone"):
            kp, score = _bones(kp, score, sample_layout(sample))
        if self.stream.endswith("motion"):
            kp, score = _motion(kp, score)
        parts = [kp, score[..., None]] if self.with_score else [kp]
        sample[self.stream] = np.concatenate(parts, axis=-1).astype(np.float32)
        return sample


def _bones(kp: np.ndarray, score: np.ndarray, layout: JointLayout) -> tuple[np.ndarray, np.ndarray]:
    child, parent = (np.array(x) for x in zip(*layout.bone_pairs))
    both = (score[..., child] > 0) & (score[..., parent] > 0)
    bone = np.where(both[..., None], kp[..., child, :] - kp[..., parent, :], 0.0)
    return bone, np.minimum(score[..., child], score[..., parent])


def _motion(kp: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    nxt_kp = np.concatenate([kp[..., 1:, :, :], kp[..., -1:, :, :]], axis=-3)
    nxt_score = np.concatenate([score[..., 1:, :], score[..., -1:, :]], axis=-2)
    both = (score > 0) & (nxt_score > 0)
    return np.where(both[..., None], nxt_kp - kp, 0.0), np.minimum(score, nxt_score)
