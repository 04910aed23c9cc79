"""Pseudo-heatmap volumes from the keypoints, as PoseC3D feeds its 3D CNN ("Revisiting
Skeleton-based Action Recognition", arXiv 2104.13586).

Three steps, after sampling and geometry (pipelines.py):

    PersonBox(margin) -> [RandomBoxCrop(area) when training] -> HeatmapVolume(size, sigma, ...)

Coordinates: the steps work in the image's pixel frame. After `Normalize` the keypoints are
neck-centred and in shoulder widths, per person; `pixel_keypoints` maps them back with
``kp * norm_scale + norm_center``, so several persons keep their places and sizes relative to
each other (and to the RGB frame). Augmentations made in the normalised frame carry over:
`RandomFlip` mirrors the joints (swapping left and right) and the centres, so the heatmap of a
flipped sample is the mirrored heatmap with left/right channels swapped
(`heatmap_flip_permutation`), as the RGB clip is mirrored; a rotation stays a rotation. A
shift or a scale of the whole person is undone by the box, which follows the joints: for scale
augmentation, use `RandomBoxCrop`. Before `Normalize` the keypoints are pixels already.

The box: the square around every detected joint of the clip (all frames and persons), widened
by `margin` of its side on each side; one box for all frames, so motion stays visible. The
volume: `size` x `size` pixels whose centres sit at ``(i + 0.5) * side / size`` in the box; a
joint is a Gaussian of `sigma` heatmap pixels scaled by its confidence, a limb (a usable edge
of the layout's graph, `limb_pairs`) the Gaussian of the distance to the segment, scaled by
the smaller confidence of its ends, both drawn within `REACH` sigmas (below 3.4e-4 of the peak
beyond); persons are merged by maximum. Missing joints (score 0) draw nothing. Output `sample[key]` float32 [K, T, size, size] (K = joints, then limbs), with a
leading clip axis for multi-clip samples.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from microgesture.data.transforms.core import Sample, keypoint_arrays, need_rng, sample_error, sample_layout
from microgesture.domain.heatmaps import HeatmapInput, check_heatmap_layout, heatmap_flip_permutation, limb_pairs
from microgesture.errors import ConfigError

__all__ = ["HeatmapInput", "HeatmapVolume", "PersonBox", "RandomBoxCrop", "check_heatmap_layout",
           "heatmap_flip_permutation", "limb_pairs", "pixel_keypoints"]

_MIN_SIDE = 1e-3  # box side when every detected joint sits at one point
REACH = 4.0  # sigmas around a joint or limb that are drawn (exp(-8) = 3.4e-4 of the peak beyond)


def pixel_keypoints(sample: Sample) -> tuple[np.ndarray, np.ndarray]:
    """(keypoints in the image's pixel frame [..., M, T, V, 2] float32, scores [..., M, T, V]).

    Undoes `Normalize` when it ran (module doc). DataError naming the clip, frame and joint when a
    detected joint's coordinates or any score are not finite (NaN in the source clip).
    """
    kp, score = keypoint_arrays(sample)
    kp, score = kp.astype(np.float32), score.astype(np.float32)
    _check_finite(sample, score, np.isfinite(score), "keypoint_score", "score")
    if sample.get("normalized"):
        center = np.asarray(sample.get("norm_center", np.zeros(kp.shape[:-3] + (2,))), np.float32)
        scale = np.asarray(sample.get("norm_scale", np.ones(kp.shape[:-3])), np.float32)
        if not (np.isfinite(center).all() and np.isfinite(scale).all()):
            raise sample_error(sample, "norm_center", "the clip's normalisation is not finite: a keypoint of the "
                                                       "source clip is NaN or infinite (its neck or shoulders)")
        kp = kp * scale[..., None, None, None] + center[..., None, None, :]
    bad = (score > 0)[..., None] & ~np.isfinite(kp)
    _check_finite(sample, score, ~bad.any(-1), "keypoint", "coordinates")
    return np.where((score > 0)[..., None], kp, 0.0).astype(np.float32), score


def _check_finite(sample: Sample, score: np.ndarray, ok: np.ndarray, key: str, what: str) -> None:
    if ok.all():
        return
    where = np.argwhere(~ok)[0]  # [clip,] person, frame, joint
    person, frame, joint = (int(i) for i in where[-3:])
    inds = sample.get("frame_inds")
    if inds is not None:  # the source clip's frame, not the position among the sampled ones
        inds = np.asarray(inds)
        frame = int(inds[frame] if inds.ndim == 1 else inds[where[0], frame])
    name = sample_layout(sample).joint_names[joint] if sample.get("layout") else str(joint)
    raise sample_error(sample, key, f"{what} of joint {name!r} at frame {frame} (person {person}) is not finite "
                                    f"({int((~ok).sum())} such values): fix or drop the clip")


def _box(kp: np.ndarray, det: np.ndarray, margin: float) -> np.ndarray:
    """(x0, y0, side) of the square around the detected joints of one clip [M, T, V, 2], widened by margin."""
    if not det.any():
        return np.array([0.0, 0.0, 1.0], np.float32)
    points = kp[det]
    lo, hi = points.min(0), points.max(0)
    side = max(float((hi - lo).max()) * (1 + 2 * margin), _MIN_SIDE)
    center = (lo + hi) / 2
    return np.array([center[0] - side / 2, center[1] - side / 2, side], np.float32)


@dataclass(frozen=True)
class PersonBox:
    """Writes `heatmap_box` (x0, y0, side) [..., 3] in pixels: the square around the clip's joints (module doc)."""

    margin: float = 0.1

    def __post_init__(self) -> None:
        if not 0 <= self.margin <= 2:
            raise ConfigError(f"PersonBox: margin must be in [0, 2] (a fraction of the box side), got {self.margin}")

    def __call__(self, sample: Sample, rng: np.random.Generator | None = None) -> Sample:
        kp, score = pixel_keypoints(sample)
        lead = kp.shape[:-4]
        flat_kp, flat_det = kp.reshape(-1, *kp.shape[-4:]), (score > 0).reshape(-1, *score.shape[-3:])
        boxes = np.stack([_box(k, d, self.margin) for k, d in zip(flat_kp, flat_det)])
        sample["heatmap_box"] = boxes.reshape(*lead, 3)
        return sample


@dataclass(frozen=True)
class RandomBoxCrop:
    """Training: a random square inside `heatmap_box` covering a fraction U(*area) of it (scale augmentation).

    One draw per sample (all clips and frames); draw order: area, then x and y offsets.
    """

    area: tuple[float, float] = (0.56, 1.0)

    def __post_init__(self) -> None:
        lo, hi = self.area
        if not 0 < lo <= hi <= 1:
            raise ConfigError(f"RandomBoxCrop: area must satisfy 0 < area[0] <= area[1] <= 1, got {self.area}")

    def __call__(self, sample: Sample, rng: np.random.Generator | None = None) -> Sample:
        rng = need_rng(rng, self)
        if "heatmap_box" not in sample:
            raise ConfigError("RandomBoxCrop crops the person's box: put PersonBox before it")
        box = np.asarray(sample["heatmap_box"], np.float32)
        fraction = np.sqrt(rng.uniform(*self.area))
        offset = rng.uniform(0, 1 - fraction, size=2)
        side = box[..., 2:3]
        corner = box[..., :2] + offset * side
        sample["heatmap_box"] = np.concatenate([corner, side * fraction], axis=-1).astype(np.float32)
        return sample


@dataclass(frozen=True)
class HeatmapVolume:
    """Writes `sample[key]` float32 [K, T, size, size] (module doc); needs `heatmap_box` (PersonBox).

    `num_frames`: an evenly spaced subset of the sampled frames (None: all of them).
    """

    key: str = "heatmap"
    size: int = 56
    sigma: float = 0.6
    joints: bool = True
    limbs: bool = True
    num_frames: int | None = None

    def __post_init__(self) -> None:
        if int(self.size) < 1 or not self.sigma > 0 or (self.num_frames is not None and int(self.num_frames) < 1):
            raise ConfigError(f"HeatmapVolume: need size >= 1, sigma > 0, num_frames >= 1 or None; got {self}")
        if not (self.joints or self.limbs):
            raise ConfigError("HeatmapVolume: draw joints, limbs or both")

    def __call__(self, sample: Sample, rng: np.random.Generator | None = None) -> Sample:
        if "heatmap_box" not in sample:
            raise ConfigError("HeatmapVolume draws inside the person's box: put PersonBox before it")
        layout = sample_layout(sample)
        check_heatmap_layout(layout, joints=self.joints, limbs=self.limbs, key="HeatmapVolume")
        kp, score = pixel_keypoints(sample)
        if self.num_frames is not None:  # evenly spaced, as the RGB stream picks its frames
            n = kp.shape[-3]
            pos = np.minimum(np.floor((np.arange(self.num_frames) + 0.5) * n / self.num_frames).astype(np.int64), n - 1)
            kp, score = kp[..., pos, :, :], score[..., pos, :]
        box = np.asarray(sample["heatmap_box"], np.float32)
        # heatmap pixel coordinates: pixel i covers [i, i + 1), its centre at i + 0.5
        uv = (kp - box[..., None, None, None, :2]) * (self.size / box[..., None, None, None, 2:3]) - 0.5
        pairs = limb_pairs(layout) if self.limbs else ()
        lead = kp.shape[:-4]
        flat = [self._volume(u, s, pairs) for u, s in zip(uv.reshape(-1, *uv.shape[-4:]),
                                                          score.reshape(-1, *score.shape[-3:]))]
        sample[self.key] = np.stack(flat).reshape(*lead, *flat[0].shape)
        return sample

    def _volume(self, uv: np.ndarray, score: np.ndarray, pairs) -> np.ndarray:
        """One clip: uv [M, T, V, 2] in heatmap pixels, score [M, T, V] -> [K, T, size, size].

        Only detected joints and limbs (score > 0) are drawn; persons are merged by maximum.
        A joint is drawn as a segment of length 0.
        """
        num_joints = uv.shape[-2] if self.joints else 0
        out = np.zeros((num_joints + len(pairs), uv.shape[1], self.size, self.size), np.float32)
        a, b = (np.array(x) for x in zip(*pairs)) if pairs else (None, None)
        for person, (p_uv, p_score) in enumerate(zip(uv, score)):
            if self.joints:
                frame, joint = np.nonzero(p_score > 0)
                ends = p_uv[frame, joint]
                draw_segments(out, joint, frame, ends, ends, p_score[frame, joint], self.sigma, merge=person > 0)
            if pairs:
                weight = np.minimum(p_score[:, a], p_score[:, b])
                frame, limb = np.nonzero(weight > 0)
                draw_segments(out, num_joints + limb, frame, p_uv[frame, a[limb]], p_uv[frame, b[limb]],
                              weight[frame, limb], self.sigma, merge=person > 0)
        return out


def draw_segments(out: np.ndarray, channel: np.ndarray, frame: np.ndarray, start: np.ndarray, end: np.ndarray,
                  weight: np.ndarray, sigma: float, *, merge: bool) -> None:
    """Draw P segments start-end [P, 2] (heatmap pixels) into out[channel, frame] [K, T, S, S].

    Each is computed only in a square window covering it and REACH sigmas around it (beyond,
    a Gaussian is below 3.4e-4 of its peak and is left out); windows are grouped by size
    (powers of two, at most S) so each group is one vectorised computation. Windows stay inside
    the map (shifted inwards at the borders; the values are exact wherever they are drawn).
    With `merge` the maximum with what is drawn already is kept (another person).
    """
    size = out.shape[-1]
    reach = REACH * sigma
    corner = np.floor(np.minimum(start, end) - reach)
    extent = (np.ceil(np.maximum(start, end) + reach) - corner + 1).max(-1)
    window = np.minimum(2 ** np.ceil(np.log2(np.clip(extent, 1, size))), size).astype(np.int64)
    flat_out = out.reshape(-1)
    for w in np.unique(window):
        sel = np.flatnonzero(window == w)
        origin = np.clip(corner[sel], 0, size - w).astype(np.int64)  # [p, 2] (x, y)
        xs, ys = origin[:, 0:1] + np.arange(w), origin[:, 1:2] + np.arange(w)  # [p, w]
        maps = segment_maps(start[sel], end[sel], weight[sel], xs.astype(np.float32), ys.astype(np.float32), sigma)
        plane = (channel[sel] * out.shape[1] + frame[sel]) * size * size
        index = plane[:, None, None] + ys[:, :, None] * size + xs[:, None, :]  # [p, w, w]
        flat_out[index] = np.maximum(flat_out[index], maps) if merge else maps


def segment_maps(start: np.ndarray, end: np.ndarray, weight: np.ndarray, xs: np.ndarray, ys: np.ndarray,
                 sigma: float) -> np.ndarray:
    """[P, h, w] at pixels ys [P, h] x xs [P, w]: weight * exp(-d^2 / 2 sigma^2), d the distance to segment P.

    With p = pixel - start and e = end - start, the closest point is start + t e with
    t = clip(p.e / |e|^2, 0, 1) (a segment of length 0 is its start point). In place, to keep
    the passes over the [P, h, w] arrays few.
    """
    e = end - start
    inv_length2 = (1.0 / np.maximum((e**2).sum(-1), np.float32(1e-6)))[:, None, None]
    px, py = xs - start[:, 0:1], ys - start[:, 1:2]  # [P, w], [P, h]
    t = py[:, :, None] * e[:, 1, None, None] + (px * e[:, 0:1])[:, None, :]  # p.e
    t *= inv_length2
    np.clip(t, 0.0, 1.0, out=t)
    dx = t * e[:, 0, None, None]
    np.subtract(px[:, None, :], dx, out=dx)
    np.square(dx, out=dx)
    t *= e[:, 1, None, None]
    np.subtract(py[:, :, None], t, out=t)
    np.square(t, out=t)
    dx += t
    dx *= np.float32(-0.5 / sigma**2)
    np.exp(dx, out=dx)
    dx *= weight[:, None, None]
    return dx
