"""Skeleton transforms: small callables that each do one thing to a sample dict.

A *sample* is a shallow copy of a canonical clip (see `annotations.py`): `keypoint` float32
[M, T, V, 2] in pixels (x right, y down), `keypoint_score` float32 [M, T, V], `total_frames`,
`img_shape` (h, w), `layout`. Transforms add or replace keys; they never change an array in
place, so a clip held by a dataset is never altered by loading it.

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

Standard order (`skeleton_pipeline`): UniformSample -> SelectLayout -> Normalize ->
[RandomFlip -> RandomAffine when training] -> FormatStream. Sampling comes first so the
statistics of Normalize describe the frames the network sees, and the work is done on few
frames; the augmentations act in the neck-centred, shoulder-width frame.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from microgesture.data.layouts import JointLayout, convert, get_layout
from microgesture.errors import ConfigError, DataError

Sample = dict[str, Any]
Transform = Callable[[Sample, "np.random.Generator | None"], Sample]
STREAMS = ("joint", "bone", "joint_motion", "bone_motion")
_EPS = 1e-6


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


def _error(sample: Sample, key: str, message: str) -> DataError:
    return DataError(None, message, where=f"clip {sample.get('frame_dir', '?')}, key {key!r}")


def _arrays(sample: Sample) -> tuple[np.ndarray, np.ndarray]:
    """keypoint and keypoint_score, checked: [..., M, T, V, 2] and [..., M, T, V]."""
    for key in ("keypoint", "keypoint_score"):
        if key not in sample:
            raise _error(sample, key, "missing")
    kp, score = np.asarray(sample["keypoint"]), np.asarray(sample["keypoint_score"])
    if kp.ndim < 4 or kp.shape[-1] != 2:
        raise _error(sample, "keypoint", f"shape {kp.shape}, expected [M, T, V, 2] (2D coordinates)")
    if score.shape != kp.shape[:-1]:
        raise _error(sample, "keypoint_score", f"shape {score.shape}, expected {kp.shape[:-1]}")
    return kp, score


def _detected(sample: Sample, kp: np.ndarray, score: np.ndarray) -> np.ndarray:
    if sample.get("normalized"):
        return score > 0
    return (score > 0) & np.any(kp != 0, axis=-1)


def _layout(sample: Sample) -> JointLayout:
    name = sample.get("layout")
    if name is None:
        raise _error(sample, "layout", "missing; the joint layout is needed here")
    try:
        layout = get_layout(name)
    except ValueError as exc:
        raise _error(sample, "layout", str(exc)) from None
    if layout.num_joints != np.shape(sample["keypoint"])[-2]:
        joints = np.shape(sample["keypoint"])[-2]
        raise _error(sample, "keypoint", f"has {joints} joints, layout {name} has {layout.num_joints}")
    return layout


def _need_rng(rng: np.random.Generator | None, who: object) -> np.random.Generator:
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"{who!r} is random: call it as transform(sample, rng) with a numpy.random.Generator")
    return rng


# ----------------------------------------------------------------------------- sampling


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
        kp, score = _arrays(sample)
        if kp.ndim != 4:
            raise _error(sample, "keypoint", f"shape {kp.shape}: already sampled? expected [M, T, V, 2]")
        total = kp.shape[1]
        if total < 1:
            raise _error(sample, "keypoint", "clip has no frames")
        if self.mode == "train":
            rng = _need_rng(rng, self)
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


# ----------------------------------------------------------------------------- layout


@dataclass(frozen=True)
class SelectLayout:
    """Convert keypoint and score to layout `name` (e.g. miga35 -> imigue22); updates `layout`."""

    name: str

    def __post_init__(self) -> None:
        try:
            get_layout(self.name)
        except ValueError as exc:
            raise ConfigError(f"SelectLayout: {exc}") from None

    def __call__(self, sample: Sample, rng: np.random.Generator | None = None) -> Sample:
        kp, score = _arrays(sample)
        src, dst = _layout(sample), get_layout(self.name)
        try:
            sample["keypoint"] = convert(kp, src, dst)
            sample["keypoint_score"] = convert(score[..., None], src, dst)[..., 0]
        except ValueError as exc:
            raise _error(sample, "layout", str(exc)) from None
        sample["layout"] = dst.name
        return sample


# ----------------------------------------------------------------------------- normalisation


@dataclass(frozen=True)
class Normalize:
    """Centre each person on the neck and divide by the shoulder width, per clip.

    Centre: median neck position over the frames where the neck is detected, else the mean of
    all detected joints. Scale: median distance between the shoulders over frames where both are
    detected, else the longer side of the detected joints' bounding box, else 1. Missing joints
    get coordinates 0 and score 0. Writes keypoint, keypoint_score, `normalized` = True,
    `norm_center` [..., M, 2] and `norm_scale` [..., M] (pixels), so the mapping can be undone.
    """

    def __call__(self, sample: Sample, rng: np.random.Generator | None = None) -> Sample:
        kp, score = _arrays(sample)
        det = _detected(sample, kp, score)
        neck, shoulders = self._reference_joints(sample)
        lead = kp.shape[:-3]
        flat_kp, flat_det = kp.reshape(-1, *kp.shape[-3:]), det.reshape(-1, *det.shape[-2:])
        center = np.zeros((len(flat_kp), 2))
        scale = np.ones(len(flat_kp))
        for i in range(len(flat_kp)):
            center[i], scale[i] = _center_scale(flat_kp[i].astype(np.float64), flat_det[i], neck, shoulders)
        center, scale = center.reshape(*lead, 2), scale.reshape(lead)
        out = (kp - center[..., None, None, :]) / scale[..., None, None, None]
        sample["keypoint"] = np.where(det[..., None], out, 0.0).astype(np.float32)
        sample["keypoint_score"] = np.where(det, score, 0.0).astype(np.float32)
        sample["normalized"] = True
        sample["norm_center"], sample["norm_scale"] = center.astype(np.float32), scale.astype(np.float32)
        return sample

    @staticmethod
    def _reference_joints(sample: Sample) -> tuple[int | None, tuple[int, int] | None]:
        if sample.get("layout") is None:  # no names: fall back to centroid and bounding box
            return None, None
        layout = _layout(sample)
        names = layout.joint_names
        neck = names.index("neck") if "neck" in names else layout.center
        shoulders = None
        if "r_shoulder" in names and "l_shoulder" in names:
            shoulders = (names.index("r_shoulder"), names.index("l_shoulder"))
        return neck, shoulders


def _center_scale(kp: np.ndarray, det: np.ndarray, neck: int | None, shoulders) -> tuple[np.ndarray, float]:
    """Centre [2] and scale of one person's [T, V, 2] keypoints; det [T, V] marks detected joints."""
    if not det.any():
        return np.zeros(2), 1.0
    if neck is not None and det[:, neck].any():
        center = np.median(kp[det[:, neck], neck], axis=0)
    else:
        center = kp[det].mean(axis=0)
    scale = 0.0
    if shoulders is not None:
        both = det[:, shoulders[0]] & det[:, shoulders[1]]
        if both.any():
            scale = float(np.median(np.linalg.norm(kp[both, shoulders[0]] - kp[both, shoulders[1]], axis=-1)))
    if not scale > _EPS:
        points = kp[det]
        scale = float((points.max(axis=0) - points.min(axis=0)).max())
    if not (np.isfinite(scale) and scale > _EPS):
        scale = 1.0
    return center, scale


# ----------------------------------------------------------------------------- augmentation


@dataclass(frozen=True)
class RandomAffine:
    """Rotate by U(-rotate_deg, rotate_deg), scale by U(*scale), shift by U(-shift, shift) per axis.

    Training only; one draw per sample (same for all frames, persons and clips), applied about
    the origin to detected joints only, so it must follow `Normalize` (shift is then in shoulder
    widths). Missing joints stay at 0. Draw order is fixed: angle, scale, shift (x, y).
    """

    rotate_deg: float = 10.0
    scale: tuple[float, float] = (0.9, 1.1)
    shift: float = 0.1

    def __post_init__(self) -> None:
        lo, hi = self.scale
        if self.rotate_deg < 0 or self.shift < 0 or not 0 < lo <= hi:
            raise ConfigError(f"RandomAffine: need rotate_deg >= 0, shift >= 0, 0 < scale[0] <= scale[1]; got {self}")

    def __call__(self, sample: Sample, rng: np.random.Generator | None = None) -> Sample:
        rng = _need_rng(rng, self)
        if not sample.get("normalized"):
            raise ConfigError("RandomAffine acts about the neck-centred origin: put Normalize before it")
        kp, score = _arrays(sample)
        angle = np.deg2rad(rng.uniform(-self.rotate_deg, self.rotate_deg))
        factor = rng.uniform(*self.scale)
        shift = rng.uniform(-self.shift, self.shift, size=2)
        cos, sin = np.cos(angle), np.sin(angle)
        matrix = factor * np.array([[cos, -sin], [sin, cos]])
        out = kp.astype(np.float64) @ matrix.T + shift
        sample["keypoint"] = np.where((score > 0)[..., None], out, 0.0).astype(np.float32)
        return sample


@dataclass(frozen=True)
class RandomFlip:
    """Horizontal flip with probability `p`: mirror x and swap left/right joints.

    After `Normalize` x -> -x (a flip about the neck); before it x -> (width - 1) - x in pixels,
    width from `img_shape`. Both give the same result once normalised. Only detected joints move.
    Left/right follow the layout's OpenPose names (r_* is the person's right), swapped with
    `flip_permutation()`. `flipped` records whether the sample is now mirrored relative to the
    source video (two flips cancel), so an RGB clip can be flipped the same way.
    p = 0 or 1 needs no rng; otherwise one `rng.random()` draw per sample.
    """

    p: float = 0.5

    def __post_init__(self) -> None:
        if not 0 <= self.p <= 1:
            raise ConfigError(f"RandomFlip: p must be in [0, 1], got {self.p}")

    def __call__(self, sample: Sample, rng: np.random.Generator | None = None) -> Sample:
        flip = self.p >= 1 or (self.p > 0 and _need_rng(rng, self).random() < self.p)
        sample["flipped"] = bool(sample.get("flipped", False)) != flip
        if not flip:
            return sample
        kp, score = _arrays(sample)
        perm = _layout(sample).flip_permutation()
        det = _detected(sample, kp, score)
        if sample.get("normalized"):
            mirrored = -kp[..., 0]
        else:
            if "img_shape" not in sample:
                raise _error(sample, "img_shape", "missing; needed to flip pixel coordinates")
            mirrored = (float(sample["img_shape"][1]) - 1.0) - kp[..., 0]
        out = kp.copy()
        out[..., 0] = np.where(det, mirrored, kp[..., 0])
        sample["keypoint"] = out[..., perm, :]
        sample["keypoint_score"] = score[..., perm]
        return sample


# ----------------------------------------------------------------------------- network input


@dataclass(frozen=True)
class FormatStream:
    """Build `skeleton` float32 [..., M, T, V, C]: C = 2 coordinates (+ 1 score if `with_score`).

    joint: coordinates of detected joints (missing ones 0). bone: joint - parent
    (`layout.bone_pairs`); the center's bone is 0 with the center's score; a bone is 0 where child
    or parent is missing and its score is the smaller of the two. *_motion: difference to the next
    frame, 0 where either frame is missing, score the smaller of the two frames'; the last frame
    moves by 0 and keeps its own score. Writes `skeleton` and `stream`.
    """

    stream: str = "joint"
    with_score: bool = True

    def __post_init__(self) -> None:
        if self.stream not in STREAMS:
            raise ConfigError(f"FormatStream: stream must be one of {STREAMS}, got {self.stream!r}")

    def __call__(self, sample: Sample, rng: np.random.Generator | None = None) -> Sample:
        kp, score = _arrays(sample)
        det = _detected(sample, kp, score)
        kp = np.where(det[..., None], kp, 0.0)
        score = np.where(det, score, 0.0)
        if self.stream.startswith("bone"):
            kp, score = _bones(kp, score, _layout(sample))
        if self.stream.endswith("motion"):
            kp, score = _motion(kp, score)
        parts = [kp, score[..., None]] if self.with_score else [kp]
        sample["skeleton"] = np.concatenate(parts, axis=-1).astype(np.float32)
        sample["stream"] = self.stream
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


# ----------------------------------------------------------------------------- standard pipeline


def skeleton_pipeline(
    *,
    layout: str,
    num_frames: int,
    stream: str = "joint",
    train: bool,
    num_clips: int = 1,
    flip_p: float = 0.5,
    rotate_deg: float = 10.0,
    scale: tuple[float, float] = (0.9, 1.1),
    shift: float = 0.1,
    with_score: bool = True,
) -> Compose:
    """UniformSample -> SelectLayout(layout) -> Normalize -> [RandomFlip -> RandomAffine] -> FormatStream.

    The augmentations are used only when `train` and left out when they would do nothing
    (flip_p 0; rotate_deg 0 with scale (1, 1) and shift 0). Call the result as
    ``pipeline(clip, rng)``; a test pipeline needs no rng.
    """
    transforms: list[Transform] = [
        UniformSample(num_frames, "train" if train else "test", num_clips),
        SelectLayout(layout),
        Normalize(),
    ]
    if train and flip_p > 0:
        transforms.append(RandomFlip(flip_p))
    if train and (rotate_deg > 0 or tuple(scale) != (1.0, 1.0) or shift > 0):
        transforms.append(RandomAffine(rotate_deg, tuple(scale), shift))
    transforms.append(FormatStream(stream, with_score))
    return Compose(transforms)
