"""Drawing RGB frames of a synthetic subject from the true pose (cv2, sub-pixel coordinates).

The drawing uses exactly the joint positions of `body.Geometry.joints`: the wrist is the
centre of a skin-coloured disc, each fingertip the end of a skin-coloured finger stroke, and
hands are drawn last (over arms, body, face and table) unless they are behind the body. The
face shows what the skeleton barely does: mouth shape (smile, talking, pressed lips), puffed
cheeks, brows and blinks.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import cv2
import numpy as np

from microgesture.data.synth.body import FINGER_TIPS, SIDES, Geometry, J, Subject

SHIFT = 2            # cv2 fractional bits: coordinates are drawn at 1/4 pixel precision
_ONE = 1 << SHIFT
AA = cv2.LINE_AA
HARD = cv2.LINE_8  # hands: exact skin colour up to the joint positions

SKIN_TONES = ((255, 224, 189), (241, 194, 160), (224, 172, 132), (198, 140, 100),
              (160, 108, 72), (124, 82, 56), (96, 62, 42))
HAIR = ((20, 18, 16), (60, 40, 25), (110, 75, 40), (200, 170, 110), (150, 150, 150), (150, 60, 30))
BACKDROPS = ((25, 45, 95), (20, 80, 50), (70, 30, 90), (30, 90, 160), (200, 200, 205), (120, 20, 30))
TABLES = ((30, 30, 35), (25, 35, 70), (95, 60, 35), (225, 225, 220))


@dataclass(frozen=True)
class Look:
    """A subject's appearance (RGB colours)."""

    skin: tuple[int, int, int]
    skin_dark: tuple[int, int, int]
    hair: tuple[int, int, int]
    shirt: tuple[int, int, int]
    sleeve: tuple[int, int, int]
    collar: tuple[int, int, int]
    tie: tuple[int, int, int] | None
    hat: tuple[int, int, int] | None
    backdrop: tuple[int, int, int]
    logo: tuple[int, int, int]
    table: tuple[int, int, int]
    lips: tuple[int, int, int]


def _far(colour, others, dist: float) -> bool:
    return all(np.abs(np.subtract(colour, o)).sum() >= dist for o in others)


def _pick(rng: np.random.Generator, palette, avoid, dist: float = 150.0):
    choices = [c for c in palette if _far(c, avoid, dist)] or list(palette)
    base = np.asarray(choices[int(rng.integers(len(choices)))], dtype=float)
    return tuple(int(v) for v in np.clip(base + rng.normal(0, 6, 3), 0, 255))


def make_look(rng: np.random.Generator) -> Look:
    skin = _pick(rng, SKIN_TONES, ())
    skin_dark = tuple(int(v * 0.8) for v in skin)
    shirt = skin
    while not _far(shirt, (skin,), 170):  # a saturated or dark shirt that is clearly not skin
        shirt = tuple(int(v) for v in rng.integers(0, 256, 3))
    backdrop = _pick(rng, BACKDROPS, (skin, shirt))
    table = _pick(rng, TABLES, (skin, shirt))
    long_sleeves = rng.random() < 0.5
    return Look(
        skin=skin,
        skin_dark=skin_dark,
        hair=_pick(rng, HAIR, (), 0),
        shirt=shirt,
        sleeve=shirt if long_sleeves else skin,
        collar=tuple(int(v) for v in np.clip(np.asarray(shirt) * 0.6 + 90, 0, 255)),
        tie=tuple(int(v) for v in rng.integers(0, 200, 3)) if rng.random() < 0.3 else None,
        hat=tuple(int(v) for v in rng.integers(0, 256, 3)) if rng.random() < 0.35 else None,
        backdrop=backdrop,
        logo=tuple(int(v) for v in np.clip(np.asarray(backdrop) + rng.choice([-60, 60], 3), 0, 255)),
        table=table,
        lips=(150, 60, 60) if skin[0] > 150 else (90, 40, 40),
    )


def background(look: Look, subject: Subject, size: tuple[int, int]) -> np.ndarray:
    """The static backdrop: a wall of sponsor logos (a press conference)."""
    width, height = size
    img = np.empty((height, width, 3), np.uint8)
    img[:] = look.backdrop
    step = max(16, int(subject.scale * 1.6))
    for row, y in enumerate(range(step // 2, height, step)):
        for x in range((row % 2) * step // 2, width, step):
            cv2.rectangle(img, (x, y), (x + step // 3, y + step // 5), look.logo, -1)
    return img


def _p(a: np.ndarray) -> np.ndarray:
    return np.round(np.asarray(a) * _ONE).astype(np.int32)


def _face(geom: Geometry, fx, fy) -> np.ndarray:
    """Points in the head's frame (multiples of the head half-axes) to pixels, [T, 2]."""
    c, s = np.cos(geom.head_ang), np.sin(geom.head_ang)
    x, y = fx * geom.head_ax[:, 0], fy * geom.head_ax[:, 1]
    return geom.head_c + np.stack([x * c - y * s, x * s + y * c], -1)


def _prepare(geom: Geometry) -> dict[str, np.ndarray]:
    """Every per-frame drawing coordinate, vectorised, as cv2-ready int32 (fixed point) arrays."""
    tr, u, jt = geom.track, geom.scale, geom.joints
    out: dict[str, np.ndarray] = {}
    out["torso"] = _p(geom.torso)
    out["neck"] = _p(jt[:, J["neck"]])
    out["neck_top"] = _p(geom.neck_top)
    out["head_c"] = _p(geom.head_c)
    out["head_ax"] = _p(geom.head_ax)
    out["hair_c"] = _p(_face(geom, 0.0, -0.3))
    out["hair_ax"] = _p(geom.head_ax * np.array([1.08, 0.78]))
    out["head_deg"] = np.degrees(geom.head_ang)
    out["brim"] = _p(np.stack([_face(geom, -1.15, -0.4), _face(geom, 1.15, -0.4)], 1))
    out["ears"] = _p(jt[:, [J["r_ear"], J["l_ear"]]])
    out["eyes"] = _p(jt[:, [J["r_eye"], J["l_eye"]]])
    brows = []
    for sx, eye in ((-1.0, J["r_eye"]), (1.0, J["l_eye"])):
        lift = 0.22 + 0.1 * tr["brow"]
        inner = _face(geom, sx * 0.15 + 0.22 * tr["yaw"], -0.1 - lift - 0.08 * tr["brow_tilt"])
        outer = _face(geom, sx * 0.6 + 0.22 * tr["yaw"], -0.1 - lift + 0.04 * tr["brow_tilt"])
        brows.append(np.stack([inner, outer], 1))
    out["brows"] = _p(np.stack(brows, 1))
    out["nose"] = _p(np.stack([_face(geom, 0.3 * tr["yaw"], -0.05), jt[:, J["nose"]]], 1))
    width = 0.34 * (1 - 0.35 * tr["press"]) * (1 - 0.35 * tr["cheek"])
    my = 0.55 - 0.22 * tr["pitch"]
    mx = 0.25 * tr["yaw"]
    curve = 0.12 * tr["smile"]
    out["mouth"] = _p(np.stack([_face(geom, mx - width, my - curve), _face(geom, mx, my),
                                _face(geom, mx + width, my - curve)], 1))
    out["mouth_c"] = _p(geom.mouth)
    out["mouth_ax"] = _p(np.stack([width * geom.head_ax[:, 0] * 0.9,
                                   tr["mouth_open"] * 0.12 * geom.head_ax[:, 1] + 0.01], -1))
    out["cheeks"] = _p(np.stack([_face(geom, mx - 0.55, my - 0.15), _face(geom, mx + 0.55, my - 0.15)], 1))
    out["cheek_r"] = _p(0.3 * geom.head_ax[:, 0] * np.clip(tr["cheek"], 0, 1))  # puffed: visible in a face crop
    out["shoulders"] = _p(jt[:, [J["r_shoulder"], J["l_shoulder"]]])
    out["elbows"] = _p(jt[:, [J["r_elbow"], J["l_elbow"]]])
    out["wrists"] = _p(jt[:, [J["r_wrist"], J["l_wrist"]]])
    out["knuckles"] = _p(geom.knuckles)
    out["tips"] = _p(np.stack([jt[:, list(FINGER_TIPS[s])] for s in SIDES], 1))
    palm = []
    for k in range(2):
        wrist = jt[:, [J["r_wrist"], J["l_wrist"]][k]]
        kn = geom.knuckles[:, k]
        across = kn[:, 1] - kn[:, 4]
        palm.append(np.stack([wrist + 0.55 * across, kn[:, 1], kn[:, 4], wrist - 0.55 * across], 1))
    out["palms"] = _p(np.stack(palm, 1))
    pen_dir = geom.knuckles[:, :, 1] - geom.knuckles[:, :, 4]
    pen_dir = pen_dir / np.maximum(np.linalg.norm(pen_dir, axis=-1, keepdims=True), 1e-6)
    centre = 0.5 * (geom.knuckles[:, :, 2] + jt[:, [J["r_wrist"], J["l_wrist"]]])
    out["pen"] = _p(np.stack([centre - 0.45 * u * pen_dir, centre + 0.45 * u * pen_dir], 2))
    for name in ("eye_open", "mouth_open", "press", "obj"):
        out[name] = tr[name]
    out["behind"] = geom.behind
    return out


def render_frames(geom: Geometry, subject: Subject, look: Look, size: tuple[int, int],
                  handed: str) -> Iterator[np.ndarray]:
    """Yield one RGB uint8 frame [H, W, 3] per track frame, drawn from the true pose."""
    u = geom.scale
    bg = background(look, subject, size)
    d = _prepare(geom)
    table_y = int(round(subject.neck[1] + subject.table * u))
    bg[table_y:] = look.table
    bg[table_y:table_y + 1] = [int(v * 0.7) for v in look.table]
    th = {
        "upper": max(2, int(round(0.36 * u))), "fore": max(2, int(round(0.28 * u))),
        "neck": max(2, int(round(0.4 * u))), "finger": max(2, int(round(0.08 * u))),
        "line": max(1, int(round(0.06 * u))), "tie": max(1, int(round(0.14 * u))),
        "pen": max(1, int(round(0.07 * u))),
    }
    r_sh = int(0.26 * u * _ONE)
    r_wrist = int(max(1.2, 0.12 * u) * _ONE)
    r_eye = int(max(1.0, 0.065 * u) * _ONE)
    ear_ax = (int(0.12 * u * _ONE), int(0.2 * u * _ONE))
    # The dominant hand is drawn last, so it is on top when the hands meet.
    hand_order = (0, 1) if handed == "l" else (1, 0)
    for f in range(len(geom.joints)):
        img = bg.copy()
        behind = d["behind"][f]
        for k in hand_order:
            if behind[k]:
                _arm(img, d, f, k, look, th)
                _hand(img, d, f, k, look, th, r_wrist)
        cv2.fillConvexPoly(img, d["torso"][f], look.shirt, AA, SHIFT)
        for k in range(2):
            cv2.circle(img, d["shoulders"][f][k], r_sh, look.shirt, -1, AA, SHIFT)
        _collar(img, d, f, look, th, u)
        _head(img, d, f, look, th, r_eye, ear_ax)
        img[table_y:] = bg[table_y:]
        for k in hand_order:
            if not behind[k]:
                _arm(img, d, f, k, look, th)
        if d["obj"][f] > 0.5:
            k = 0 if handed == "r" else 1
            pen = d["pen"][f][k]
            cv2.line(img, pen[0], pen[1], (20, 40, 160), th["pen"], AA, SHIFT)
        for k in hand_order:
            if not behind[k]:
                _hand(img, d, f, k, look, th, r_wrist)
        yield img


def _arm(img, d, f, k, look: Look, th) -> None:
    sh, el, wr = d["shoulders"][f][k], d["elbows"][f][k], d["wrists"][f][k]
    cv2.line(img, sh, el, look.shirt, th["upper"], AA, SHIFT)
    cv2.line(img, el, wr, look.sleeve, th["fore"], AA, SHIFT)


def _hand(img, d, f, k, look: Look, th, r_wrist) -> None:
    wr = d["wrists"][f][k]
    knuckles, tips = d["knuckles"][f][k], d["tips"][f][k]
    cv2.circle(img, wr, r_wrist, look.skin, -1, HARD, SHIFT)
    cv2.fillConvexPoly(img, d["palms"][f][k], look.skin, HARD, SHIFT)
    for base, tip in zip(knuckles, tips):
        cv2.line(img, base, tip, look.skin, th["finger"], HARD, SHIFT)


def _collar(img, d, f, look: Look, th, u) -> None:
    neck, top = d["neck"][f], d["neck_top"][f]
    cv2.line(img, neck, top, look.skin, th["neck"], AA, SHIFT)
    w, h = int(0.22 * u * _ONE), int(0.45 * u * _ONE)
    vee = np.array([[neck[0] - w, neck[1] - w // 4], [neck[0] + w, neck[1] - w // 4], [neck[0], neck[1] + h]], np.int32)
    cv2.fillConvexPoly(img, vee, look.collar, AA, SHIFT)
    if look.tie is not None:
        cv2.line(img, (neck[0], neck[1] + h // 3), (neck[0], neck[1] + 4 * h), look.tie, th["tie"], AA, SHIFT)


def _head(img, d, f, look: Look, th, r_eye, ear_ax) -> None:
    deg = d["head_deg"][f]
    for ear in d["ears"][f]:
        cv2.ellipse(img, ear, ear_ax, deg, 0, 360, look.skin_dark, -1, AA, SHIFT)
    cv2.ellipse(img, d["head_c"][f], d["head_ax"][f], deg, 0, 360, look.skin, -1, AA, SHIFT)
    cover = look.hat if look.hat is not None else look.hair
    cv2.ellipse(img, d["hair_c"][f], d["hair_ax"][f], deg, 180, 360, cover, -1, AA, SHIFT)
    if look.hat is not None:
        brim = d["brim"][f]
        cv2.line(img, brim[0], brim[1], look.hat, th["tie"], AA, SHIFT)
    r_cheek = d["cheek_r"][f]
    if r_cheek > _ONE:
        for c in d["cheeks"][f]:
            cv2.circle(img, c, r_cheek, (min(255, look.skin[0] + 20), look.skin[1], look.skin[2]), -1, AA, SHIFT)
    eye_open = d["eye_open"][f]
    for eye in d["eyes"][f]:
        if eye_open > 0.5:
            cv2.circle(img, eye, r_eye, (25, 20, 20), -1, AA, SHIFT)
        else:
            cv2.line(img, (eye[0] - 2 * r_eye, eye[1]), (eye[0] + 2 * r_eye, eye[1]), (40, 30, 30), 1, AA, SHIFT)
    for brow in d["brows"][f]:
        cv2.line(img, brow[0], brow[1], look.hair, th["line"], AA, SHIFT)
    nose = d["nose"][f]
    cv2.line(img, nose[0], nose[1], look.skin_dark, 1, AA, SHIFT)
    if d["mouth_open"][f] > 0.15 and d["press"][f] < 0.5:
        cv2.ellipse(img, d["mouth_c"][f], d["mouth_ax"][f], deg, 0, 360, (70, 20, 25), -1, AA, SHIFT)
    lips = (60, 30, 30) if d["press"][f] > 0.5 else look.lips
    pressed = d["press"][f] > 0.5  # pressed lips: a thick dark line, a cue no joint carries
    cv2.polylines(img, [d["mouth"][f]], False, lips, th["tie"] if pressed else th["line"], AA, SHIFT)
