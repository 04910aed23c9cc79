"""Idle motion and the 32 micro-gesture motion programs, one per iMiGUE class.

A program edits a slice of a track (see `body.py`) in place. It sees the values already there
(rest pose plus idle motion) and moves them towards its own targets under an envelope that
ramps in, holds and ramps out, so an instance starts and ends in the idle pose and the label
spans the whole movement. Targets carry small per-instance jitter; frequencies scale with the
subject's tempo. Single-hand programs use `side` (the subject's dominant hand, sometimes the
other); targets are side-local, so a left-handed subject mirrors them.

Rough body-unit landmarks (neck at 0, y down): head top -1.5, forehead -1.2, eyes -0.97,
nose -0.78, mouth -0.57, chin -0.35, shoulders +0.15 at lateral 1, table top +2.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from microgesture.data.synth.body import OTHER, SIDES, Subject

PI = np.pi
UP_IN = -2.2     # side-local hand angles: pointing up and inwards
UP = -PI / 2
DOWN = PI / 2
IN = PI


def smooth_noise(rng: np.random.Generator, n: int, fps: float, hz: float, amp: float) -> np.ndarray:
    """Gaussian-filtered white noise with about `hz` bandwidth and `amp` standard deviation."""
    sigma = max(fps / (2 * PI * hz), 0.5)
    half = int(3 * sigma) + 1
    kernel = np.exp(-0.5 * (np.arange(-half, half + 1) / sigma) ** 2)
    noise = rng.standard_normal(n + 2 * half)
    out = np.convolve(noise, kernel / np.sqrt((kernel**2).sum()), mode="valid")
    return amp * out[:n]


@dataclass
class Move:
    """One instance being written: the track slice, its envelope and helpers."""

    seg: dict[str, np.ndarray]
    subject: Subject
    rng: np.random.Generator
    fps: float
    side: str

    def __post_init__(self) -> None:
        self.n = len(self.seg["tx"])
        self.t = np.arange(self.n) / self.fps
        ramp = int(min(self.n // 3, max(5, round(0.45 * self.fps / self.subject.tempo))))
        x = np.clip(np.minimum(np.arange(self.n) + 1, self.n - np.arange(self.n)) / ramp, 0, 1)
        self.env = x * x * (3 - 2 * x)

    @property
    def other(self) -> str:
        return OTHER[self.side]

    def jit(self, scale: float = 0.06) -> float:
        return float(self.rng.normal(0.0, scale))

    def osc(self, hz: float, phase: float | None = None) -> np.ndarray:
        hz = hz * self.subject.tempo * self.rng.uniform(0.85, 1.15)
        phase = self.rng.uniform(0, 2 * PI) if phase is None else phase
        return np.sin(2 * PI * hz * self.t + phase)

    def blend(self, name: str, value) -> None:
        self.seg[name] += self.env * (value - self.seg[name])

    def add(self, name: str, delta) -> None:
        self.seg[name] += self.env * delta

    def reach(self, side: str, lat, vert, hang=None, spread=None, curl=None, point=0.0,
              attach=0.0, eup=0.0, behind=0.0) -> None:
        """Move the wrist of `side` to (lat, vert); hand shape values are optional."""
        for name, value in (("lat", lat), ("vert", vert), ("hang", hang), ("spread", spread),
                            ("curl", curl), ("point", point), ("attach", attach), ("eup", eup)):
            if value is not None:
                self.blend(f"{name}_{side}", value)
        if behind:
            self.seg[f"behind_{side}"][:] = self.env > 0.3

    def touch(self, side: str, lat, vert, hang, curl=0.3, **kw) -> None:
        """Place the middle fingertip of `side` at (lat, vert), the hand pointing at `hang`."""
        length = self.subject.hand * (0.52 + 0.55 * (1 - 0.7 * np.asarray(curl)))
        self.reach(side, lat - np.cos(hang) * length, vert - np.sin(hang) * length, hang=hang,
                   curl=curl, **kw)


def idle(track: dict[str, np.ndarray], subject: Subject, rng: np.random.Generator, fps: float,
         emotion: int) -> None:
    """Breathing, sway, glances, blinks, talking and the emotion's facial cue, over a whole track."""
    n = len(track["tx"])
    t = np.arange(n) / fps
    breath = 0.02 * np.sin(2 * PI * rng.uniform(0.2, 0.3) * t + rng.uniform(0, 2 * PI))
    for s in SIDES:
        track[f"shrug_{s}"] += breath
        track[f"lat_{s}"] += smooth_noise(rng, n, fps, 0.3, 0.04)
        track[f"vert_{s}"] += smooth_noise(rng, n, fps, 0.3, 0.03)
        track[f"hang_{s}"] += smooth_noise(rng, n, fps, 0.3, 0.12)
        track[f"curl_{s}"] += smooth_noise(rng, n, fps, 0.3, 0.08)
    track["chest"] += 0.5 * breath
    track["tx"] += smooth_noise(rng, n, fps, 0.25, 0.05)
    track["ty"] += smooth_noise(rng, n, fps, 0.25, 0.02)
    track["lean"] += smooth_noise(rng, n, fps, 0.2, 0.015)
    track["hx"] += smooth_noise(rng, n, fps, 0.3, 0.03)
    track["roll"] += smooth_noise(rng, n, fps, 0.3, 0.04)
    track["yaw"] += smooth_noise(rng, n, fps, 0.25, 0.25)
    track["pitch"] += smooth_noise(rng, n, fps, 0.3, 0.06)
    # Talking in bursts (a press conference), blinking every few seconds.
    talking = smooth_noise(rng, n, fps, 0.15, 1.0) > 0.2
    syllables = 0.5 + 0.5 * np.sin(2 * PI * 4.0 * t + smooth_noise(rng, n, fps, 1.0, 2.0))
    track["mouth_open"] += talking * 0.45 * syllables
    frame = int(rng.integers(0, int(3 * fps)))
    while frame < n:
        track["eye_open"][frame:frame + 3] = 0.1
        frame += int(rng.uniform(2.0, 6.0) * fps)
    # Emotion: mouth corners and brows, subject-dependent strength, plus noise; lose slumps.
    sign = 1.0 if emotion == 1 else -1.0
    track["smile"] += sign * 0.35 * subject.expressive + smooth_noise(rng, n, fps, 0.2, 0.15)
    track["brow_tilt"] += (0.45 * subject.expressive if emotion == 0 else 0.0) + smooth_noise(rng, n, fps, 0.2, 0.15)
    track["brow"] += sign * 0.1 * subject.expressive
    if emotion == 0:
        track["pitch"] -= 0.08 * subject.expressive
        track["ty"] += 0.03


# ---- the 32 programs -------------------------------------------------------------------------
def turtle_neck(m: Move) -> None:
    m.add("hy", 0.3 + m.jit(0.03))
    m.add("pitch", -0.2)
    for s in SIDES:
        m.add(f"shrug_{s}", 0.18 + m.jit(0.02))


def deep_breath(m: Move) -> None:
    m.blend("cheek", 1.0)
    m.blend("mouth_open", 0.0)
    m.blend("press", 0.3)
    m.add("chest", 0.05)
    m.add("pitch", 0.1)
    for s in SIDES:
        m.add(f"shrug_{s}", 0.06)


def touching_hat(m: Move) -> None:
    m.touch(m.side, 0.2 + m.jit(), -1.62 + m.jit(0.03), UP_IN + 0.3, curl=0.55, spread=0.0,
            attach=1.0)
    m.add(f"lat_{m.side}", 0.07 * m.osc(1.2))


def touching_head(m: Move) -> None:
    m.touch(m.side, 0.45 + m.jit(), -1.45 + m.jit(0.04), -2.0, curl=0.5, spread=0.4, attach=1.0)
    m.add(f"vert_{m.side}", 0.05 * m.osc(5.0))
    m.add(f"curl_{m.side}", 0.25 * m.osc(5.0))


def touching_forehead(m: Move) -> None:
    m.touch(m.side, 0.0 + m.jit(0.04), -1.22 + m.jit(0.03), -2.6, curl=0.2, spread=0.1, attach=1.0)
    m.add(f"lat_{m.side}", 0.12 * m.osc(2.5))


def covering_face(m: Move) -> None:
    for s in SIDES:
        m.touch(s, 0.12, -1.05 + m.jit(0.04), -1.9, curl=0.05, spread=0.4, attach=1.0)
    m.add("pitch", -0.12)
    m.blend("eye_open", 0.0)


def rubbing_eyes(m: Move) -> None:
    m.touch(m.side, 0.2, -0.97, -2.4, curl=0.8, attach=1.0)
    m.add(f"lat_{m.side}", 0.05 * m.osc(3.0, 0.0))
    m.add(f"vert_{m.side}", 0.05 * m.osc(3.0, PI / 2))
    m.blend("eye_open", 0.0)


_FACE_SPOTS = ((0.0, -0.78), (0.28, -0.72), (0.22, -0.55), (0.4, -1.05))  # nose, cheek, mouth corner, temple


def facial_parts(m: Move) -> None:
    lat, vert = _FACE_SPOTS[int(m.rng.integers(len(_FACE_SPOTS)))]
    m.touch(m.side, lat + m.jit(0.03), vert + m.jit(0.03), -2.3, curl=0.8, point=1.0, attach=1.0)
    m.add(f"vert_{m.side}", 0.03 * m.osc(1.5))


def touching_ears(m: Move) -> None:
    m.touch(m.side, 0.5, -0.92 + m.jit(0.03), -1.75, curl=0.4, attach=1.0)
    m.add(f"vert_{m.side}", 0.04 * m.osc(1.5))


def biting_nails(m: Move) -> None:
    m.touch(m.side, 0.02, -0.58, -2.2, curl=0.6, point=0.5, attach=1.0)
    m.add(f"lat_{m.side}", 0.025 * m.osc(7.0))
    m.blend("mouth_open", 0.5)
    m.add("pitch", -0.1)


def touching_jaw(m: Move) -> None:
    m.touch(m.side, 0.12 + m.jit(0.03), -0.38, -2.0, curl=0.85, attach=1.0)
    m.add(f"vert_{m.side}", 0.03 * m.osc(0.6))
    m.add("roll", SIDE_ROLL[m.side] * 0.08)


def touching_neck(m: Move) -> None:
    m.touch(m.side, 0.32, -0.25 + m.jit(0.03), -1.9, curl=0.3, attach=0.5)
    m.add(f"vert_{m.side}", 0.05 * m.osc(4.5))
    m.add("roll", -SIDE_ROLL[m.side] * 0.1)
    m.add("pitch", 0.15)


def adjusting_hair(m: Move) -> None:
    stroke = 0.5 - 0.5 * np.cos(2 * PI * 0.8 * m.subject.tempo * m.t)
    m.touch(m.side, 0.55 + 0.2 * stroke, -1.35 + 0.55 * stroke, -1.8, curl=0.4, spread=0.3, attach=1.0)
    m.add("roll", SIDE_ROLL[m.side] * 0.1)


def adjusting_collar(m: Move) -> None:
    if m.rng.random() < 0.6:  # collar with both hands
        for s in SIDES:
            m.touch(s, 0.3, 0.15, UP_IN, curl=0.7)
            m.add(f"vert_{s}", 0.06 * m.osc(1.2, 0.0))
    else:  # tie: one hand strokes down the chest
        stroke = 0.5 - 0.5 * np.cos(2 * PI * 0.9 * m.subject.tempo * m.t)
        m.touch(m.side, 0.02, 0.3 + 0.7 * stroke, DOWN + 0.3, curl=0.7)
    m.add("pitch", 0.1)


def suprasternal_notch(m: Move) -> None:
    m.touch(m.side, -0.1, 0.45 + m.jit(0.04), IN - 0.2, curl=0.1, spread=0.2)


def scratching_back(m: Move) -> None:
    m.reach(m.side, 0.85, -0.25, hang=DOWN, curl=0.5, eup=1.0, behind=1.0)
    m.add(f"vert_{m.side}", 0.07 * m.osc(4.0))
    m.add("roll", -SIDE_ROLL[m.side] * 0.08)


def folding_arms(m: Move) -> None:
    for k, s in enumerate((m.side, m.other)):
        m.reach(s, -0.75 + m.jit(0.04), 1.0 + 0.08 * k, hang=IN - 0.2, curl=0.5)
    m.add("chest", 0.03)


def dusting_off(m: Move) -> None:
    m.reach(m.side, 0.45 + m.jit(), 0.9 + m.jit(), hang=2.6, spread=0.2, curl=0.1)
    m.add(f"vert_{m.side}", 0.25 * m.osc(2.5, 0.0))
    m.add(f"lat_{m.side}", 0.08 * m.osc(2.5, 1.0))


def arms_behind(m: Move) -> None:
    for s in SIDES:
        m.reach(s, 0.55, 1.9, hang=DOWN, behind=1.0)
    m.add("chest", 0.06)
    for s in SIDES:
        m.add(f"shrug_{s}", -0.04)


def moving_torso(m: Move) -> None:
    if m.rng.random() < 0.5:
        m.add("lean", 0.18 * m.osc(0.8))
    else:
        m.add("lean", m.rng.choice([-1, 1]) * 0.18)
    m.add("tx", 0.12 * m.osc(0.6))
    m.add("ty", 0.12 + m.jit(0.03))


def sitting_straight(m: Move) -> None:
    m.add("ty", -0.18)
    m.add("chest", 0.06)
    m.add("pitch", 0.1)
    for s in SIDES:
        m.add(f"shrug_{s}", -0.05)
        m.reach(s, 0.3, 1.95)


def scratching_arms(m: Move) -> None:
    if m.rng.random() < 0.6:  # upper arm
        m.reach(m.side, -1.05, 0.75 + m.jit(), hang=1.9, curl=0.6)
    else:  # forearm resting on the table
        m.reach(m.side, -0.6, 1.7, hang=2.2, curl=0.6)
    m.add(f"vert_{m.side}", 0.08 * m.osc(4.0))


def rubbing_hands(m: Move) -> None:
    rub = m.osc(2.0) if m.rng.random() < 0.65 else 0.0
    for s, sign in ((m.side, 1.0), (m.other, -1.0)):
        m.reach(s, 0.1, 1.85, hang=2.2, spread=0.1, curl=0.35)
        m.add(f"vert_{s}", 0.07 * sign * rub)


def crossing_fingers(m: Move) -> None:
    for s, dv in ((m.side, 0.0), (m.other, 0.04)):
        m.reach(s, -0.03, 1.65 + dv, hang=IN - 0.35, spread=0.7, curl=0.45)
    m.add(f"spread_{m.side}", 0.1 * m.osc(1.0))


def minaret(m: Move) -> None:
    for s in SIDES:
        m.touch(s, 0.0, 0.8 + m.jit(0.04), -2.0, curl=0.0, spread=0.5)


def manipulating_objects(m: Move) -> None:
    m.blend("obj", 1.0)
    m.reach(m.side, 0.4, 1.6, hang=2.0, curl=0.5)
    m.add(f"hang_{m.side}", 0.6 * m.osc(1.5))
    m.add(f"lat_{m.side}", 0.08 * m.osc(1.0))
    m.add(f"curl_{m.side}", 0.25 * m.osc(2.5))
    m.reach(m.other, 0.3, 1.75, hang=2.3, curl=0.4)


def holding_back_arms(m: Move) -> None:
    m.add("chest", 0.08)
    m.add("ty", -0.05)
    m.add("pitch", 0.1)
    for s in SIDES:
        m.add(f"shrug_{s}", -0.06)
        m.reach(s, 1.25, 2.05, hang=DOWN + 0.3, curl=0.8)


def head_up(m: Move) -> None:
    m.add("pitch", 1.0 + m.jit(0.1))
    m.add("hy", -0.12)
    m.add("brow", 0.3)


def pressing_lips(m: Move) -> None:
    m.blend("press", 1.0)
    m.blend("mouth_open", 0.0)
    m.add("smile", -0.2)
    m.add("pitch", 0.04)


def arms_akimbo(m: Move) -> None:
    for s in SIDES:
        m.reach(s, 0.9, 1.75, hang=2.6, curl=0.2)
    m.add("chest", 0.05)


def shaking_shoulders(m: Move) -> None:
    hz = 2.8
    if m.rng.random() < 0.6:
        shake = np.abs(m.osc(hz))
        m.add("shrug_r", 0.15 * shake)
        m.add("shrug_l", 0.15 * shake)
    else:
        wave = m.osc(hz / 2)
        m.add("shrug_r", 0.13 * wave)
        m.add("shrug_l", -0.13 * wave)
    m.add("ty", 0.03 * m.osc(hz))
    m.blend("mouth_open", 0.4)
    m.add("smile", 0.3)


def illustrative(m: Move) -> None:
    sides = (m.side,) if m.rng.random() < 0.5 else SIDES
    for s in sides:
        lat = m.rng.uniform(0.4, 0.9) + smooth_noise(m.rng, m.n, m.fps, 0.6, 0.3)
        vert = m.rng.uniform(0.9, 1.4) + smooth_noise(m.rng, m.n, m.fps, 0.6, 0.25) + 0.15 * m.osc(1.8)
        m.reach(s, lat, vert, hang=0.6 + 0.5 * m.osc(0.7), spread=0.7, curl=0.1)
    m.add("pitch", 0.1 * m.osc(1.5))
    m.blend("mouth_open", 0.3 + 0.3 * np.abs(m.osc(4.0)))


SIDE_ROLL = {"r": -1.0, "l": 1.0}  # head roll that tilts the head towards a side


@dataclass(frozen=True)
class Motion:
    """One class's program, its duration range (seconds) and its emotional leaning.

    kind: "adaptor" (self-touching, more when losing), "closed" (withdrawn postures, more
    when losing), "open" (expansive, more when winning) or "neutral".
    """

    program: Callable[[Move], None]
    duration: tuple[float, float]
    kind: str


MOTIONS: tuple[Motion, ...] = (
    Motion(turtle_neck, (1.0, 2.5), "closed"),
    Motion(deep_breath, (1.5, 3.5), "neutral"),
    Motion(touching_hat, (1.0, 3.0), "adaptor"),
    Motion(touching_head, (1.0, 3.0), "adaptor"),
    Motion(touching_forehead, (1.0, 3.0), "adaptor"),
    Motion(covering_face, (1.2, 3.0), "adaptor"),
    Motion(rubbing_eyes, (1.0, 3.0), "adaptor"),
    Motion(facial_parts, (1.0, 3.0), "adaptor"),
    Motion(touching_ears, (1.0, 3.0), "adaptor"),
    Motion(biting_nails, (1.0, 3.0), "adaptor"),
    Motion(touching_jaw, (1.2, 3.5), "adaptor"),
    Motion(touching_neck, (1.0, 3.0), "adaptor"),
    Motion(adjusting_hair, (1.2, 3.0), "adaptor"),
    Motion(adjusting_collar, (1.0, 3.0), "adaptor"),
    Motion(suprasternal_notch, (1.0, 3.0), "adaptor"),
    Motion(scratching_back, (1.0, 3.0), "adaptor"),
    Motion(folding_arms, (1.5, 4.0), "closed"),
    Motion(dusting_off, (1.0, 2.5), "adaptor"),
    Motion(arms_behind, (1.5, 4.0), "closed"),
    Motion(moving_torso, (1.0, 3.0), "neutral"),
    Motion(sitting_straight, (1.2, 3.0), "open"),
    Motion(scratching_arms, (1.0, 3.0), "adaptor"),
    Motion(rubbing_hands, (1.5, 3.5), "adaptor"),
    Motion(crossing_fingers, (1.5, 4.0), "neutral"),
    Motion(minaret, (1.5, 4.0), "open"),
    Motion(manipulating_objects, (1.5, 3.5), "adaptor"),
    Motion(holding_back_arms, (1.5, 3.5), "closed"),
    Motion(head_up, (1.0, 2.5), "open"),
    Motion(pressing_lips, (1.0, 2.5), "closed"),
    Motion(arms_akimbo, (1.5, 4.0), "open"),
    Motion(shaking_shoulders, (1.0, 2.5), "neutral"),
    Motion(illustrative, (1.5, 4.0), "open"),
)


def apply(class_index: int, track: dict[str, np.ndarray], start: int, end: int, subject: Subject,
          rng: np.random.Generator, fps: float) -> None:
    """Write one instance of `class_index` into frames start..end (inclusive) of `track`."""
    side = subject.handed if rng.random() < 0.85 else OTHER[subject.handed]
    seg = {name: values[start:end + 1] for name, values in track.items()}
    MOTIONS[class_index].program(Move(seg, subject, rng, fps, side))
