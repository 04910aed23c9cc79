"""RGB clips decoded from the same frames the skeleton stream sampled.

`UniformSample` writes `frame_inds` (relative to the clip start); the RGB stream decodes frames
``start_frame + frame_inds`` of the source video, so video and pose describe the same instants.
An RGB encoder usually wants fewer frames than the skeleton model (16 vs 64, say):
`rgb_frame_indices` then keeps an evenly spaced subset of the skeleton's frames, never frames
of its own, so the two streams cannot drift apart.

Per clip: decode -> resize the short side to `resize` -> [flip] -> crop `size` x `size` (random
in training, centre otherwise; one box for every frame of a clip) -> (x / 255 - mean) / std ->
float32 [3, T, size, size]. The flip mirrors the whole resized frame before cropping, so a
keypoint at x (pixels) sits at ``width - 1 - x`` exactly as `RandomFlip` maps the skeleton.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from microgesture.data.video import read_frames, video_info
from microgesture.errors import ConfigError, DataError


def rgb_frame_indices(frame_inds: np.ndarray, num_frames: int) -> np.ndarray:
    """`num_frames` of the skeleton's sampled frames along the last axis, in order.

    Position i takes element ``floor((i + 0.5) * n / num_frames)`` of the n sampled frames:
    an evenly spaced subset when num_frames < n, every frame repeated in order when larger,
    the frames themselves when equal. Leading axes (clips) are kept.
    """
    inds = np.asarray(frame_inds)
    if int(num_frames) < 1:
        raise ConfigError(f"RGB num_frames must be >= 1, got {num_frames}")
    if inds.ndim < 1 or inds.shape[-1] < 1 or not np.issubdtype(inds.dtype, np.integer):
        raise ValueError(f"frame_inds must be an integer array [..., n] with n >= 1, got {inds.dtype} {inds.shape}")
    n = inds.shape[-1]
    pos = np.floor((np.arange(num_frames) + 0.5) * n / num_frames).astype(np.int64)
    return np.ascontiguousarray(inds[..., np.minimum(pos, n - 1)], dtype=np.int64)


def read_clip_frames(
    video_path: str | Path | None, start_frame: int, frame_inds: np.ndarray, *, name: str | None = None
) -> np.ndarray:
    """Frames ``start_frame + frame_inds`` (one clip, [T]) of the video as uint8 RGB [T, H, W, 3].

    Raises DataError naming the clip, the video and the frames when the video is missing or
    shorter than the clip's frames (labels that run past the end of the video).
    """
    clip = f"clip {name}" if name else "clip"
    if video_path is None:
        raise DataError(None, f"{clip} has no video_path: the RGB stream needs the source video "
                              "(import the annotations with the videos present)")
    path = Path(video_path)
    if not path.is_file():
        raise DataError(path, f"video file not found (needed by {clip})")
    frames = int(start_frame) + np.asarray(frame_inds, dtype=np.int64).reshape(-1)
    total = video_info(path).num_frames
    if frames.size and (frames.min() < 0 or frames.max() >= total):
        raise DataError(
            path,
            f"{clip} needs frames {frames.min()}..{frames.max()} but the video has {total} frames "
            f"(0..{total - 1}): the video is shorter than its labels",
            where=f"frame {frames.max() if frames.max() >= total else frames.min()}",
        )
    return read_frames(path, frames.tolist())


def crop_box(
    height: int, width: int, size: int, *, train: bool, rng: np.random.Generator | None
) -> tuple[int, int]:
    """Top-left (y, x) of a `size` square: uniform random when `train`, else centred."""
    if train:
        if not isinstance(rng, np.random.Generator):
            raise TypeError("a training RGB crop is random: pass a numpy.random.Generator as rng")
        return int(rng.integers(0, height - size + 1)), int(rng.integers(0, width - size + 1))
    return (height - size) // 2, (width - size) // 2


def resize_short_side(frames: np.ndarray, short: int) -> np.ndarray:
    """uint8 [T, H, W, 3] -> [T, H', W', 3] with min(H', W') == short (aspect kept)."""
    h, w = frames.shape[1:3]
    if min(h, w) == short:
        return frames
    scale = short / min(h, w)
    new_w, new_h = (short, max(short, round(h * scale))) if w <= h else (max(short, round(w * scale)), short)
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR  # area averaging avoids aliasing
    return np.stack([cv2.resize(f, (new_w, new_h), interpolation=interp) for f in frames])


def _process(frames: np.ndarray, size: int, resize: int, train: bool, flipped: bool,
             rng: np.random.Generator | None, scale: np.ndarray, offset: np.ndarray) -> np.ndarray:
    frames = resize_short_side(frames, resize)
    if flipped:
        frames = frames[:, :, ::-1]
    y, x = crop_box(frames.shape[1], frames.shape[2], size, train=train, rng=rng)
    crop = frames[:, y:y + size, x:x + size].astype(np.float32)
    out = crop * scale - offset  # = (x / 255 - mean) / std, one pass
    return np.ascontiguousarray(out.transpose(3, 0, 1, 2))


def load_rgb_clip(
    video_path: str | Path | None,
    start_frame: int,
    frame_inds: np.ndarray,
    *,
    size: int,
    resize: int | None = None,
    train: bool,
    flipped: bool = False,
    rng: np.random.Generator | None = None,
    mean: Sequence[float],
    std: Sequence[float],
    name: str | None = None,
) -> np.ndarray:
    """Decode, resize, crop, flip and normalise one clip's frames.

    `frame_inds` [T] (relative to `start_frame`) gives float32 [3, T, size, size]; a multi-clip
    [K, T] gives [K, 3, T, size, size], each clip decoded by its own call and cropped by its own
    box. `resize` is the short side before cropping (default round(size * 8 / 7), 256 for 224).
    `mean`/`std` are per-channel on the [0, 1] scale. `name` (the clip) is used in errors.
    """
    size = int(size)
    resize = round(size * 8 / 7) if resize is None else int(resize)
    if size < 1 or resize < size:
        raise ConfigError(f"RGB size must be >= 1 and resize >= size, got size {size}, resize {resize}")
    mean_a, std_a = np.asarray(mean, np.float32), np.asarray(std, np.float32)
    if mean_a.shape != (3,) or std_a.shape != (3,) or not (std_a > 0).all():
        raise ConfigError(f"RGB mean and std need 3 values each (std > 0), got {tuple(mean)} and {tuple(std)}")
    scale, offset = 1.0 / (255.0 * std_a), mean_a / std_a
    inds = np.asarray(frame_inds)
    if inds.ndim not in (1, 2):
        raise ValueError(f"frame_inds must be [T] or [K, T], got shape {inds.shape}")
    clips = [inds] if inds.ndim == 1 else list(inds)
    out = [
        _process(read_clip_frames(video_path, start_frame, c, name=name), size, resize, train, flipped, rng,
                 scale, offset)
        for c in clips
    ]
    return out[0] if inds.ndim == 1 else np.stack(out)


@dataclass(frozen=True)
class VideoFile:
    """Writes `video_file`: the clip's `video_path` made absolute (relative paths are under `root`)."""

    root: str | None = None

    def __call__(self, sample: dict[str, Any], rng: np.random.Generator | None = None) -> dict[str, Any]:
        path = sample.get("video_path")
        if path is not None and self.root is not None and not Path(path).is_absolute():
            path = Path(self.root) / path
        sample["video_file"] = None if path is None else str(path)
        return sample


@dataclass(frozen=True)
class RGBClip:
    """Adds `rgb` (and `rgb_frame_inds`) to a sample that went through temporal sampling.

    Uses `frame_inds` (UniformSample), `flipped` (RandomFlip), `start_frame`, `frame_dir` and
    `video_file` (VideoFile). `mean`/`std` are the encoder's input normalisation (its InputSpec).
    """

    size: int
    num_frames: int
    train: bool
    mean: tuple[float, ...]
    std: tuple[float, ...]
    resize: int | None = None

    def __post_init__(self) -> None:
        resize = round(self.size * 8 / 7) if self.resize is None else self.resize
        if int(self.size) < 1 or int(self.num_frames) < 1 or resize < self.size:
            raise ConfigError(f"RGBClip: need size >= 1, num_frames >= 1 and resize >= size; got {self}")

    def __call__(self, sample: dict[str, Any], rng: np.random.Generator | None = None) -> dict[str, Any]:
        if "frame_inds" not in sample:
            raise ConfigError("RGBClip needs sample['frame_inds']: run UniformSample (the skeleton pipeline) first")
        inds = rgb_frame_indices(sample["frame_inds"], self.num_frames)
        video = sample.get("video_file", sample.get("video_path"))
        sample["rgb"] = load_rgb_clip(
            video, int(sample.get("start_frame", 0)), inds, size=self.size, resize=self.resize,
            train=self.train, flipped=bool(sample.get("flipped", False)), rng=rng, mean=self.mean, std=self.std,
            name=sample.get("frame_dir"),
        )
        sample["rgb_frame_inds"] = inds
        return sample
