"""Which person to analyse when a frame shows several, and following them over time.

Policy ("central"): among the faces found, the person whose face has the largest
`area x centrality`, centrality = 1 - (distance of the face centre from the image centre) /
(half the image diagonal), so a large face near the middle wins over a larger one at the edge.
Once chosen, the person is followed: at each new face detection the target is the face nearest
to the last known target position, within `FOLLOW_RADIUS` face widths. A target not seen for
`patience` detections in a row is dropped and the policy chooses again (a person who leaves and
comes back is found again by the same rule, but nothing proves it is the same person).

When more than one face is in view, the pose model runs on a crop around the target (`body_roi`),
so BlazePose, which follows one person, cannot drift to somebody else; with one face or none it
sees the whole frame.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

FOLLOW_RADIUS = 1.5  # face widths
# A body crop around a face of width w and height h: 3.5 w to each side, 0.6 h above the
# face's top, 8 h below it (a seated or standing upper body and arms).
ROI_SIDE, ROI_ABOVE, ROI_BELOW = 3.5, 0.6, 8.0


@dataclass(frozen=True)
class Box:
    """An axis-aligned box in pixels, (x0, y0) top-left, (x1, y1) bottom-right."""

    x0: float
    y0: float
    x1: float
    y1: float
    score: float = 1.0

    @property
    def width(self) -> float:
        return max(0.0, self.x1 - self.x0)

    @property
    def height(self) -> float:
        return max(0.0, self.y1 - self.y0)

    @property
    def center(self) -> tuple[float, float]:
        return 0.5 * (self.x0 + self.x1), 0.5 * (self.y0 + self.y1)

    @property
    def area(self) -> float:
        return self.width * self.height

    def clip(self, size: tuple[int, int]) -> "Box":
        w, h = size
        return Box(min(max(self.x0, 0.0), w), min(max(self.y0, 0.0), h), min(max(self.x1, 0.0), w),
                   min(max(self.y1, 0.0), h), self.score)

    def contains(self, x: float, y: float, margin: float = 0.0) -> bool:
        mx, my = margin * self.width, margin * self.height
        return self.x0 - mx <= x <= self.x1 + mx and self.y0 - my <= y <= self.y1 + my


def centrality(box: Box, size: tuple[int, int]) -> float:
    w, h = size
    cx, cy = box.center
    return max(0.0, 1.0 - math.hypot(cx - w / 2, cy - h / 2) / (0.5 * math.hypot(w, h)))


def choose_person(faces: Sequence[Box], size: tuple[int, int]) -> Box | None:
    """The policy's pick among `faces` (None when there is none)."""
    if not faces:
        return None
    return max(faces, key=lambda b: (b.area * centrality(b, size), b.score))


def follow(faces: Sequence[Box], previous: Box) -> Box | None:
    """The face nearest to `previous` within FOLLOW_RADIUS of its width, else None."""
    px, py = previous.center
    reach = FOLLOW_RADIUS * max(previous.width, 1.0)
    best, best_d = None, reach
    for face in faces:
        d = math.hypot(face.center[0] - px, face.center[1] - py)
        if d <= best_d:
            best, best_d = face, d
    return best


def body_roi(face: Box, size: tuple[int, int]) -> Box:
    """The region around a face where that person's upper body and arms are (clipped to the image)."""
    cx = face.center[0]
    roi = Box(cx - ROI_SIDE * face.width, face.y0 - ROI_ABOVE * face.height, cx + ROI_SIDE * face.width,
              face.y0 + ROI_BELOW * face.height)
    return roi.clip(size)


class PersonTracker:
    """Keeps the target face across detections (see module doc)."""

    def __init__(self, size: tuple[int, int], patience: int = 3):
        self.size = size
        self.patience = patience
        self.target: Box | None = None
        self.crowded = False  # more than one face at the last detection
        self._missed = 0

    def update(self, faces: Sequence[Box]) -> Box | None:
        """Take one detection's faces; returns the target (None: nobody to follow)."""
        self.crowded = len(faces) > 1
        found = follow(faces, self.target) if self.target is not None else None
        if found is not None:
            self.target, self._missed = found, 0
        elif self.target is not None and self._missed + 1 < self.patience:
            self._missed += 1
        else:
            self.target, self._missed = choose_person(faces, self.size), 0
        return self.target

    def move_to(self, x: float, y: float) -> None:
        """Re-centre the target's face on the pose's nose, so a moving person stays followed."""
        if self.target is None:
            return
        dx, dy = x - self.target.center[0], y - self.target.center[1]
        t = self.target
        self.target = Box(t.x0 + dx, t.y0 + dy, t.x1 + dx, t.y1 + dy, t.score)

    def roi(self) -> Box | None:
        """The crop to run the pose model on: around the target when others are in view, else None."""
        if self.target is None or not self.crowded:
            return None
        return body_roi(self.target, self.size)
