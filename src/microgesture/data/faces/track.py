"""Following the subject's face through a video, online, with the policies of docs/faces.md.

`SubjectTracker` is fed every frame in order: `push(i, frame, detections)` with the detector's
faces on detection frames (every `stride`-th frame and the last) and None in between. It
returns the final crop box of each frame once nothing later can change it (`pop_ready`), so a
caller needs to keep only a few frames (`lookahead`) in memory.

Policies:
- faces whose box side is below `min_face` pixels are ignored (too small to read);
- a track starts at the largest face, its area discounted by how far its centre is from the
  frame centre (area x (1 - 0.5 d), d = distance / half the frame diagonal); from then on the
  subject is the face that overlaps the track most (IoU >= `match_iou`, or centre within 0.6
  face sides) where the track is expected (the template tracker's position, else the last
  detection moved on at the speed between the last two); other faces are ignored; a detection
  frame where the subject is not among the faces is a failed detection;
- between two detections of the subject, the box follows a template tracker (normalised
  cross-correlation of the face at the earlier detection, on grey pixels at about 32 pixels per
  face side), corrected linearly so that it lands on the later detection; where the tracker
  loses the face, the box is interpolated linearly;
- two detections of the subject at most `max_gap` frames apart are joined; if a detection
  failed in between, the frames between them are `missing` (crop drawn, box bridged); frames
  not between two such detections (a longer gap, before the first or after the last
  detection) get no box: black and `missing`. A track unseen for more than `max_gap` frames
  is lost, and the next face starts a new one (reported: the subject may have changed);
- the crop box is the face box's centre, its side times `margin`, and the eye line's angle
  (0 when the detector gives no eyes), each averaged over +-`smooth` frames of the same track
  (triangular weights); score: the detection's on detection frames, the lower of the two
  detections' scores in between, 0 without a box.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from microgesture.data.faces.detect import Detection

TEMPLATE = 32          # template side in pixels
MIN_NCC = 0.3          # below this the template tracker has lost the face
MAX_ANGLE = np.pi / 4  # eye-line angles beyond +-45 degrees are taken for detector mistakes


@dataclass(frozen=True)
class TrackSettings:
    stride: int = 5
    max_gap: int = 12        # frames
    smooth: int = 2          # frames each side
    margin: float = 1.3
    min_face: float = 20.0   # pixels
    match_iou: float = 0.2
    template: bool = True

    @property
    def lookahead(self) -> int:
        """Frames after t that must be pushed before frame t is final."""
        return self.max_gap + self.smooth + 1


@dataclass
class FrameBox:
    """The final crop of one frame: centre (x, y), side and angle (radians) in source pixels."""

    index: int
    centre: np.ndarray | None
    side: float
    angle: float
    score: float
    missing: bool

    @property
    def has_box(self) -> bool:
        return self.centre is not None

    def box(self) -> np.ndarray:
        """(x0, y0, x1, y1) of the square before rotation; NaN without a box."""
        if self.centre is None:
            return np.full(4, np.nan)
        h = self.side / 2
        return np.array([self.centre[0] - h, self.centre[1] - h, self.centre[0] + h, self.centre[1] + h])


@dataclass
class TrackReport:
    """Frames each policy acted on (for the warnings)."""

    several: list[int] = field(default_factory=list)
    tiny: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    bridged_failures: list[int] = field(default_factory=list)
    restarts: list[int] = field(default_factory=list)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def start_choice(faces: list[Detection], frame_size: tuple[int, int]) -> Detection:
    """The face a new track starts at: the largest, discounted by distance from the frame centre."""
    w, h = frame_size
    centre, half_diag = np.array([w / 2, h / 2]), np.hypot(w, h) / 2

    def weight(d: Detection) -> float:
        area = (d.box[2] - d.box[0]) * (d.box[3] - d.box[1])
        return area * (1 - 0.5 * min(1.0, np.linalg.norm(d.centre - centre) / half_diag))

    return max(faces, key=weight)


def eye_angle(d: Detection) -> float:
    if d.eyes is None:
        return 0.0
    dx, dy = d.eyes[1] - d.eyes[0]
    angle = float(np.arctan2(dy, dx))
    return angle if abs(angle) <= MAX_ANGLE and dx > 0 else 0.0


class TemplateTracker:
    """Follows a face patch from frame to frame by normalised cross-correlation (grey, ~32 px per side)."""

    def __init__(self) -> None:
        self.template: np.ndarray | None = None
        self.centre = np.zeros(2)
        self.side = 1.0

    def reset(self, frame: np.ndarray, centre: np.ndarray, side: float) -> None:
        self.centre, self.side = np.asarray(centre, dtype=np.float64), float(side)
        patch = self._patch(frame, self.centre, self.side / 2, TEMPLATE)
        self.template = patch if patch is not None and patch.std() > 2 else None

    def step(self, frame: np.ndarray) -> np.ndarray | None:
        """The face centre in this frame, or None (and the tracker stops) when it is lost."""
        if self.template is None:
            return None
        search = self._patch(frame, self.centre, self.side, 2 * TEMPLATE)
        if search is None:
            self.template = None
            return None
        scores = cv2.matchTemplate(search, self.template, cv2.TM_CCOEFF_NORMED)
        _, best, _, (x, y) = cv2.minMaxLoc(scores)
        if best < MIN_NCC:
            self.template = None
            return None
        px = self.side / TEMPLATE  # source pixels per patch pixel
        self.centre = self.centre + (np.array([x, y]) - TEMPLATE / 2) * px
        return self.centre.copy()

    @staticmethod
    def _patch(frame: np.ndarray, centre: np.ndarray, half: float, size: int) -> np.ndarray | None:
        """Grey square of side 2 * half around centre, resized to size x size; None if mostly outside."""
        h, w = frame.shape[:2]
        x0, y0 = int(round(centre[0] - half)), int(round(centre[1] - half))
        x1, y1 = int(round(centre[0] + half)), int(round(centre[1] + half))
        if x1 - x0 < 4 or x0 < -half or y0 < -half or x1 > w + half or y1 > h + half:
            return None
        cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
        if cx1 - cx0 < 4 or cy1 - cy0 < 4:
            return None
        region = frame[cy0:cy1, cx0:cx1]
        region = cv2.copyMakeBorder(region, cy0 - y0, y1 - cy1, cx0 - x0, x1 - cx1, cv2.BORDER_REPLICATE)
        interp = cv2.INTER_AREA if x1 - x0 > size else cv2.INTER_LINEAR
        return cv2.cvtColor(cv2.resize(region, (size, size), interpolation=interp), cv2.COLOR_RGB2GRAY)


class SubjectTracker:
    """The online tracker (see module doc) for a video of `num_frames` frames of `frame_size` (w, h)."""

    def __init__(self, num_frames: int, frame_size: tuple[int, int], settings: TrackSettings = TrackSettings()):
        n = int(num_frames)
        self.n, self.size, self.s = n, frame_size, settings
        self.det_centre, self.det_side = np.zeros((n, 2)), np.zeros(n)
        self.det_angle, self.det_score = np.zeros(n), np.zeros(n)
        self.tr_centre, self.tr_ok = np.zeros((n, 2)), np.zeros(n, dtype=bool)
        self.centre, self.side, self.angle = np.zeros((n, 2)), np.zeros(n), np.zeros(n)
        self.score, self.has, self.missing = np.zeros(n), np.zeros(n, dtype=bool), np.ones(n, dtype=bool)
        self.failed = np.zeros(n, dtype=bool)
        self.seg = np.full(n, -1)
        self.last: int | None = None   # the track's last detection
        self.prev: int | None = None   # the one before it, in the same track
        self.segments = 0
        self.pushed = 0
        self.done = 0
        self.tracker = TemplateTracker() if settings.template else None
        self.report = TrackReport()

    # -- feeding ---------------------------------------------------------------------------
    def is_detection_frame(self, i: int) -> bool:
        return i % self.s.stride == 0 or i == self.n - 1

    def active(self, i: int) -> bool:
        return self.last is not None and i - self.last <= self.s.max_gap

    def push(self, i: int, frame: np.ndarray | None, faces: list[Detection] | None) -> None:
        """Frame i (in order); `faces` on detection frames, None in between; `frame` for the tracker."""
        if i != self.pushed or i >= self.n:
            raise ValueError(f"frames must be pushed in order 0..{self.n - 1}; got {i} after {self.pushed - 1}")
        self.pushed += 1
        if self.tracker is not None and frame is not None and self.active(i):
            centre = self.tracker.step(frame)
            if centre is not None:
                self.tr_centre[i], self.tr_ok[i] = centre, True
        if faces is not None:
            self._detection(i, frame, faces)

    def _detection(self, i: int, frame: np.ndarray | None, faces: list[Detection]) -> None:
        big = [d for d in faces if d.side >= self.s.min_face]
        if len(big) < len(faces):
            self.report.tiny.append(i)
        if len(big) > 1:
            self.report.several.append(i)
        subject = self._associate(i, big)
        if subject is None:
            self.failed[i] = True
            self.report.failed.append(i)
            return
        self.det_centre[i], self.det_side[i] = subject.centre, subject.side
        self.det_angle[i], self.det_score[i] = eye_angle(subject), subject.score
        if self.active(i):
            self._join(self.last, i)
            self.prev = self.last
        else:
            if self.segments:
                self.report.restarts.append(i)
            self.segments += 1
            self._set(i, subject.centre, subject.side, self.det_angle[i], subject.score, False, self.segments - 1)
            self.prev = None
        self.last = i
        if self.tracker is not None and frame is not None:
            self.tracker.reset(frame, subject.centre, subject.side)

    def _associate(self, i: int, faces: list[Detection]) -> Detection | None:
        if not faces:
            return None
        if not self.active(i):
            return start_choice(faces, self.size)
        side = self.det_side[self.last]
        centre = self.tr_centre[i] if self.tr_ok[i] else self._predicted(i)
        ref = np.concatenate([centre - side / 2, centre + side / 2])
        best = max(faces, key=lambda d: iou(d.box, ref))
        near = np.linalg.norm(best.centre - centre) <= 0.6 * side
        return best if iou(best.box, ref) >= self.s.match_iou or near else None

    def _predicted(self, i: int) -> np.ndarray:
        """Where the face should be at frame i, moving on as between the track's last two detections."""
        a, b = self.prev, self.last
        if a is None:
            return self.det_centre[b]
        return self.det_centre[b] + (self.det_centre[b] - self.det_centre[a]) * (i - b) / (b - a)

    def _set(self, u, centre, side, angle, score, missing, seg) -> None:
        self.centre[u], self.side[u], self.angle[u] = centre, side, angle
        self.score[u], self.missing[u], self.has[u], self.seg[u] = score, missing, True, seg

    def _join(self, a: int, c: int) -> None:
        """Boxes for frames a+1..c between two detections of the subject."""
        span = np.arange(a + 1, c + 1)
        w = (span - a) / (c - a)
        tracked = self.tr_ok[a + 1:c + 1].all()
        if tracked:  # the tracker's path, bent to land on the later detection
            centres = self.tr_centre[span] + w[:, None] * (self.det_centre[c] - self.tr_centre[c])
        else:
            centres = (1 - w[:, None]) * self.det_centre[a] + w[:, None] * self.det_centre[c]
        sides = (1 - w) * self.det_side[a] + w * self.det_side[c]
        angles = (1 - w) * self.det_angle[a] + w * self.det_angle[c]
        bridged = self.failed[a + 1:c].any()
        if bridged:
            self.report.bridged_failures += [int(f) for f in np.flatnonzero(self.failed[a + 1:c]) + a + 1]
        score = min(self.det_score[a], self.det_score[c])
        for k, u in enumerate(span[:-1]):
            self._set(u, centres[k], sides[k], angles[k], score, bridged, self.seg[a])
        self._set(c, self.det_centre[c], self.det_side[c], self.det_angle[c], self.det_score[c], False, self.seg[a])

    # -- output ----------------------------------------------------------------------------
    def settled(self) -> int:
        """Frames before this index have their unsmoothed box for good."""
        i = self.pushed - 1
        if self.last is not None and i - self.last < self.s.max_gap and self.pushed < self.n:
            return self.last + 1
        return self.pushed

    def pop_ready(self, final: bool = False) -> list[FrameBox]:
        """The frames that are final now (all remaining ones when `final`), in order."""
        stop = self.pushed if final else max(self.done, self.settled() - self.s.smooth)
        out = [self._final(t) for t in range(self.done, stop)]
        self.done = stop
        return out

    def _final(self, t: int) -> FrameBox:
        if not self.has[t]:
            return FrameBox(t, None, 0.0, 0.0, 0.0, True)
        r = self.s.smooth
        lo, hi = max(0, t - r), min(self.pushed, t + r + 1)
        idx = np.arange(lo, hi)
        keep = self.has[lo:hi] & (self.seg[lo:hi] == self.seg[t])
        wts = (r + 1 - np.abs(idx - t))[keep].astype(np.float64)
        idx = idx[keep]

        def avg(values: np.ndarray) -> np.ndarray:
            return np.tensordot(wts, values[idx], axes=(0, 0)) / wts.sum()

        return FrameBox(t, avg(self.centre), float(avg(self.side)) * self.s.margin, float(avg(self.angle)),
                        float(self.score[t]), bool(self.missing[t]))
