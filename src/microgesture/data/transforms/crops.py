"""Skeleton-guided RGB: the hands, the face and the upper body cut from the full-resolution frames
at the skeleton's own sampled instants, tiled into one clip.

Three steps, composed by pipelines.py for the modalities `rgb_crops`, `rgb_hands` and `rgb_face`:

1. `CropBoxes` runs on the whole clip in pixels, before temporal sampling, and writes
   ``crop_boxes[region]`` float32 [T, 3] (centre x, centre y, side; the clip's pixels) and
   ``crop_lost[region]`` bool [T] for every source frame.
2. `CropFrames` decodes frames ``start_frame + rgb_frame_inds`` (an evenly spaced subset of the
   skeleton's sampled frames, `rgb.rgb_frame_indices`) at full resolution: ``video_frames``
   uint8 [..., T, H, W, 3].
3. `TileCrops` cuts each region's box out of those frames, resizes it to a tile and tiles the
   grid into ``sample[name]`` float32 [..., 3, T, size, size], normalised with the encoder's
   mean/std. Under a horizontal flip (``flipped``) the person's right and left swap, exactly as
   `RandomFlip` swaps the joints: the "r_hand" tile shows the mirrored left hand of the video.

A region is found by joint names (`REGIONS`), so any layout with those names works (miga35,
imigue22, openpose67, coco17, ntu25); names a layout lacks are skipped. Per clip and region:

- centre, per frame: the mean of the region's detected joints (score >= `min_score` and not at
  (0, 0)) of its first joint set seen in at least a quarter of the frames (else the set seen
  most often). Frames where it is not seen take the centre interpolated between the nearest
  frames where it is (held at the clip's ends). A Gaussian over time (`smooth` frames) then
  removes detector jitter: the box glides, the hand moves inside it.
- side, constant over the clip: `Region.side` body widths, and at least `Region.margin` times
  the 90th percentile of the region joints' extent. A body width is the median shoulder
  distance over the clip (fallbacks: 2.5 ear distances, 5 eye distances, half the extent of
  all detected joints, a third of the frame's short side).
- fallbacks, never a silent wrong crop: a region none of whose joints is seen in any frame gives
  a blank tile (the mean colour, 0 after normalisation) and a `RegionMissingWarning`; a box
  whose centre is outside the frame, or a region lost within half a box of the frame's edge
  (the hand left the frame), keeps its box, is padded with the mean colour where the box leaves
  the frame and gives a `RegionOutsideWarning` naming the clip, the region and the frames.
  A video shorter than its skeleton, or whose aspect ratio differs from the skeleton's
  `img_shape`, is a DataError naming the file.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from microgesture.data.transforms.core import Sample, keypoint_arrays, need_rng, sample_error, sample_layout
from microgesture.data.transforms.rgb import read_clip_frames, rgb_frame_indices
from microgesture.domain.layouts import FINGERS, JointLayout
from microgesture.errors import ConfigError, DataError


class CropWarning(UserWarning):
    """A crop fell back to something other than the region's own joints (see the subclasses)."""


class RegionMissingWarning(CropWarning):
    """No joint of a region was detected in any frame of the clip: its tile is blank."""


class RegionOutsideWarning(CropWarning):
    """A region's box left the frame (or the region was lost at the frame's edge)."""


def _sided(side: str, names: Sequence[str]) -> tuple[str, ...]:
    return tuple(n.format(s=side) for n in names)


_HAND = ("{s}_wrist", "{s}_wrist_hand", "{s}_hand", "{s}_hand_tip", "{s}_thumb",
         *(f"{{s}}_{f}_tip" for f in FINGERS), *(f"{{s}}_{f}_4" for f in FINGERS))
_FACE = ("nose", "r_eye", "l_eye", "r_ear", "l_ear", "head")
_SHOULDERS = ("neck", "r_shoulder", "l_shoulder", "spine_shoulder")


@dataclass(frozen=True)
class Region:
    """Where a crop goes: joint-name sets (preferred first), box side and centre offset in body widths."""

    joints: tuple[tuple[str, ...], ...]
    side: float
    offset_y: float = 0.0  # downwards, body widths
    margin: float = 0.0  # side >= margin * the joints' extent


REGIONS: dict[str, Region] = {
    **{f"{s}_hand": Region((_sided(s, _HAND),), side=0.6, margin=1.3) for s in "rl"},
    **{f"{s}_hand_wide": Region((_sided(s, _HAND),), side=1.2, margin=2.0) for s in "rl"},
    "face": Region((_FACE, ("neck",)), side=0.85, offset_y=0.05),
    "upper_body": Region((_SHOULDERS, ("nose", "head")), side=2.3, offset_y=0.25),
    "torso": Region((_SHOULDERS,), side=1.0, offset_y=0.6),
}

# Modality -> grid of regions (rows of tiles; square grids, the person's right on the image's left).
CROP_GRIDS: dict[str, tuple[tuple[str, ...], ...]] = {
    "rgb_crops": (("r_hand", "l_hand"), ("face", "upper_body")),
    "rgb_hands": (("r_hand", "l_hand"), ("r_hand_wide", "l_hand_wide")),
    "rgb_face": (("face",),),
}


def mirrored(region: str) -> str:
    """The region a horizontal flip shows in its place (r_hand <-> l_hand)."""
    if region[:2] in ("r_", "l_"):
        return ("l_" if region[0] == "r" else "r_") + region[2:]
    return region


# ----------------------------------------------------------------------------- boxes


def body_width(kp: np.ndarray, det: np.ndarray, layout: JointLayout, img_shape: tuple[int, int]) -> float:
    """One person's body width in pixels from [T, V, 2] keypoints (see the module doc for fallbacks)."""
    names = layout.joint_names
    for a, b, factor in (("r_shoulder", "l_shoulder", 1.0), ("r_ear", "l_ear", 2.5), ("r_eye", "l_eye", 5.0)):
        if a in names and b in names:
            i, j = names.index(a), names.index(b)
            both = det[:, i] & det[:, j]
            if both.any():
                width = factor * float(np.median(np.linalg.norm(kp[both, i] - kp[both, j], axis=-1)))
                if width > 1.0:
                    return width
    if det.any():
        points = kp[det]
        extent = float((points.max(0) - points.min(0)).max())
        if extent > 1.0:
            return extent / 2
    return min(img_shape) / 3


def _gaussian(values: np.ndarray, sigma: float) -> np.ndarray:
    """Smooth [T, C] along T with a Gaussian (edges held)."""
    if sigma <= 0 or len(values) < 2:
        return values
    half = int(np.ceil(3 * sigma))
    kernel = np.exp(-0.5 * (np.arange(-half, half + 1) / sigma) ** 2)
    kernel /= kernel.sum()
    padded = np.pad(values, ((half, half), (0, 0)), mode="edge")
    return np.stack([np.convolve(padded[:, c], kernel, mode="valid") for c in range(values.shape[1])], 1)


def _fill(centres: np.ndarray, seen: np.ndarray) -> np.ndarray:
    """Centres [T, 2] with unseen frames linearly interpolated between seen ones (held at the ends)."""
    t = np.arange(len(centres))
    return np.stack([np.interp(t, t[seen], centres[seen, c]) for c in range(2)], 1)


def region_box(kp: np.ndarray, det: np.ndarray, layout: JointLayout, region: Region, width: float,
               smooth: float) -> tuple[np.ndarray, np.ndarray] | None:
    """Boxes [T, 3] (cx, cy, side) and the frames where the region was seen [T]; None if never seen."""
    names = layout.joint_names
    best = None
    for joint_set in region.joints:
        idx = [names.index(n) for n in joint_set if n in names]
        if not idx:
            continue
        seen = det[:, idx].any(1)
        if best is None or seen.sum() > best[1].sum():
            best = (idx, seen)
        if seen.mean() >= 0.25:
            best = (idx, seen)
            break
    if best is None or not best[1].any():
        return None
    idx, seen = best
    d = det[:, idx]
    sums = (kp[:, idx] * d[..., None]).sum(1)
    centres = np.divide(sums, np.maximum(d.sum(1, keepdims=True), 1))
    centres = _gaussian(_fill(centres, seen), smooth)
    centres[:, 1] += region.offset_y * width
    side = region.side * width
    several = d.sum(1) > 1
    if region.margin > 0 and several.any():
        pts = np.where(d[..., None], kp[:, idx], np.nan)[several]  # [T', J, 2], undetected as NaN
        extents = (np.nanmax(pts, axis=1) - np.nanmin(pts, axis=1)).max(axis=1)
        side = max(side, region.margin * float(np.percentile(extents, 90)))
    boxes = np.concatenate([centres, np.full((len(centres), 1), side)], 1)
    return boxes.astype(np.float32), seen


def lost_at_edge(boxes: np.ndarray, seen: np.ndarray, img_shape: tuple[int, int]) -> np.ndarray:
    """Frames [T] whose box centre is outside the frame, or unseen within half a box of its edge."""
    h, w = img_shape
    x, y, half = boxes[:, 0], boxes[:, 1], boxes[:, 2] / 2
    outside = (x < 0) | (x > w - 1) | (y < 0) | (y > h - 1)
    near_edge = (x < half) | (x > w - 1 - half) | (y < half) | (y > h - 1 - half)
    return outside | (~seen & near_edge)


@dataclass(frozen=True)
class CropBoxes:
    """Writes `crop_boxes` and `crop_lost` for `regions` from the whole clip's pixel keypoints.

    Must run before temporal sampling and geometry (pixels, every frame). Person 0's joints
    place the boxes. A region already in `crop_boxes` is kept (several crop modalities share it).
    """

    regions: tuple[str, ...]
    min_score: float = 0.1
    smooth: float = 3.0  # Gaussian sigma over time, frames

    def __post_init__(self) -> None:
        unknown = [r for r in self.regions if r not in REGIONS]
        if unknown:
            raise ConfigError(f"CropBoxes: unknown region {unknown[0]!r}; known: {', '.join(REGIONS)}")
        if self.min_score < 0 or self.smooth < 0:
            raise ConfigError(f"CropBoxes: min_score and smooth must be >= 0, got {self.min_score}, {self.smooth}")

    def __call__(self, sample: Sample, rng: np.random.Generator | None = None) -> Sample:
        if "frame_inds" in sample or sample.get("normalized"):
            raise ConfigError("CropBoxes needs the whole clip in pixels: put it before UniformSample and Normalize")
        kp, score = keypoint_arrays(sample)
        if "img_shape" not in sample:
            raise sample_error(sample, "img_shape", "missing; needed to place crop boxes")
        layout = sample_layout(sample)
        img_shape = tuple(int(v) for v in sample["img_shape"][:2])
        kp, score = kp[0].astype(np.float64), score[0]
        det = (score >= max(self.min_score, 1e-9)) & np.any(kp != 0, axis=-1)
        width = body_width(kp, det, layout, img_shape)
        boxes, lost = dict(sample.get("crop_boxes", {})), dict(sample.get("crop_lost", {}))
        for name in self.regions:
            if name in boxes:
                continue
            found = region_box(kp, det, layout, REGIONS[name], width, self.smooth)
            if found is None:
                looked = [n for s in REGIONS[name].joints for n in s if n in layout.joint_names]
                warnings.warn(RegionMissingWarning(
                    f"clip {sample.get('frame_dir', '?')}: no joint of region {name!r} "
                    f"({', '.join(looked) or 'none in layout ' + layout.name}) is detected in any frame; "
                    "its tile is blank (the mean colour)"), stacklevel=2)
                boxes[name], lost[name] = None, None
                continue
            boxes[name], seen = found
            lost[name] = lost_at_edge(boxes[name], seen, img_shape)
        sample["crop_boxes"], sample["crop_lost"] = boxes, lost
        return sample


# ----------------------------------------------------------------------------- frames


@dataclass(frozen=True)
class CropFrames:
    """Decodes `num_frames` of the skeleton's sampled frames at full resolution into `video_frames`.

    Needs `frame_inds` (UniformSample) and `video_file` (VideoFile). Writes `video_frames` uint8
    [..., T, H, W, 3] and `rgb_frame_inds` [..., T]; frames already decoded for the same indices
    are reused. DataError when the video is missing or shorter than the skeleton, or its
    frames do not have the skeleton's aspect ratio (`img_shape`).
    """

    num_frames: int

    def __call__(self, sample: Sample, rng: np.random.Generator | None = None) -> Sample:
        if "frame_inds" not in sample:
            raise ConfigError("CropFrames needs sample['frame_inds']: run UniformSample first")
        inds = rgb_frame_indices(sample["frame_inds"], self.num_frames)
        if "video_frames" in sample and np.array_equal(sample.get("rgb_frame_inds"), inds):
            return sample
        video = sample.get("video_file", sample.get("video_path"))
        name = sample.get("frame_dir")
        start = int(sample.get("start_frame", 0))
        clips = [read_clip_frames(video, start, c, name=name) for c in inds.reshape(-1, inds.shape[-1])]
        frames = np.stack(clips).reshape(*inds.shape, *clips[0].shape[1:])
        _check_aspect(video, frames.shape[-3:-1], sample.get("img_shape"), name)
        sample["video_frames"], sample["rgb_frame_inds"] = frames, inds
        return sample


def _check_aspect(video: str | Path | None, frame_hw: tuple[int, int], img_shape, name: str | None) -> None:
    if img_shape is None:
        return
    h, w = (int(v) for v in img_shape[:2])
    fh, fw = frame_hw
    if abs(fw / w - fh / h) > 0.02 * fw / w:
        raise DataError(video, f"frames are {fw}x{fh} but the skeleton of clip {name} was detected on {w}x{h} "
                               "frames (img_shape): another aspect ratio, so the joints cannot be placed on "
                               "the frames", where="frame size")


# ----------------------------------------------------------------------------- tiles


def cut(frame: np.ndarray, box: np.ndarray, tile: int, fill: np.ndarray) -> np.ndarray:
    """The square `box` (cx, cy, side; frame pixels) of `frame` resized to tile x tile; `fill` outside."""
    h, w = frame.shape[:2]
    side = max(2, int(round(box[2])))
    x0, y0 = int(round(box[0] - side / 2)), int(round(box[1] - side / 2))
    out = np.empty((side, side, 3), np.uint8)
    out[:] = fill
    ix0, iy0, ix1, iy1 = max(x0, 0), max(y0, 0), min(x0 + side, w), min(y0 + side, h)
    if ix1 > ix0 and iy1 > iy0:
        out[iy0 - y0:iy1 - y0, ix0 - x0:ix1 - x0] = frame[iy0:iy1, ix0:ix1]
    interp = cv2.INTER_AREA if side > tile else cv2.INTER_LINEAR
    return cv2.resize(out, (tile, tile), interpolation=interp)


@dataclass(frozen=True)
class TileCrops:
    """Tiles the regions of `grid` into `sample[name]` float32 [..., 3, T, size, size] (see module doc).

    In training each tile's box is jittered once per clip: its side by U(1 - jitter, 1 + jitter)
    and its centre by U(-jitter, jitter) sides in x and y (draws in grid order).
    """

    name: str
    grid: tuple[tuple[str, ...], ...]
    size: int
    train: bool
    mean: tuple[float, ...]
    std: tuple[float, ...]
    jitter: float = 0.1

    def __post_init__(self) -> None:
        n = len(self.grid)
        if n < 1 or any(len(row) != n for row in self.grid):
            raise ConfigError(f"TileCrops {self.name}: the grid must be square, got {self.grid}")
        if self.size < n * 8 or self.size % n:
            raise ConfigError(f"TileCrops {self.name}: size {self.size} must be a multiple of {n} tiles, "
                              f"at least {8 * n}")
        unknown = [r for row in self.grid for r in row if r not in REGIONS]
        if unknown:
            raise ConfigError(f"TileCrops {self.name}: unknown region {unknown[0]!r}; known: {', '.join(REGIONS)}")
        if not 0 <= self.jitter < 0.5:
            raise ConfigError(f"TileCrops {self.name}: jitter must be in [0, 0.5), got {self.jitter}")

    def __call__(self, sample: Sample, rng: np.random.Generator | None = None) -> Sample:
        for key in ("video_frames", "rgb_frame_inds", "crop_boxes"):
            if key not in sample:
                raise ConfigError(f"TileCrops needs sample[{key!r}]: run CropBoxes and CropFrames first")
        frames, inds = sample["video_frames"], np.asarray(sample["rgb_frame_inds"])
        flipped = bool(sample.get("flipped", False))
        n = len(self.grid)
        tile = self.size // n
        scale = _pixel_scale(frames.shape[-3:-1], sample.get("img_shape"))
        mean, std = np.asarray(self.mean, np.float32), np.asarray(self.std, np.float32)
        fill = np.round(mean * 255).astype(np.uint8)
        jitters = [self._jitter(rng) for _ in range(n * n)]
        flat_frames, flat_inds = frames.reshape(-1, *frames.shape[-4:]), inds.reshape(-1, inds.shape[-1])
        out = np.empty((len(flat_inds), inds.shape[-1], self.size, self.size, 3), np.uint8)
        for k, (clip, frame_ids) in enumerate(zip(flat_frames, flat_inds)):
            for cell, region in enumerate(r for row in self.grid for r in row):
                source = mirrored(region) if flipped else region
                tiles = self._tiles(sample, source, clip, frame_ids, tile, scale, jitters[cell], fill)
                if flipped:
                    tiles = tiles[:, :, ::-1]
                y, x = divmod(cell, n)
                out[k, :, y * tile:(y + 1) * tile, x * tile:(x + 1) * tile] = tiles
        normed = (out.astype(np.float32) / 255.0 - mean) / std
        normed = np.moveaxis(normed, -1, 1)  # [K, 3, T, S, S]
        sample[self.name] = np.ascontiguousarray(normed.reshape(*inds.shape[:-1], *normed.shape[1:]))
        return sample

    def _jitter(self, rng: np.random.Generator | None) -> np.ndarray:
        if not self.train or self.jitter == 0:
            return np.array([1.0, 0.0, 0.0])
        rng = need_rng(rng, self)
        return np.array([rng.uniform(1 - self.jitter, 1 + self.jitter), *rng.uniform(-self.jitter, self.jitter, 2)])

    def _tiles(self, sample: Sample, region: str, clip: np.ndarray, frame_ids: np.ndarray, tile: int,
               scale: np.ndarray, jitter: np.ndarray, fill: np.ndarray) -> np.ndarray:
        boxes = sample["crop_boxes"].get(region)
        if boxes is None:  # never detected: RegionMissingWarning was given by CropBoxes
            return np.broadcast_to(fill, (len(frame_ids), tile, tile, 3))
        if frame_ids.min() < 0 or frame_ids.max() >= len(boxes):
            raise sample_error(sample, "frame_inds", f"frames {frame_ids.min()}..{frame_ids.max()} are outside the "
                                                     f"clip's {len(boxes)} skeleton frames")
        lost = sample["crop_lost"][region][frame_ids]
        if lost.any():
            warnings.warn(RegionOutsideWarning(
                f"clip {sample.get('frame_dir', '?')}: region {region!r} is outside the frame or was lost at its "
                f"edge in {int(lost.sum())} of {len(frame_ids)} sampled frames (clip frames "
                f"{frame_ids[lost].tolist()[:8]}); its box stays where it was last seen, padded with the mean colour"),
                stacklevel=3)
        box = boxes[frame_ids].astype(np.float64)
        side = box[:, 2] * jitter[0]
        box = np.stack([box[:, 0] + jitter[1] * box[:, 2], box[:, 1] + jitter[2] * box[:, 2], side], 1)
        box[:, 0] *= scale[0]
        box[:, 1] *= scale[1]
        box[:, 2] *= scale.mean()
        return np.stack([cut(frame, b, tile, fill) for frame, b in zip(clip, box)])


def _pixel_scale(frame_hw: tuple[int, int], img_shape) -> np.ndarray:
    """Video pixels per skeleton pixel (x, y): the video may be stored at another resolution."""
    if img_shape is None:
        return np.ones(2)
    h, w = (float(v) for v in img_shape[:2])
    return np.array([frame_hw[1] / w, frame_hw[0] / h])


def crop_regions(name: str) -> tuple[str, ...]:
    """Every region a crop modality reads (its grid and, for flips, their mirror images)."""
    if name not in CROP_GRIDS:
        raise ConfigError(f"modality {name!r} is not a crop modality; known: {', '.join(CROP_GRIDS)}")
    names = [r for row in CROP_GRIDS[name] for r in row]
    return tuple(dict.fromkeys(names + [mirrored(r) for r in names]))
