"""Geometry of the skeleton: layout conversion, normalisation and spatial augmentation.

Standard order (see pipelines.py): SelectLayout -> Normalize -> [RandomFlip -> RandomAffine when
training]. The augmentations act in the neck-centred, shoulder-width frame that Normalize makes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from microgesture.data.transforms.core import (
    Sample,
    detected_mask,
    keypoint_arrays,
    need_rng,
    sample_error,
    sample_layout,
)
from microgesture.domain.layouts import convert, get_layout
from microgesture.errors import ConfigError

_EPS = 1e-6

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
        kp, score = keypoint_arrays(sample)
        src, dst = sample_layout(sample), get_layout(self.name)
        try:
            sample["keypoint"], sample["keypoint_score"] = convert(kp, src, dst, score)
        except ValueError as exc:
            raise sample_error(sample, "layout", str(exc)) from None
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
        kp, score = keypoint_arrays(sample)
        det = detected_mask(sample, kp, score)
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
        layout = sample_layout(sample)
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
        rng = need_rng(rng, self)
        if not sample.get("normalized"):
            raise ConfigError("RandomAffine acts about the neck-centred origin: put Normalize before it")
        kp, score = keypoint_arrays(sample)
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
    source video (two flips cancel), so an RGB clip can be flipped the same way. After
    `Normalize` the centres (`norm_center`) are mirrored too, so ``kp * norm_scale + norm_center``
    still gives pixels, those of the mirrored image (the heatmap volumes rely on it).
    p = 0 or 1 needs no rng; otherwise one `rng.random()` draw per sample.
    """

    p: float = 0.5

    def __post_init__(self) -> None:
        if not 0 <= self.p <= 1:
            raise ConfigError(f"RandomFlip: p must be in [0, 1], got {self.p}")

    def __call__(self, sample: Sample, rng: np.random.Generator | None = None) -> Sample:
        flip = self.p >= 1 or (self.p > 0 and need_rng(rng, self).random() < self.p)
        sample["flipped"] = bool(sample.get("flipped", False)) != flip
        if not flip:
            return sample
        kp, score = keypoint_arrays(sample)
        perm = sample_layout(sample).flip_permutation()
        det = detected_mask(sample, kp, score)
        if sample.get("normalized"):
            mirrored = -kp[..., 0]
        else:
            if "img_shape" not in sample:
                raise sample_error(sample, "img_shape", "missing; needed to flip pixel coordinates")
            mirrored = (float(sample["img_shape"][1]) - 1.0) - kp[..., 0]
        out = kp.copy()
        out[..., 0] = np.where(det, mirrored, kp[..., 0])
        sample["keypoint"] = out[..., perm, :]
        sample["keypoint_score"] = score[..., perm]
        if sample.get("normalized") and "norm_center" in sample:
            sample["norm_center"] = _mirror_centers(sample)
        return sample


def _mirror_centers(sample: Sample) -> np.ndarray:
    """Normalize's centres mirrored with the image (about x = 0 without img_shape), so undoing it stays exact."""
    center = np.array(sample["norm_center"], dtype=np.float32)
    width = float(sample["img_shape"][1]) - 1.0 if "img_shape" in sample else 0.0
    center[..., 0] = width - center[..., 0]
    return center
