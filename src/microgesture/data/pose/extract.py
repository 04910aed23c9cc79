"""One video in, per-frame landmarks of one person out (MediaPipe, see mediapipe.py).

The loop, per decoded frame i:
1. frames are scaled while decoding so the longer side is at most `max_side` pixels (the
   detection resolution); BlazePose and the hand model work on 256- and 224-pixel crops anyway;
2. the models run on every `stride`-th frame and on the last one; the frames between get the
   linear interpolation of the two processed frames around them, joint by joint, where both
   saw the joint (confidence: the smaller of the two), else nothing;
3. faces are looked for every `face_every` processed frames, and at every processed frame while
   nobody is followed; the person to analyse is chosen and followed as people.py says (pose on
   a crop around them when several faces are in view);
4. hands run on every `hands_every`-th processed frame, when a pose wrist is visible
   (`hands="auto"`), always (`"always"`) or never (`"off"`), on a crop around the person's upper
   body (from the pose; it follows the person and is re-placed when they move out of it): the
   palm detector looks at the whole image it is given, and finds the hands of a small, standing
   person only on such a crop. Each hand goes to the nearer pose wrist; between two hand runs the hand landmarks are interpolated as in 2 (a run that found no
   hand, or was skipped because no wrist was visible, counts as a run: nothing is bridged across it);
5. a mirrored video (a selfie recording) is flipped before the models see it and the x
   coordinates flipped back, so sides stay the person's own.

Coordinates are pixels of the original video. Lower-body landmarks (BlazePose 23-32) are
dropped unless `lower_body`: iMiGUE's OpenPose skeletons of seated players have none, and no
model trained on them (or on our synthetic data) has seen them. The time spent in each stage is
recorded (`timings`: decode, pose, hands, faces, wall-clock seconds; `cpu_timings`: the process's
CPU seconds, all threads, which a loaded machine inflates far less than wall-clock time).
"""

from __future__ import annotations

import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from microgesture.data.pose.mediapipe import (
    HAND_POINTS,
    POSE_POINTS,
    MediaPipeModels,
    assign_hands,
    quiet_native_stderr,
)
from microgesture.data.pose.people import Box, PersonTracker
from microgesture.data.video import iter_frames, video_info
from microgesture.domain.layouts import MEDIAPIPE75, convert_rows, get_layout
from microgesture.errors import ConfigError, DataError

LOWER_BODY = tuple(range(23, 33))  # BlazePose hips, knees, ankles, heels, feet
_ROI_MOVE = 0.25  # a crop is re-placed (and its tracker reset) when it should move this much
_HAND_CROP = 0.75  # half the side of the hand crop, in upper-body extents
UPPER_BODY = tuple(range(23))  # BlazePose face, arms and hands: what the hands' crop must hold


@dataclass(frozen=True)
class ExtractOptions:
    """How `extract_video` runs (module doc); defaults measured in docs/analyze.md."""

    stride: int = 2
    max_side: int = 640
    hands: Literal["auto", "always", "off"] = "auto"
    hands_every: int = 2
    faces: bool = True
    face_every: int = 10
    mirrored: bool = False
    lower_body: bool = False
    min_visibility: float = 0.5

    def check(self) -> None:
        if min(self.stride, self.face_every, self.hands_every) < 1:
            raise ConfigError(f"stride, hands_every and face_every must be >= 1, got {self.stride}, "
                              f"{self.hands_every} and {self.face_every}")
        if self.max_side < 64:
            raise ConfigError(f"max_side must be at least 64 pixels, got {self.max_side}")
        if self.hands not in ("auto", "always", "off"):
            raise ConfigError(f"hands must be auto, always or off, got {self.hands!r}")
        if not 0 <= self.min_visibility < 1:
            raise ConfigError(f"min_visibility must be in [0, 1), got {self.min_visibility}")


@dataclass
class Extraction:
    """A video's landmarks: `landmarks` [T, 75, 3] (mediapipe75; x, y in video pixels, confidence)."""

    source: str
    fps: float
    size: tuple[int, int]  # (width, height)
    landmarks: np.ndarray
    face_boxes: np.ndarray  # [T, 5] x0, y0, x1, y1, score of the followed face; zeros when none
    processed: np.ndarray  # [T] bool: the models ran on this frame
    options: ExtractOptions
    timings: dict[str, float] = field(default_factory=dict)
    cpu_timings: dict[str, float] = field(default_factory=dict)

    @property
    def num_frames(self) -> int:
        return len(self.landmarks)

    @property
    def frames(self) -> np.ndarray:
        return np.arange(self.num_frames, dtype=np.int64)

    def person_found(self) -> np.ndarray:
        """[T] bool: a pose was found (or interpolated) at this frame."""
        return (self.landmarks[:, :POSE_POINTS, 2] > 0).any(axis=1)

    def joints(self, layout: str = "miga35") -> np.ndarray:
        """[T, V, 3] rows in `layout` (declared conversions, domain/layouts.py)."""
        return convert_rows(self.landmarks, MEDIAPIPE75, get_layout(layout)).astype(np.float32)

    def describe(self) -> dict:
        found = self.person_found()
        return {"source": self.source, "fps": self.fps, "width": self.size[0], "height": self.size[1],
                "frames": self.num_frames, "frames_with_person": int(found.sum()),
                "processed_frames": int(self.processed.sum()), "options": asdict(self.options),
                "timings": {k: round(v, 3) for k, v in self.timings.items()},
                "cpu_timings": {k: round(v, 3) for k, v in self.cpu_timings.items()}}


def interpolate_between(landmarks: np.ndarray, processed: np.ndarray) -> np.ndarray:
    """Fill the frames that were not processed from the processed frames on either side (module doc)."""
    out = landmarks.copy()
    done = np.flatnonzero(processed)
    for a, b in zip(done[:-1], done[1:]):
        if b - a < 2:
            continue
        both = (landmarks[a, :, 2] > 0) & (landmarks[b, :, 2] > 0)
        for t in range(a + 1, b):
            w = (t - a) / (b - a)
            row = np.zeros_like(landmarks[a])
            row[both, :2] = (1 - w) * landmarks[a, both, :2] + w * landmarks[b, both, :2]
            row[both, 2] = np.minimum(landmarks[a, both, 2], landmarks[b, both, 2])
            out[t] = row
    return out


class _Timer:
    """Wall-clock and CPU seconds per stage; `add` returns the time a next stage starts from."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {"decode": 0.0, "pose": 0.0, "hands": 0.0, "faces": 0.0}
        self.cpu: dict[str, float] = dict(self.seconds)

    @staticmethod
    def now() -> tuple[float, float]:
        return time.perf_counter(), time.process_time()

    def add(self, stage: str, since: tuple[float, float]) -> tuple[float, float]:
        now = self.now()
        self.seconds[stage] += now[0] - since[0]
        self.cpu[stage] += now[1] - since[1]
        return now


class _Person:
    """Per-video state: the models, the tracker, the crop the pose model last ran on."""

    def __init__(self, models: MediaPipeModels, size: tuple[int, int], options: ExtractOptions, timer: _Timer):
        self.models, self.options, self.timer = models, options, timer
        self.tracker = PersonTracker(size)
        self.roi: Box | None = None
        self.hand_roi: Box | None = None
        self.size = size
        self.count = 0

    def process(self, image: np.ndarray) -> tuple[np.ndarray, Box | None, bool]:
        """[75, 3] landmarks in `image` pixels, the followed face, and whether hands were looked for."""
        opt, t = self.options, self.timer.now()
        if opt.faces and (self.count % opt.face_every == 0 or self.tracker.target is None):
            self.tracker.update(self.models.faces(image))
            t = self.timer.add("faces", t)
        self.count += 1
        self._place_crop(self.tracker.roi())
        pose = self.models.pose(image, self.roi)
        t = self.timer.add("pose", t)
        out = np.zeros((MEDIAPIPE75.num_joints, 3), dtype=np.float32)
        hand_turn = opt.hands != "off" and (self.count - 1) % opt.hands_every == 0
        if pose is None:
            return out, self.tracker.target, hand_turn
        out[:POSE_POINTS] = pose
        if pose[0, 2] > 0:
            self.tracker.move_to(float(pose[0, 0]), float(pose[0, 1]))
        wrists_seen = pose[15, 2] > 0 or pose[16, 2] > 0
        if hand_turn and (opt.hands == "always" or wrists_seen) and (pose[list(UPPER_BODY), 2] > 0).any():
            self._place_hand_crop(pose)
            right, left = assign_hands(pose, self.models.hands(image, self.hand_roi))
            self.timer.add("hands", t)
            for hand, start in ((right, POSE_POINTS), (left, POSE_POINTS + HAND_POINTS)):
                if hand is not None:
                    out[start:start + HAND_POINTS] = hand
        return out, self.tracker.target, hand_turn

    def _place_crop(self, roi: Box | None) -> None:
        if _moved(self.roi, roi):
            self.roi = roi
            self.models.reset_pose()

    def _place_hand_crop(self, pose: np.ndarray) -> None:
        seen = pose[list(UPPER_BODY)]
        seen = seen[seen[:, 2] > 0, :2]
        (x0, y0), (x1, y1) = seen.min(axis=0), seen.max(axis=0)
        cx, cy, half = (x0 + x1) / 2, (y0 + y1) / 2, _HAND_CROP * max(x1 - x0, y1 - y0, 8.0)
        roi = Box(cx - half, cy - half, cx + half, cy + half).clip(self.size)
        if _moved(self.hand_roi, roi):
            self.hand_roi = roi
            self.models.reset_hands()


def _moved(old: Box | None, new: Box | None) -> bool:
    """A crop must be re-placed: it appears or goes, or an edge moved by _ROI_MOVE of its width."""
    if old is None or new is None:
        return (old is None) != (new is None)
    shift = max(abs(new.x0 - old.x0), abs(new.x1 - old.x1), abs(new.y0 - old.y0), abs(new.y1 - old.y1))
    return shift > _ROI_MOVE * max(old.width, 1.0)


def _detection_size(width: int, height: int, max_side: int) -> tuple[int, int, float]:
    scale = min(1.0, max_side / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale)), scale


def extract_video(path: str | Path, options: ExtractOptions = ExtractOptions(), *,
                  progress: bool = False) -> Extraction:
    """Landmarks of the followed person in every frame of `path` (module doc).

    Raises DataError naming the file when it is missing, empty, not a video or not decodable.
    """
    options.check()
    info = video_info(path)
    w, h, scale = _detection_size(info.width, info.height, options.max_side)
    n = info.num_frames
    landmarks = np.zeros((n, MEDIAPIPE75.num_joints, 3), dtype=np.float32)
    faces = np.zeros((n, 5), dtype=np.float32)
    processed = np.zeros(n, dtype=bool)
    hands_ran = np.zeros(n, dtype=bool)
    timer = _Timer()
    keep = lambda i: i % options.stride == 0 or i == n - 1  # noqa: E731
    last = -1
    with quiet_native_stderr() as stderr, MediaPipeModels(
            hands=options.hands != "off", faces=options.faces, min_visibility=options.min_visibility) as models:
        bar = _progress(n, Path(path).name, progress, stderr)
        person = _Person(models, (w, h), options, timer)
        t = timer.now()
        for i, image in iter_frames(path, size=(w, h), keep=keep):
            t = timer.add("decode", t)
            if i >= n:  # the decoder showed more frames than the packets said: keep the index's count
                break
            last = i
            bar.update(1)
            if image is not None:
                if options.mirrored:
                    image = np.ascontiguousarray(image[:, ::-1])
                points, face, hands_ran[i] = person.process(image)
                landmarks[i], faces[i] = _to_video_pixels(points, face, scale, w, options.mirrored)
                processed[i] = True
            t = timer.now()
        bar.close()
    count = min(n, last + 1)
    if count == 0:
        raise DataError(path, "no frame could be decoded")
    landmarks, faces, processed, hands_ran = landmarks[:count], faces[:count], processed[:count], hands_ran[:count]
    landmarks[:, :POSE_POINTS] = interpolate_between(landmarks[:, :POSE_POINTS], processed)
    if options.hands != "off":
        landmarks[:, POSE_POINTS:] = interpolate_between(landmarks[:, POSE_POINTS:], hands_ran)
    faces = _hold_faces(faces, processed)
    if not options.lower_body:
        landmarks[:, LOWER_BODY] = 0
    return Extraction(str(path), float(info.fps), (info.width, info.height), landmarks, faces, processed,
                      options, timer.seconds, timer.cpu)


def _to_video_pixels(points: np.ndarray, face: Box | None, scale: float, width: int,
                     mirrored: bool) -> tuple[np.ndarray, np.ndarray]:
    out = points.copy()
    seen = out[:, 2] > 0
    if mirrored:
        out[seen, 0] = width - out[seen, 0]
    out[seen, :2] /= scale
    box = np.zeros(5, dtype=np.float32)
    if face is not None:
        x0, x1 = (width - face.x1, width - face.x0) if mirrored else (face.x0, face.x1)
        box[:] = (x0 / scale, face.y0 / scale, x1 / scale, face.y1 / scale, face.score)
    return out, box


def _hold_faces(faces: np.ndarray, processed: np.ndarray) -> np.ndarray:
    """Frames between processed ones keep the face box of the processed frame before them."""
    out = faces.copy()
    last = np.zeros(5, dtype=np.float32)
    for t in range(len(out)):
        if processed[t]:
            last = out[t]
        else:
            out[t] = last
    return out


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def _progress(total: int, name: str, enabled: bool, stream=None):
    if not enabled:
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=total, desc=f"pose {name}", unit="frame", file=stream or sys.stderr, leave=False)
