"""The synthetic face track: per video, the 112x112 aligned face crop a face tracker would output.

Drawn from the same parameters as the body video (`body.Geometry` and its track): head pose
(yaw and pitch move the features; the roll is removed, as an aligner levels the eyes), blinks,
talking, the emotion cue (mouth corners, brows, a slight squint with a smile) and the hands and
forearms wherever the skeleton puts them, so gestures that touch the face occlude it.

What a tracker would report, frame by frame (`docs/faces.md`):
- the crop box: the head centre and size with a little smooth jitter, in source pixels;
- a face more than half covered by a hand is not found: runs of such frames up to `MAX_GAP_S`
  are bridged (drawn, `missing` 1), longer runs are black (`missing` 1, no box); `score` is
  the uncovered share of the face.

Subject-dependent appearance, from its own random stream (so the body video is unchanged):
eye colour and size, brow thickness, neutral brow height and slant, neutral mouth curve, mouth
width, jaw, hairline and fringe, beard, glasses; per video a lighting gain and colour cast.
The neutral brow and mouth shapes make the cue subject-dependent: a held-out subject's resting
face is no reliable sign of the emotion (the strengths are set in `CUE`; see
benchmarks/face_probe.py for how much the face alone tells).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from microgesture.data.formats.facetrack import FACE_SIZE, face_csv_path, face_video_path, write_face_csv
from microgesture.data.synth.body import J
from microgesture.data.synth.motions import smooth_noise
from microgesture.data.synth import render
from microgesture.data.synth.schedule import rng_for
from microgesture.errors import DataError

# Random-stream tags of this module (schedule.py uses 1-5).
FACE_LOOK, FACE_VIDEO = 16, 17

SHIFT = 4
_ONE = 1 << SHIFT
AA = cv2.LINE_AA
SIDE_PER_RY = 2.0     # crop side in head half-heights
CENTRE_FY = 0.15      # crop centre below the head centre (head half-heights)
MAX_GAP_S = 0.5       # the extractor's default bridging limit
COVERED = 0.5         # share of the face under a hand above which a detector misses it
EYE_COLOURS = ((70, 45, 25), (40, 28, 20), (60, 90, 140), (70, 110, 80), (110, 85, 55))


@dataclass(frozen=True)
class Cue:
    """How strongly the track's emotion parameters show (in head half-axes per unit)."""

    smile: float = 0.11        # mouth-corner lift per unit of smile
    brow: float = 0.08         # brow lift per unit of brow
    tilt: float = 0.09         # inner-brow lift per unit of brow_tilt (a worried slant)
    squint: float = 0.25       # eye closing per unit of positive smile


CUE = Cue()


@dataclass(frozen=True)
class FaceLook:
    """A subject's face: the parts the body video is too small to show."""

    eye_colour: tuple[int, int, int]
    eye_size: float
    eye_gap: float
    brow_width: float          # thickness (head half-height units)
    brow_base: float           # neutral brow height offset (units of `brow`)
    tilt_base: float           # neutral brow slant (units of `brow_tilt`)
    smile_base: float          # neutral mouth curve (units of `smile`)
    mouth_width: float
    lip_width: float
    jaw: float                 # lower-face width factor
    hairline: float
    fringe: float              # 0: none, else how far the fringe comes down
    part: float                # side of the parting, -1..1
    beard: bool
    glasses: tuple[int, int, int] | None
    nose_len: float


def make_face_look(seed: int, subject_id: int) -> FaceLook:
    rng = rng_for(seed, FACE_LOOK, subject_id)
    return FaceLook(
        eye_colour=EYE_COLOURS[int(rng.integers(len(EYE_COLOURS)))],
        eye_size=rng.uniform(0.85, 1.2),
        eye_gap=rng.uniform(0.34, 0.42),
        brow_width=rng.uniform(0.035, 0.075),
        brow_base=rng.normal(0.0, 0.5),
        tilt_base=rng.normal(0.0, 0.45),
        smile_base=rng.normal(0.0, 0.3),
        mouth_width=rng.uniform(0.28, 0.4),
        lip_width=rng.uniform(0.025, 0.05),
        jaw=rng.uniform(0.8, 1.0),
        hairline=rng.uniform(-0.55, -0.35),
        fringe=rng.uniform(0.1, 0.35) if rng.random() < 0.35 else 0.0,
        part=rng.uniform(-1, 1),
        beard=bool(rng.random() < 0.25),
        glasses=tuple(int(v) for v in rng.integers(0, 120, 3)) if rng.random() < 0.25 else None,
        nose_len=rng.uniform(0.22, 0.34),
    )


@dataclass
class FaceTrackData:
    """Per frame: crop centre [T, 2] and side [T] in source pixels, rotation [T], score, missing, drawn."""

    centre: np.ndarray
    side: np.ndarray
    angle: np.ndarray
    score: np.ndarray
    missing: np.ndarray
    drawn: np.ndarray

    def boxes(self) -> np.ndarray:
        half = self.side[:, None] / 2
        boxes = np.concatenate([self.centre - half, self.centre + half], axis=1)
        boxes[~self.drawn] = np.nan
        return boxes


def _p(a) -> np.ndarray:
    return np.round(np.asarray(a) * _ONE).astype(np.int32)


class _Crop:
    """Source pixels -> crop pixels for every frame: rotate by -angle about the crop centre, scale."""

    def __init__(self, centre: np.ndarray, side: np.ndarray, angle: np.ndarray):
        self.centre, self.k = centre, FACE_SIZE / side
        self.cos, self.sin = np.cos(-angle), np.sin(-angle)

    def __call__(self, pts: np.ndarray) -> np.ndarray:
        """pts [T, ..., 2] in source pixels -> [T, ..., 2] in crop pixels."""
        extra = (slice(None),) + (None,) * (pts.ndim - 2)
        d = pts - self.centre[extra]
        k, c, s = self.k[extra], self.cos[extra], self.sin[extra]
        x = (d[..., 0] * c - d[..., 1] * s) * k
        y = (d[..., 0] * s + d[..., 1] * c) * k
        return np.stack([x, y], -1) + (FACE_SIZE - 1) / 2


def _track_boxes(sv, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The crop box a smoothed tracker would give: head-centred, a little jitter in place and size."""
    geom, n, fps = sv.geometry, sv.num_frames, sv.fps
    ry = geom.head_ax[:, 1]
    ang = geom.head_ang
    down = np.stack([-np.sin(ang), np.cos(ang)], -1) * (CENTRE_FY * ry)[:, None]
    side = SIDE_PER_RY * ry * (1 + smooth_noise(rng, n, fps, 0.5, 0.03))
    jitter = np.stack([smooth_noise(rng, n, fps, 0.8, 0.02), smooth_noise(rng, n, fps, 0.8, 0.02)], -1)
    centre = geom.head_c + down + jitter * side[:, None]
    angle = ang + smooth_noise(rng, n, fps, 0.5, 0.02)
    return centre, side, angle


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(start, stop) of each run of True."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)))


def tracker_flags(covered: np.ndarray, fps: float) -> tuple[np.ndarray, np.ndarray]:
    """(missing, drawn) per frame from the frames where a detector would miss the face."""
    missing = covered.copy()
    drawn = np.ones(len(covered), dtype=bool)
    max_gap = int(round(MAX_GAP_S * fps))
    for start, stop in _runs(covered):
        at_edge = start == 0 or stop == len(covered)
        if stop - start > max_gap or at_edge:  # nothing on one side to bridge to
            drawn[start:stop] = False
    return missing, drawn


class FaceRenderer:
    """Draws one video's face track (see module doc)."""

    def __init__(self, sv, face: FaceLook, cue: Cue = CUE):
        self.sv, self.face, self.look, self.cue = sv, face, sv.look, cue
        rng = rng_for(sv.seed, FACE_VIDEO, sv.plan.video_id)
        self.centre, self.side, self.angle = _track_boxes(sv, rng)
        self.to_crop = _Crop(self.centre, self.side, self.angle)
        gain = rng.uniform(0.8, 1.15) * (1 + rng.normal(0, 0.05, 3))
        self.lut = np.clip(np.arange(256)[:, None] * gain[None, :], 0, 255).astype(np.uint8).reshape(1, 256, 3)
        self.backdrop = np.empty((FACE_SIZE, FACE_SIZE, 3), np.uint8)
        self.backdrop[:] = self.look.backdrop
        self.d = self._prepare()

    # -- geometry, vectorised over frames ----------------------------------------------------
    def _head_points(self, fx, fy) -> np.ndarray:
        """Head-frame points (multiples of the head half-axes, eyes level) -> crop pixels [T, 2]."""
        g = self.sv.geometry
        hc = self.to_crop(g.head_c)
        rel = g.head_ang - self.angle  # the head's roll left in the crop (the tracker's error)
        c, s = np.cos(rel), np.sin(rel)
        x, y = fx * g.head_ax[:, 0] * self.k, fy * g.head_ax[:, 1] * self.k
        return hc + np.stack([x * c - y * s, x * s + y * c], -1)

    @property
    def k(self) -> np.ndarray:
        return self.to_crop.k

    def _prepare(self) -> dict[str, np.ndarray]:
        g, tr, f, cue = self.sv.geometry, self.sv.geometry.track, self.face, self.cue
        yaw, pitch = tr["yaw"], tr["pitch"]
        hp = self._head_points
        smile = tr["smile"] + f.smile_base
        d: dict[str, np.ndarray] = {}
        d["torso"] = _p(self.to_crop(g.torso))
        d["shoulders"] = _p(self.to_crop(g.joints[:, [J["r_shoulder"], J["l_shoulder"]]]))
        d["neck"] = _p(np.stack([self.to_crop(g.joints[:, J["neck"]]), self.to_crop(g.neck_top)], 1))
        d["ears"] = _p(self.to_crop(g.joints[:, [J["r_ear"], J["l_ear"]]]))
        d["head_c"] = _p(hp(0.0, 0.0))
        d["head_ax"] = _p(g.head_ax * self.k[:, None])
        top = np.minimum(d["torso"][..., 1].min(1), d["shoulders"][..., 1].min(1) - d["head_ax"][:, 0])
        d["torso_seen"] = top < FACE_SIZE * _ONE  # the body reaches into the crop (it rarely does)
        d["rel_deg"] = np.degrees(g.head_ang - self.angle)
        d["hair_c"] = _p(hp(0.0, f.hairline + 0.15))
        d["fringe"] = _p(np.stack([hp(-0.9, f.hairline + 0.1), hp(0.9 * f.part, f.hairline + 0.1 + f.fringe),
                                   hp(0.9, f.hairline + 0.1)], 1))
        d["brim"] = _p(np.stack([hp(-1.15, -0.45), hp(1.15, -0.45)], 1))
        eyes, brows = [], []
        lift = 0.22 + cue.brow * (tr["brow"] + f.brow_base)
        tilt = cue.tilt * (tr["brow_tilt"] + f.tilt_base)
        for sx in (-1.0, 1.0):
            ex = sx * f.eye_gap + 0.22 * yaw
            ey = -0.1 - 0.15 * pitch
            eyes.append(hp(ex, ey))
            inner = hp(sx * 0.12 + 0.22 * yaw, ey - lift - tilt)
            outer = hp(sx * 0.62 + 0.22 * yaw, ey - lift + 0.5 * tilt)
            brows.append(np.stack([inner, outer], 1))
        d["eyes"] = _p(np.stack(eyes, 1))
        d["iris_shift"] = _p(np.stack([0.06 * yaw * g.head_ax[:, 0] * self.k, 0.0 * yaw], -1))
        d["brows"] = _p(np.stack(brows, 1))
        squint = np.clip(1 - cue.squint * np.maximum(smile, 0), 0.4, 1)
        d["eye_open"] = tr["eye_open"] * squint
        d["nose"] = _p(np.stack([hp(0.3 * yaw, -0.05), hp(0.3 * yaw + 0.02, -0.05 + f.nose_len * 1.2 - 0.4 * pitch)], 1))
        mx, my = 0.25 * yaw, 0.55 - 0.22 * pitch
        width = f.mouth_width * (1 - 0.35 * tr["press"]) * (1 - 0.35 * tr["cheek"]) * (1 + 0.08 * smile)
        curve = cue.smile * smile
        ts = np.linspace(-1, 1, 7)
        d["mouth"] = _p(np.stack([hp(mx + t * width, my - curve * t * t) for t in ts], 1))
        d["mouth_c"] = _p(hp(mx, my - 0.3 * curve))
        d["mouth_ax"] = _p(np.stack([width * g.head_ax[:, 0] * self.k * 0.85,
                                     tr["mouth_open"] * 0.16 * g.head_ax[:, 1] * self.k + 0.01], -1))
        d["mouth_open"], d["press"] = tr["mouth_open"], tr["press"]
        d["cheeks"] = _p(np.stack([hp(mx - 0.55, my - 0.2), hp(mx + 0.55, my - 0.2)], 1))
        d["cheek_r"] = _p(0.22 * g.head_ax[:, 0] * self.k * np.clip(tr["cheek"], 0, 1))
        d["jaw"] = _p(np.stack([hp(x, y) for x, y in self._jaw_outline()], 1))
        self._hand_points(d)
        return d

    def _jaw_outline(self) -> list[tuple[float, float]]:
        j = self.face.jaw
        return [(-1.0, 0.0), (-0.95, 0.1), (-0.85 * j, 0.6), (-0.5 * j, 0.92), (0.0, 1.0), (0.5 * j, 0.92),
                (0.85 * j, 0.6), (0.95, 0.1), (1.0, 0.0)]

    def _hand_points(self, d: dict[str, np.ndarray]) -> None:
        """The body video's own hand and forearm shapes (render.py), in crop pixels."""
        g = self.sv.geometry
        jt = g.joints
        body = render._prepare(g)
        for name in ("elbows", "wrists", "knuckles", "tips", "palms"):
            d[name] = _p(self.to_crop(body[name] / render._ONE))
        u = g.scale * self.k
        d["th_fore"] = np.maximum(2, np.round(0.28 * u)).astype(int)
        d["th_finger"] = np.maximum(2, np.round(0.09 * u)).astype(int)
        d["r_wrist"] = _p(np.maximum(1.2, 0.12 * u))
        # Is a hand or forearm anywhere near the crop? (most frames: no, and nothing is drawn)
        reach = (g.scale * (0.9 + self.sv.subject.hand) * self.k)[:, None, None]
        near = np.zeros((len(jt), 2), dtype=bool)
        for joint in ("wrist", "elbow"):
            p = self.to_crop(jt[:, [J[f"r_{joint}"], J[f"l_{joint}"]]])
            near |= ((p > -reach) & (p < FACE_SIZE + reach)).all(-1)
        d["hand_near"] = near & ~g.behind

    # -- drawing ---------------------------------------------------------------------------
    def frame(self, t: int) -> tuple[np.ndarray, float]:
        """The crop of frame t (uint8 RGB, before `light`) and the share of the face under a hand."""
        d, look = self.d, self.look
        img = self.backdrop.copy()
        if d["torso_seen"][t]:
            cv2.fillConvexPoly(img, d["torso"][t], look.shirt, AA, SHIFT)
            for k in range(2):
                cv2.circle(img, d["shoulders"][t][k], int(d["head_ax"][t][0] * 0.6), look.shirt, -1, AA, SHIFT)
        neck_th = max(2, int(round(d["head_ax"][t][0] / _ONE * 0.9)))
        cv2.line(img, d["neck"][t][0], d["neck"][t][1], look.skin_dark, neck_th, AA, SHIFT)
        self._head(img, t)
        covered = 0.0
        near = d["hand_near"][t]
        if near.any():
            covered = self._hands(img, t, near)
        return img, covered

    def light(self, frames: np.ndarray) -> np.ndarray:
        """The video's lighting (gain and colour cast) on frames [N, H, W, 3], in one pass."""
        n = len(frames)
        return cv2.LUT(frames.reshape(n * FACE_SIZE, FACE_SIZE, 3), self.lut).reshape(frames.shape)

    def _head(self, img: np.ndarray, t: int) -> None:
        d, look, f = self.d, self.look, self.face
        deg = float(d["rel_deg"][t])
        ax = d["head_ax"][t]
        ear_ax = (int(ax[0] * 0.25), int(ax[1] * 0.33))
        for ear in d["ears"][t]:
            cv2.ellipse(img, ear, ear_ax, deg, 0, 360, look.skin_dark, -1, AA, SHIFT)
        cv2.ellipse(img, d["head_c"][t], (int(ax[0]), int(ax[1])), deg, 180, 360, look.skin, -1, AA, SHIFT)
        cv2.fillPoly(img, [d["jaw"][t]], look.skin, AA, SHIFT)
        if f.beard:
            shade = tuple(int(v * 0.72) for v in look.skin)
            beard = np.concatenate([d["jaw"][t][2:-2], d["mouth"][t][::-1]])
            cv2.fillPoly(img, [beard], shade, AA, SHIFT)
        cover = look.hat if look.hat is not None else look.hair
        hair_ax = (int(ax[0] * 1.08), int(ax[1] * 0.78))
        cv2.ellipse(img, d["hair_c"][t], hair_ax, deg, 180, 360, cover, -1, AA, SHIFT)
        if look.hat is not None:
            cv2.line(img, d["brim"][t][0], d["brim"][t][1], look.hat, max(2, int(ax[1] / _ONE * 0.12)), AA, SHIFT)
        elif f.fringe > 0:
            cv2.fillConvexPoly(img, d["fringe"][t], look.hair, AA, SHIFT)
        if d["cheek_r"][t] > _ONE:
            blush = (min(255, look.skin[0] + 25), look.skin[1], look.skin[2])
            for c in d["cheeks"][t]:
                cv2.circle(img, c, int(d["cheek_r"][t]), blush, -1, AA, SHIFT)
        self._eyes(img, t, deg)
        brow_th = max(1, int(round(f.brow_width * ax[1] / _ONE)))
        for brow in d["brows"][t]:
            cv2.line(img, brow[0], brow[1], look.hair, brow_th, AA, SHIFT)
        cv2.line(img, d["nose"][t][0], d["nose"][t][1], look.skin_dark, max(1, brow_th // 2), AA, SHIFT)
        self._mouth(img, t, deg)

    def _eyes(self, img: np.ndarray, t: int, deg: float) -> None:
        d, f = self.d, self.face
        ax = d["head_ax"][t]
        w = int(ax[0] * 0.17 * f.eye_size)
        h_open = ax[1] * 0.085 * f.eye_size * float(d["eye_open"][t])
        iris = int(ax[1] * 0.07 * f.eye_size)
        for eye in d["eyes"][t]:
            if h_open > 0.25 * _ONE:
                cv2.ellipse(img, eye, (w, int(h_open)), deg, 0, 360, (238, 236, 232), -1, AA, SHIFT)
                c = eye + d["iris_shift"][t]
                cv2.circle(img, c, min(iris, int(h_open * 1.1)), f.eye_colour, -1, AA, SHIFT)
                cv2.circle(img, c, max(_ONE // 2, min(iris, int(h_open)) // 2), (15, 12, 12), -1, AA, SHIFT)
            else:
                cv2.ellipse(img, eye, (w, max(1, w // 5)), deg, 0, 180, (60, 40, 35), 1, AA, SHIFT)
            if f.glasses is not None:
                cv2.ellipse(img, eye, (int(w * 1.5), int(w * 1.1)), deg, 0, 360, f.glasses, 2, AA, SHIFT)
        if f.glasses is not None:
            a, b = d["eyes"][t]
            cv2.line(img, a + [int(w * 1.5), 0], b - [int(w * 1.5), 0], f.glasses, 2, AA, SHIFT)

    def _mouth(self, img: np.ndarray, t: int, deg: float) -> None:
        d, look, f = self.d, self.look, self.face
        ax = d["head_ax"][t]
        lip_th = max(1, int(round(f.lip_width * ax[1] / _ONE)))
        if d["mouth_open"][t] > 0.15 and d["press"][t] < 0.5:
            m_ax = d["mouth_ax"][t]
            cv2.ellipse(img, d["mouth_c"][t], (int(m_ax[0]), int(m_ax[1])), deg, 0, 360, (70, 20, 25), -1, AA, SHIFT)
            teeth = (int(m_ax[0] * 0.7), max(1, int(m_ax[1] * 0.3)))
            top = d["mouth_c"][t] - [0, int(m_ax[1] * 0.6)]
            cv2.ellipse(img, top, teeth, deg, 0, 360, (235, 230, 220), -1, AA, SHIFT)
        lips = (80, 35, 35) if d["press"][t] > 0.5 else look.lips
        cv2.polylines(img, [d["mouth"][t]], False, lips, lip_th, AA, SHIFT)

    def _hands(self, img: np.ndarray, t: int, near: np.ndarray) -> float:
        """Forearms and hands over the face; returns the share of the face they cover."""
        d, look = self.d, self.look
        face = np.zeros((FACE_SIZE, FACE_SIZE), np.uint8)
        cv2.ellipse(face, d["head_c"][t] + [0, int(d["head_ax"][t][1] * 0.2)],
                    (int(d["head_ax"][t][0] * 0.85), int(d["head_ax"][t][1] * 0.8)), 0, 0, 360, 1, -1, cv2.LINE_8, SHIFT)
        hands = np.zeros_like(face)
        for k in np.flatnonzero(near):
            self._hand(img, t, int(k), None)
            self._hand(hands, t, int(k), 1)
        area = int(face.sum())
        return float((face & hands).sum()) / area if area else 0.0

    def _hand(self, img: np.ndarray, t: int, k: int, mask_value: int | None) -> None:
        """One forearm and hand in colour, or as `mask_value` into a mask."""
        d, look = self.d, self.look
        sleeve, skin, line = look.sleeve, look.skin, AA
        if mask_value is not None:
            sleeve = skin = mask_value
            line = cv2.LINE_8
        wr = d["wrists"][t][k]
        cv2.line(img, d["elbows"][t][k], wr, sleeve, int(d["th_fore"][t]), line, SHIFT)
        cv2.circle(img, wr, int(d["r_wrist"][t]), skin, -1, line, SHIFT)
        cv2.fillConvexPoly(img, d["palms"][t][k], skin, line, SHIFT)
        for base, tip in zip(d["knuckles"][t][k], d["tips"][t][k]):
            cv2.line(img, base, tip, skin, int(d["th_finger"][t]), line, SHIFT)


def face_track(sv, cue: Cue = CUE) -> tuple[Iterator[np.ndarray], FaceTrackData]:
    """The crops of one synthetic video (an iterator over uint8 [112, 112, 3]) and the tracker's report.

    The report needs the occlusion of every frame, so every frame is drawn first (black where
    the tracker would have lost the face): about 37 KB a frame, 42 MB for 45 s of video.
    """
    renderer = FaceRenderer(sv, make_face_look(sv.seed, sv.subject.subject_id), cue)
    frames = np.empty((sv.num_frames, FACE_SIZE, FACE_SIZE, 3), np.uint8)
    covered = np.zeros(sv.num_frames)
    for t in range(sv.num_frames):
        frames[t], covered[t] = renderer.frame(t)
    missing, drawn = tracker_flags(covered > COVERED, sv.fps)
    frames = renderer.light(frames)
    frames[~drawn] = 0
    data = FaceTrackData(renderer.centre, renderer.side, renderer.angle,
                         np.where(drawn, np.round(1 - covered, 3), 0.0), missing, drawn)
    return iter(frames), data


def write_face_track(sv, video_path: Path) -> Path:
    """Write `<vid>_face.mp4` and `<vid>_face.csv` beside the video at `video_path`; returns the mp4."""
    from microgesture.data.video import write_video

    out = face_video_path(video_path)
    frames, data = face_track(sv)
    written = write_video(out, frames, sv.fps)
    if written != sv.num_frames:
        raise DataError(out, f"wrote {written} frames, expected {sv.num_frames}")
    write_face_csv(face_csv_path(out), data.boxes(), data.score, data.missing)
    return out
