"""The transform contract, `Compose`, and the checks every skeleton transform shares.

A *sample* is a shallow copy of a canonical clip (see `data/formats/annotations.py`): `keypoint`
float32 [M, T, V, 2] in pixels (x right, y down), `keypoint_score` float32 [M, T, V],
`total_frames`, `img_shape` (h, w), `layout`. Transforms add or replace keys; they never change
an array in place, so a clip held by a dataset is never altered by loading it. Each modality a
model reads is a key a transform writes: `joint`, `bone`, `joint_motion`, `bone_motion`
(features.py), `rgb` (rgb.py).

Randomness: every transform is called as ``transform(sample, rng)`` and returns the sample.
`rng` is a `numpy.random.Generator` owned by the caller (one per worker, seeded); it is the
only source of randomness. Deterministic transforms ignore it, random ones refuse `None`.

Shapes: `UniformSample(num_clips=K)` with K > 1 adds a leading clip axis, giving keypoint
[K, M, T, V, 2] and score [K, M, T, V]; every later transform accepts any leading axes
(joints are axis -2 of keypoint, frames axis -3).

Missing joints: before `Normalize` a joint counts as detected when its score is > 0 and its
coordinates are not (0, 0) (OpenPose writes 0, 0, 0 for a missed joint). `Normalize` writes
coordinates 0 and score 0 for every missing joint and sets ``sample["normalized"] = True``;
from then on a joint is detected when its score is > 0 (a detected neck sits at (0, 0)).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from microgesture.domain.layouts import JointLayout, get_layout
from microgesture.errors import DataError

Sample = dict[str, Any]
Transform = Callable[[Sample, "np.random.Generator | None"], Sample]


class Compose:
    """Apply transforms in order to a shallow copy of the sample, passing the same `rng`."""

    def __init__(self, transforms: Sequence[Transform]):
        self.transforms = list(transforms)

    def __call__(self, sample: Sample, rng: np.random.Generator | None = None) -> Sample:
        sample = dict(sample)
        for transform in self.transforms:
            sample = transform(sample, rng)
        return sample

    def __repr__(self) -> str:
        inner = ",\n  ".join(repr(t) for t in self.transforms)
        return f"Compose([\n  {inner}\n])"


# ----------------------------------------------------------------------------- helpers


def sample_error(sample: Sample, key: str, message: str) -> DataError:
    return DataError(None, message, where=f"clip {sample.get('frame_dir', '?')}, key {key!r}")


def keypoint_arrays(sample: Sample) -> tuple[np.ndarray, np.ndarray]:
    """keypoint and keypoint_score, checked: [..., M, T, V, 2] and [..., M, T, V]."""
    for key in ("keypoint", "keypoint_score"):
        if key not in sample:
            raise sample_error(sample, key, "missing")
    kp, score = np.asarray(sample["keypoint"]), np.asarray(sample["keypoint_score"])
    if kp.ndim < 4 or kp.shape[-1] != 2:
        raise sample_error(sample, "keypoint", f"shape {kp.shape}, expected [M, T, V, 2] (2D coordinates)")
    if score.shape != kp.shape[:-1]:
        raise sample_error(sample, "keypoint_score", f"shape {score.shape}, expected {kp.shape[:-1]}")
    return kp, score


def detected_mask(sample: Sample, kp: np.ndarray, score: np.ndarray) -> np.ndarray:
    if sample.get("normalized"):
        return score > 0
    return (score > 0) & np.any(kp != 0, axis=-1)


def sample_layout(sample: Sample) -> JointLayout:
    name = sample.get("layout")
    if name is None:
        raise sample_error(sample, "layout", "missing; the joint layout is needed here")
    try:
        layout = get_layout(name)
    except ValueError as exc:
        raise sample_error(sample, "layout", str(exc)) from None
    if layout.num_joints != np.shape(sample["keypoint"])[-2]:
        joints = np.shape(sample["keypoint"])[-2]
        raise sample_error(sample, "keypoint", f"has {joints} joints, layout {name} has {layout.num_joints}")
    return layout


def need_rng(rng: np.random.Generator | None, who: object) -> np.random.Generator:
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"{who!r} is random: call it as transform(sample, rng) with a numpy.random.Generator")
    return rng
