"""Appearance augmentation for video modalities, so an RGB stream learns gestures, not people.

Training only; every draw is made once per clip (all frames change the same way), from the
sample's generator.

- `ColourJitter(name)`: brightness, contrast, saturation, hue and, with probability
  `grayscale`, grey, applied to the normalised clip ``sample[name]`` [..., 3, T, H, W] (undone
  to [0, 1] with the encoder's mean/std and redone after). Hue is a rotation of the chroma
  plane in YIQ, so skin, shirt and backdrop colours all move: colour alone stops telling the
  subjects apart.
- `RandomErase(name)`: with probability `p`, one rectangle of the clip (the same in every
  frame; `area` of the frame, aspect 1/3..3) is filled with a random colour.
- `EraseClothing`: with probability `p`, a random part of the torso (the `torso` crop box, so
  it follows the person) of the decoded full-resolution ``video_frames`` is painted one random
  colour before the crops are cut: shirts, ties and collars stop being a cue.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from microgesture.data.transforms.core import Sample, need_rng, sample_error
from microgesture.errors import ConfigError

# RGB -> YIQ (NTSC); hue is a rotation of (I, Q), saturation their scale.
_YIQ = np.array([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])
_RGB = np.linalg.inv(_YIQ)


def colour_matrix(brightness: float, saturation: float, hue: float) -> np.ndarray:
    """3x3 matrix acting on RGB column vectors: scale by `brightness`, chroma by `saturation`,
    rotate the hue by `hue` radians."""
    c, s = np.cos(hue), np.sin(hue)
    chroma = np.array([[1.0, 0.0, 0.0], [0.0, saturation * c, -saturation * s], [0.0, saturation * s, saturation * c]])
    return brightness * (_RGB @ chroma @ _YIQ)


@dataclass(frozen=True)
class ColourJitter:
    """Per-clip colour augmentation of video modality `name` (see the module doc).

    Factors are drawn from U(1 - b, 1 + b) (brightness), U(1 - c, 1 + c) (contrast, about the
    clip's mean grey), U(1 - s, 1 + s) (saturation); the hue angle from U(-hue, hue) * pi; grey
    with probability `grayscale`. Draw order: brightness, contrast, saturation, hue, grey.
    """

    name: str
    mean: tuple[float, ...]
    std: tuple[float, ...]
    brightness: float = 0.3
    contrast: float = 0.3
    saturation: float = 0.4
    hue: float = 0.5
    grayscale: float = 0.2

    def __post_init__(self) -> None:
        for key in ("brightness", "contrast", "saturation", "grayscale"):
            if not 0 <= getattr(self, key) <= 1:
                raise ConfigError(f"ColourJitter: {key} must be in [0, 1], got {getattr(self, key)}")
        if not 0 <= self.hue <= 1:
            raise ConfigError(f"ColourJitter: hue must be in [0, 1] (a fraction of pi), got {self.hue}")

    def __call__(self, sample: Sample, rng: np.random.Generator | None = None) -> Sample:
        rng = need_rng(rng, self)
        clip = _clip(sample, self.name)
        b = rng.uniform(1 - self.brightness, 1 + self.brightness)
        c = rng.uniform(1 - self.contrast, 1 + self.contrast)
        s = rng.uniform(1 - self.saturation, 1 + self.saturation)
        h = rng.uniform(-self.hue, self.hue) * np.pi
        if rng.random() < self.grayscale:
            s = 0.0
        mean, std = _stats(self.mean, self.std)
        x = clip * std + mean  # [0, 1]
        x = np.einsum("ij,...jthw->...ithw", colour_matrix(b, s, h).astype(np.float32), x)
        grey = (x * _YIQ[0].astype(np.float32).reshape(3, 1, 1, 1)).sum(-4, keepdims=True)
        centre = grey.mean(axis=(-4, -3, -2, -1), keepdims=True)
        x = np.clip((x - centre) * c + centre, 0.0, 1.0)
        sample[self.name] = ((x - mean) / std).astype(np.float32)
        return sample


@dataclass(frozen=True)
class RandomErase:
    """With probability `p`, one rectangle of `area` (fraction of the frame) in a random colour, every frame."""

    name: str
    mean: tuple[float, ...]
    std: tuple[float, ...]
    p: float = 0.5
    area: tuple[float, float] = (0.02, 0.15)

    def __post_init__(self) -> None:
        lo, hi = self.area
        if not 0 <= self.p <= 1 or not 0 < lo <= hi < 1:
            raise ConfigError(f"RandomErase: need p in [0, 1] and 0 < area[0] <= area[1] < 1, "
                              f"got {self.p}, {self.area}")

    def __call__(self, sample: Sample, rng: np.random.Generator | None = None) -> Sample:
        rng = need_rng(rng, self)
        if rng.random() >= self.p:
            return sample
        clip = _clip(sample, self.name)
        h, w = clip.shape[-2:]
        area = rng.uniform(*self.area) * h * w
        aspect = np.exp(rng.uniform(np.log(1 / 3), np.log(3)))
        eh, ew = (int(min(n, max(1, round(v)))) for n, v in ((h, np.sqrt(area * aspect)), (w, np.sqrt(area / aspect))))
        y, x = int(rng.integers(0, h - eh + 1)), int(rng.integers(0, w - ew + 1))
        mean, std = _stats(self.mean, self.std)
        colour = ((rng.random(3).astype(np.float32).reshape(3, 1, 1, 1) - mean) / std)
        out = clip.copy()
        out[..., y:y + eh, x:x + ew] = colour
        sample[self.name] = out
        return sample


@dataclass(frozen=True)
class EraseClothing:
    """With probability `p`, paint part of the torso box (fraction `area` of it) one random colour.

    Acts on `video_frames` (CropFrames) before the tiles are cut, where `crop_boxes['torso']`
    (CropBoxes) says where the torso is in every frame. Does nothing when the torso was not found.
    """

    p: float = 0.5
    area: tuple[float, float] = (0.3, 0.7)

    def __post_init__(self) -> None:
        lo, hi = self.area
        if not 0 <= self.p <= 1 or not 0 < lo <= hi <= 1:
            raise ConfigError(f"EraseClothing: need p in [0, 1] and 0 < area[0] <= area[1] <= 1, got {self}")

    def __call__(self, sample: Sample, rng: np.random.Generator | None = None) -> Sample:
        rng = need_rng(rng, self)
        if rng.random() >= self.p:
            return sample
        boxes = sample.get("crop_boxes", {}).get("torso")
        if "video_frames" not in sample:
            raise sample_error(sample, "video_frames", "missing; EraseClothing acts on decoded frames (CropFrames)")
        if boxes is None:
            return sample
        frac = np.sqrt(rng.uniform(*self.area))
        dx, dy = rng.uniform(-(1 - frac) / 2, (1 - frac) / 2, 2)
        colour = rng.integers(0, 256, 3).astype(np.uint8)
        frames = sample["video_frames"].copy()
        inds = np.asarray(sample["rgb_frame_inds"])
        h, w = frames.shape[-3:-1]
        img_h, img_w = (float(v) for v in sample.get("img_shape", (h, w))[:2])
        flat, flat_inds = frames.reshape(-1, *frames.shape[-3:]), inds.reshape(-1)
        for frame, t in zip(flat, flat_inds):
            cx, cy, side = boxes[t]
            half = frac * side / 2
            cx, cy = (cx + dx * side) * w / img_w, (cy + dy * side) * h / img_h
            half_x, half_y = half * w / img_w, half * h / img_h
            x0, x1 = int(max(0, round(cx - half_x))), int(min(w, round(cx + half_x)))
            y0, y1 = int(max(0, round(cy - half_y))), int(min(h, round(cy + half_y)))
            frame[y0:y1, x0:x1] = colour
        sample["video_frames"] = frames
        return sample


def _clip(sample: Sample, name: str) -> np.ndarray:
    if name not in sample:
        raise sample_error(sample, name, "missing; appearance augmentation follows the step that makes it")
    clip = np.asarray(sample[name], dtype=np.float32)
    if clip.ndim < 4 or clip.shape[-4] != 3:
        raise sample_error(sample, name, f"shape {clip.shape}, expected [..., 3, T, H, W]")
    return clip


def _stats(mean, std) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and std shaped [3, 1, 1, 1] for [..., 3, T, H, W] clips."""
    shape = (3, 1, 1, 1)
    return np.asarray(mean, np.float32).reshape(shape), np.asarray(std, np.float32).reshape(shape)
