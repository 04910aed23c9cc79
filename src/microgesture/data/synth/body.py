"""Subjects and the 2-D upper-body kinematics of the synthetic dataset.

A pose is a *track*: a dict of per-frame parameter arrays (body units, radians). `pose` turns a
track into image geometry: the 35 `miga35` joints in pixels plus the extra shapes the renderer
needs (head ellipse, torso, knuckles). Everything is vectorised over frames.

Body units: 1 unit = the subject's `scale` in pixels (about half a shoulder width). The origin
is the subject's rest neck position; x points to the image's right, y down. A *side* is the
person's own side: the person's right ("r") appears on the image's left, so a side's outward
direction in the image is `SIDE_SIGN[side]`. Arm parameters are side-local (`lat` > 0 is
outward, hand angle 0 points outward, pi/2 down), so one motion program serves either hand.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from microgesture.domain.layouts import MIGA35

SIDES = ("r", "l")
SIDE_SIGN = {"r": -1.0, "l": 1.0}
OTHER = {"r": "l", "l": "r"}

BODY_PARAMS = (
    "tx", "ty", "lean", "chest", "shrug_r", "shrug_l",
    "hx", "hy", "roll", "yaw", "pitch",
    "smile", "mouth_open", "press", "cheek", "brow", "brow_tilt", "eye_open", "obj",
)
ARM_PARAMS = ("lat", "vert", "hang", "spread", "curl", "point", "attach", "eup", "behind")
PARAMS = BODY_PARAMS + tuple(f"{p}_{s}" for s in SIDES for p in ARM_PARAMS)

J = {name: i for i, name in enumerate(MIGA35.joint_names)}
FINGER_TIPS = {"r": tuple(range(25, 30)), "l": tuple(range(30, 35))}

# Hand geometry as multiples of the hand length: finger lengths, knuckle offsets across the
# palm (towards the thumb side is positive) and how far each finger fans out when spread.
_FINGER_LEN = np.array([0.42, 0.5, 0.55, 0.5, 0.4])
_KNUCKLE_ACROSS = np.array([0.3, 0.2, 0.07, -0.07, -0.2])
_KNUCKLE_ALONG = np.array([0.18, 0.5, 0.52, 0.5, 0.46])
_FAN = np.array([0.9, 0.3, 0.0, -0.25, -0.5])
_FAN_REST = np.array([0.5, 0.05, 0.0, -0.05, -0.1])


@dataclass(frozen=True)
class Subject:
    """One synthetic person: body proportions, placement, habits and detector quality."""

    subject_id: int
    handed: str            # "r" or "l": which hand does single-hand gestures
    scale: float           # pixels per body unit
    neck: tuple[float, float]  # rest neck position in pixels
    shoulder: float        # half shoulder width (units)
    upper: float           # upper-arm length
    fore: float            # forearm length (wrist to elbow)
    hand: float            # hand length (wrist to middle fingertip, extended)
    head: float            # head size factor
    neck_len: float
    torso: float           # neck to the lean pivot (hips)
    tempo: float           # > 1 moves faster
    rest_lat: float        # resting hands on the table
    rest_vert: float
    rest_hang: float
    table: float           # table top below the neck (units)
    noise_px: float        # keypoint noise (pixels)
    dropout: float         # per joint-frame rate of missed detections
    conf_body: float
    conf_hand: float
    expressive: float      # how strongly the face shows the emotion
    neutral_smile: float


def make_subject(rng: np.random.Generator, subject_id: int, size: tuple[int, int]) -> Subject:
    """Draw one subject; `size` is (width, height) of the frame."""
    width, height = size
    scale = min(height * rng.uniform(0.165, 0.195), width / 8.0)
    neck = (width * (0.5 + rng.uniform(-0.08, 0.08)), height * rng.uniform(0.4, 0.44))
    unit_px = height / 144.0
    return Subject(
        subject_id=subject_id,
        handed="r" if rng.random() < 0.75 else "l",
        scale=float(scale),
        neck=(float(neck[0]), float(neck[1])),
        shoulder=rng.uniform(0.9, 1.1),
        upper=rng.uniform(1.05, 1.25),
        fore=rng.uniform(0.95, 1.1),
        hand=rng.uniform(0.4, 0.48),
        head=rng.uniform(0.9, 1.1),
        neck_len=rng.uniform(0.25, 0.38),
        torso=rng.uniform(2.6, 3.0),
        tempo=rng.uniform(0.8, 1.25),
        rest_lat=rng.uniform(0.3, 0.75),
        rest_vert=rng.uniform(1.95, 2.1),
        rest_hang=rng.uniform(1.75, 2.3),
        table=rng.uniform(2.2, 2.3),
        noise_px=rng.uniform(0.3, 1.5) * unit_px,
        dropout=rng.uniform(0.003, 0.03),
        conf_body=rng.uniform(0.7, 0.92),
        conf_hand=rng.uniform(0.35, 0.7),
        expressive=rng.uniform(0.3, 1.0),
        neutral_smile=rng.normal(0.0, 0.25),
    )


def rest_track(n: int, subject: Subject) -> dict[str, np.ndarray]:
    """A track of `n` frames holding the subject's rest pose (hands resting on the table)."""
    track = {name: np.zeros(n) for name in PARAMS}
    track["eye_open"][:] = 1.0
    track["smile"][:] = subject.neutral_smile
    for s in SIDES:
        track[f"lat_{s}"][:] = subject.rest_lat
        track[f"vert_{s}"][:] = subject.rest_vert
        track[f"hang_{s}"][:] = subject.rest_hang
        track[f"spread_{s}"][:] = 0.15
        track[f"curl_{s}"][:] = 0.35
    return track


@dataclass
class Geometry:
    """Image geometry of a track, in pixels, one row per frame."""

    joints: np.ndarray      # [T, 35, 2] true positions (lower body zero)
    behind: np.ndarray      # [T, 2] bool: hand (r, l) hidden behind the body
    head_c: np.ndarray      # [T, 2] head ellipse centre
    head_ax: np.ndarray     # [T, 2] head half-axes (x, y)
    head_ang: np.ndarray    # [T] head ellipse angle (radians)
    neck_top: np.ndarray    # [T, 2]
    mouth: np.ndarray       # [T, 2] mouth centre
    torso: np.ndarray       # [T, 4, 2] shoulder-to-waist polygon
    knuckles: np.ndarray    # [T, 2, 5, 2] finger bases (thumb first)
    track: dict[str, np.ndarray]
    scale: float


def _rot(vx, vy, ang):
    c, s = np.cos(ang), np.sin(ang)
    return np.stack([vx * c - vy * s, vx * s + vy * c], axis=-1)


def pose(track: dict[str, np.ndarray], subject: Subject) -> Geometry:
    """Forward kinematics of a whole track (see the module docstring for the conventions)."""
    tr, u = track, subject.scale
    n = len(tr["tx"])
    joints = np.zeros((n, MIGA35.num_joints, 2))
    base = np.asarray(subject.neck) + np.stack([tr["tx"], tr["ty"]], -1) * u
    pivot = base + np.array([0.0, subject.torso * u])
    lean = tr["lean"]
    neck = pivot + _rot(0.0, -subject.torso * u, lean)
    joints[:, J["neck"]] = neck
    for s in SIDES:
        sx = SIDE_SIGN[s]
        off = _rot(sx * subject.shoulder * (1 + tr["chest"]) * u, (0.15 - tr[f"shrug_{s}"]) * u, lean)
        joints[:, J[f"{s}_shoulder"]] = neck + off

    head_ang = lean + tr["roll"]
    neck_top = neck + _rot(tr["hx"] * u, (-subject.neck_len + tr["hy"]) * u, lean)
    ry = 0.6 * subject.head * u * np.ones(n)
    rx = 0.47 * subject.head * u * (1 + 0.1 * tr["cheek"])
    head_c = neck_top + _rot(0.0, -ry * (1 + 0.06 * tr["pitch"]), head_ang)

    def face(fx, fy):
        return head_c + _rot(fx * rx, fy * ry, head_ang)

    yaw, pitch = tr["yaw"], tr["pitch"]
    joints[:, J["nose"]] = face(0.3 * yaw, 0.22 - 0.4 * pitch)
    for s in SIDES:
        sx = SIDE_SIGN[s]
        joints[:, J[f"{s}_eye"]] = face(sx * 0.38 + 0.22 * yaw, -0.1 - 0.15 * pitch)
        joints[:, J[f"{s}_ear"]] = face(sx * 1.0 + 0.12 * yaw, 0.02 + 0.12 * pitch)
    mouth = face(0.25 * yaw, 0.55 - 0.22 * pitch)

    # Hands touching the head follow its idle motion (`attach`), others stay in the body frame.
    rest_head = np.asarray(subject.neck) + np.array([0.0, -subject.neck_len * u - 0.6 * subject.head * u])
    head_shift = head_c - rest_head - (base - np.asarray(subject.neck))
    knuckles = np.zeros((n, 2, 5, 2))
    for k, s in enumerate(SIDES):
        sx = SIDE_SIGN[s]
        target = base + np.stack([sx * tr[f"lat_{s}"], tr[f"vert_{s}"]], -1) * u
        target += tr[f"attach_{s}"][:, None] * head_shift
        shoulder = joints[:, J[f"{s}_shoulder"]]
        elbow, wrist = _two_bone(shoulder, target, subject.upper * u, subject.fore * u, sx, tr[f"eup_{s}"])
        joints[:, J[f"{s}_elbow"]] = elbow
        joints[:, J[f"{s}_wrist"]] = wrist
        bases, tips = _hand(wrist, tr, s, subject.hand * u)
        knuckles[:, k] = bases
        joints[:, list(FINGER_TIPS[s])] = tips

    torso = np.stack([
        joints[:, J["r_shoulder"]] + _rot(-0.1 * u, -0.2 * u, lean),
        joints[:, J["l_shoulder"]] + _rot(0.1 * u, -0.2 * u, lean),
        pivot + _rot(0.95 * u, -0.3 * u, lean),
        pivot + _rot(-0.95 * u, -0.3 * u, lean),
    ], axis=1)
    behind = np.stack([tr["behind_r"] > 0.5, tr["behind_l"] > 0.5], axis=1)
    return Geometry(joints, behind, head_c, np.stack([rx, ry], -1), head_ang, neck_top, mouth,
                    torso, knuckles, track, u)


def _two_bone(shoulder, target, a, b, sx, eup):
    """Elbow and wrist reaching for `target`; the elbow bends outwards (or upwards with `eup`)."""
    v = target - shoulder
    d = np.linalg.norm(v, axis=-1)
    direction = v / np.maximum(d, 1e-6)[:, None]
    d = np.clip(d, abs(a - b) + 1e-3, (a + b) * 0.995)
    wrist = shoulder + direction * d[:, None]
    cos_a = np.clip((a * a + d * d - b * b) / (2 * a * d), -1.0, 1.0)
    sin_a = np.sqrt(1 - cos_a**2)
    perp = np.stack([-direction[:, 1], direction[:, 0]], -1)
    e1 = shoulder + a * (cos_a[:, None] * direction + sin_a[:, None] * perp)
    e2 = shoulder + a * (cos_a[:, None] * direction - sin_a[:, None] * perp)
    k = 0.3 - 1.3 * eup
    score1 = sx * e1[:, 0] + k * e1[:, 1]
    score2 = sx * e2[:, 0] + k * e2[:, 1]
    elbow = np.where((score1 >= score2)[:, None], e1, e2)
    return elbow, wrist


def _hand(wrist, tr, side, length):
    """Finger bases and fingertips [T, 5, 2] (thumb first) of one hand."""
    sx = SIDE_SIGN[side]
    ang = tr[f"hang_{side}"][:, None]
    spread = tr[f"spread_{side}"][:, None]
    curl = np.repeat(tr[f"curl_{side}"][:, None], 5, axis=1)
    curl[:, 1] *= 1 - tr[f"point_{side}"]
    along = np.stack([np.cos(ang), np.sin(ang)], -1)        # side-local
    across = np.stack([-np.sin(ang), np.cos(ang)], -1)      # towards the thumb
    bases = along * (_KNUCKLE_ALONG[None, :, None] * length) + across * (_KNUCKLE_ACROSS[None, :, None] * length)
    fan = ang + _FAN_REST + spread * _FAN
    reach = _FINGER_LEN * length * (1 - 0.7 * curl)
    tips = bases + np.stack([np.cos(fan), np.sin(fan)], -1) * reach[..., None]
    mirror = np.array([sx, 1.0])
    return wrist[:, None] + bases * mirror, wrist[:, None] + tips * mirror
