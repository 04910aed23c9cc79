"""Aligned face crops, and face boxes from a skeleton's face joints.

`aligned_crop(frame, centre, side, angle)`: the square of `side` pixels around `centre`, turned
by `angle` (radians, the eye line's) so the eyes are level, resampled to 112x112; parts outside
the frame are black. A square much larger than the crop is first shrunk by area averaging, so a
big face is not aliased. This is a square crop with eye-level rotation, not the five-point
similarity alignment of ArcFace-style datasets (no template for the nose and mouth corners).

`face_from_joints`: with skeletons only, a face box from the face joints of a layout,
declared by name: the eyes ("r_eye", "l_eye") are needed, the nose and ears ("nose", "r_ear",
"l_ear") are used when seen. Centre: between the eyes, 0.35 eye distances down (about the nose);
face side: the larger of 3 eye distances and 1.1 ear distances; angle: the eye line's.
"""

from __future__ import annotations

import cv2
import numpy as np

from microgesture.data.faces.detect import Detection
from microgesture.data.formats.facetrack import FACE_SIZE
from microgesture.domain.layouts import get_layout
from microgesture.errors import ConfigError

FACE_JOINTS = ("r_eye", "l_eye", "nose", "r_ear", "l_ear")
EYES_TO_SIDE, EARS_TO_SIDE, EYES_TO_CENTRE = 3.0, 1.1, 0.35


def crop_transform(centre: np.ndarray, side: float, angle: float, out: int = FACE_SIZE) -> np.ndarray:
    """2x3 affine map from frame pixels to crop pixels."""
    k = out / side
    c, s = np.cos(-angle) * k, np.sin(-angle) * k
    half = (out - 1) / 2
    cx, cy = centre
    return np.array([[c, -s, half - c * cx + s * cy], [s, c, half - s * cx - c * cy]])


def aligned_crop(frame: np.ndarray, centre: np.ndarray, side: float, angle: float, out: int = FACE_SIZE) -> np.ndarray:
    """uint8 [out, out, 3]: the rotated square (see module doc); black outside the frame."""
    centre = np.asarray(centre, dtype=np.float64)
    if side > 2 * out:  # shrink the neighbourhood by area averaging first
        reach = side / 2 * (abs(np.cos(angle)) + abs(np.sin(angle))) + 2
        x0, y0 = int(np.floor(centre[0] - reach)), int(np.floor(centre[1] - reach))
        x1, y1 = int(np.ceil(centre[0] + reach)), int(np.ceil(centre[1] + reach))
        region = _padded(frame, x0, y0, x1, y1)
        k = 2 * out / side
        size = (max(1, round((x1 - x0) * k)), max(1, round((y1 - y0) * k)))
        small = cv2.resize(region, size, interpolation=cv2.INTER_AREA)
        kx, ky = size[0] / (x1 - x0), size[1] / (y1 - y0)
        frame, centre, side = small, (centre - [x0, y0]) * [kx, ky], side * kx
    m = crop_transform(centre, side, angle, out)
    return cv2.warpAffine(frame, m, (out, out), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def _padded(frame: np.ndarray, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
    h, w = frame.shape[:2]
    cx0, cy0, cx1, cy1 = min(max(x0, 0), w), min(max(y0, 0), h), max(min(x1, w), 0), max(min(y1, h), 0)
    region = frame[cy0:cy1, cx0:cx1]
    if region.size == 0:
        return np.zeros((y1 - y0, x1 - x0, 3), np.uint8)
    return cv2.copyMakeBorder(region, cy0 - y0, y1 - cy1, cx0 - x0, x1 - cx1, cv2.BORDER_CONSTANT, value=0)


def outside_share(centre: np.ndarray, side: float, angle: float, frame_size: tuple[int, int], samples: int = 8) -> float:
    """Share of the crop square that lies outside the frame (checked on a samples x samples grid)."""
    w, h = frame_size
    g = (np.arange(samples) + 0.5) / samples - 0.5
    u, v = np.meshgrid(g * side, g * side)
    c, s = np.cos(angle), np.sin(angle)
    x = centre[0] + u * c - v * s
    y = centre[1] + u * s + v * c
    return float(np.mean((x < 0) | (x > w) | (y < 0) | (y > h)))


def face_joint_indices(layout: str) -> dict[str, int]:
    """Where a layout keeps the face joints; ConfigError if it has no eyes."""
    names = get_layout(layout).joint_names
    found = {name: names.index(name) for name in FACE_JOINTS if name in names}
    if "r_eye" not in found or "l_eye" not in found:
        raise ConfigError(f"layout {layout!r} has no eye joints (r_eye, l_eye): no face box can be made from it; "
                          f"face joints it has: {', '.join(found) or 'none'}")
    return found


def face_from_joints(joints: np.ndarray, scores: np.ndarray, index: dict[str, int]) -> Detection | None:
    """One frame's face box from its joints [V, 2] and scores [V] (None without both eyes)."""
    seen = {name: joints[j] for name, j in index.items() if scores[j] > 0}
    if "r_eye" not in seen or "l_eye" not in seen:
        return None
    right, left = seen["r_eye"], seen["l_eye"]  # the person's right eye is on the image's left
    eye_gap = float(np.linalg.norm(left - right))
    if eye_gap <= 0:
        return None
    side = EYES_TO_SIDE * eye_gap
    if "r_ear" in seen and "l_ear" in seen:
        side = max(side, EARS_TO_SIDE * float(np.linalg.norm(seen["l_ear"] - seen["r_ear"])))
    direction = (left - right) / eye_gap
    down = np.array([-direction[1], direction[0]])
    centre = (left + right) / 2 + EYES_TO_CENTRE * eye_gap * down
    box = np.concatenate([centre - side / 2, centre + side / 2])
    score = float(min(scores[index["r_eye"]], scores[index["l_eye"]], 1.0))
    return Detection(box, score, np.stack([right, left]))
