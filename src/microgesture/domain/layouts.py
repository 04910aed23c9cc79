"""Joint layouts as data: names, the anatomical graph, bone pairs, left/right flip pairs, and the
declared conversions between layouts.

Sides are the person's own: "r_" joints are the person's right, which appear on the image's
left when they face the camera. OpenPose names sides this way; the official MiGA reader calls
BODY_25 index 2 "ShoulderLeft", but it is OpenPose's RShoulder, and we keep OpenPose's meaning.

Layouts:
- `openpose67`: BODY_25, then the right hand's 21 points, then the left hand's (OpenPose's hand
  model: 0 wrist, then 4 points per finger from the palm outwards).
- `miga35`: the MiGA challenge CSV: BODY_25, then 5 right fingertips, then 5 left fingertips.
- `imigue22`: the 22-joint upper-body layout of the MiGA baselines (nose, neck, arms, eyes, ears,
  fingertips), with a graph made from the joint semantics.
- `ntu25` and `coco17`: the NTU RGB+D (Kinect v2) and COCO keypoint layouts in PYSKL's and
  MMAction2's joint order, graph and bone pairs, so their 2s-AGCN/AAGCN checkpoints load.
- `mediapipe75`: MediaPipe's 33 BlazePose landmarks, then the right hand's 21 MediaPipe Hands
  landmarks, then the left hand's (the hand model numbers its points as OpenPose's does). What
  `microgesture extract-pose` produces before converting to `miga35`. BlazePose's "left" is the
  person's left (checked on our drawn people, whose sides are known); hands are given to a side
  by the extractor (data/pose), never by MediaPipe's handedness label, which assumes a mirrored
  selfie image. Its graph is a tree hung from the nose; the shoulders hang from the nose
  because BlazePose has no neck.

A conversion says, for each joint of the target, which source joints it is the mean of (a
joint counts as detected only when all of them are; its score is their minimum); an empty
entry means the source has no such joint (coordinates and score 0).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

BODY25_NAMES: tuple[str, ...] = (
    "nose", "neck", "r_shoulder", "r_elbow", "r_wrist", "l_shoulder", "l_elbow", "l_wrist",
    "mid_hip", "r_hip", "r_knee", "r_ankle", "l_hip", "l_knee", "l_ankle",
    "r_eye", "l_eye", "r_ear", "l_ear",
    "l_big_toe", "l_small_toe", "l_heel", "r_big_toe", "r_small_toe", "r_heel",
)
BODY25_EDGES: tuple[tuple[int, int], ...] = (
    (0, 1), (1, 2), (2, 3), (3, 4), (1, 5), (5, 6), (6, 7), (1, 8), (8, 9), (9, 10), (10, 11),
    (8, 12), (12, 13), (13, 14), (0, 15), (15, 17), (0, 16), (16, 18),
    (14, 19), (19, 20), (14, 21), (11, 22), (22, 23), (11, 24),
)
BODY25_LOWER: tuple[int, ...] = (8, 9, 10, 11, 12, 13, 14, 19, 20, 21, 22, 23, 24)

FINGERS: tuple[str, ...] = ("thumb", "index", "middle", "ring", "pinky")
# OpenPose hand model: 0 wrist, then 4 points per finger from the palm outwards.
HAND_FINGERTIPS: tuple[int, ...] = (4, 8, 12, 16, 20)


@dataclass(frozen=True)
class JointLayout:
    """A skeleton layout.

    `edges` are undirected anatomical links (every joint reachable from `center`).
    `parents[j]` is the next joint towards `center` (the center is its own parent).
    `bone_pairs` are (child, parent) for the bone stream: by default (j, parents[j]); a layout
    may declare its own (`bones`) where a reference implementation's bone stream differs from
    its graph (PYSKL's COCO and NTU bones). `flip_pairs` are (left, right) joints swapped by a
    horizontal flip.
    """

    name: str
    joint_names: tuple[str, ...]
    edges: tuple[tuple[int, int], ...]
    center: int
    flip_pairs: tuple[tuple[int, int], ...]
    bones: tuple[tuple[int, int], ...] | None = None
    parents: tuple[int, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "parents", _parents(self))
        if self.bones is not None and sorted(c for c, _ in self.bones) != list(range(self.num_joints)):
            raise ValueError(f"layout {self.name}: bones must name every joint once as the child")

    @property
    def num_joints(self) -> int:
        return len(self.joint_names)

    @property
    def bone_pairs(self) -> tuple[tuple[int, int], ...]:
        """(child, parent) for every joint; the center pairs with itself (a zero bone)."""
        if self.bones is not None:
            return tuple(sorted(self.bones))
        return tuple((j, p) for j, p in enumerate(self.parents))

    def index(self, name: str) -> int:
        return self.joint_names.index(name)

    def hop_distances(self) -> np.ndarray:
        """Graph distance of every joint from the center (-1 for a joint not connected)."""
        return _bfs(self)[0]

    def flip_permutation(self) -> np.ndarray:
        perm = np.arange(self.num_joints)
        for left, right in self.flip_pairs:
            perm[left], perm[right] = right, left
        return perm

    def adjacency(self) -> np.ndarray:
        """Symmetric 0/1 adjacency matrix without self-loops."""
        a = np.zeros((self.num_joints, self.num_joints), dtype=np.float32)
        for i, j in self.edges:
            a[i, j] = a[j, i] = 1.0
        return a


def _bfs(layout: JointLayout) -> tuple[np.ndarray, list[int]]:
    """(hop distance from the center, breadth-first parent) of every joint; -1 where unreached."""
    n = len(layout.joint_names)
    neighbours: list[list[int]] = [[] for _ in range(n)]
    for i, j in layout.edges:
        neighbours[i].append(j)
        neighbours[j].append(i)
    dist = np.full(n, -1, dtype=np.int64)
    parents = [-1] * n
    dist[layout.center], parents[layout.center] = 0, layout.center
    queue = deque([layout.center])
    while queue:
        node = queue.popleft()
        for nb in sorted(neighbours[node]):
            if dist[nb] < 0:
                dist[nb], parents[nb] = dist[node] + 1, node
                queue.append(nb)
    return dist, parents


def _parents(layout: JointLayout) -> tuple[int, ...]:
    dist, parents = _bfs(layout)
    isolated = [int(i) for i in np.flatnonzero(dist < 0)]
    if isolated:
        raise ValueError(f"layout {layout.name}: joints {isolated} are not connected to the graph")
    return tuple(parents)


def _side_pairs(names: tuple[str, ...]) -> tuple[tuple[int, int], ...]:
    pairs = []
    for i, n in enumerate(names):
        if n.startswith("l_"):
            pairs.append((i, names.index("r_" + n[2:])))
    return tuple(pairs)


def _layout(name: str, names: tuple[str, ...], edges, center: int, bones=None) -> JointLayout:
    return JointLayout(name, names, tuple(edges), center, _side_pairs(names), bones)


def _miga35() -> JointLayout:
    names = BODY25_NAMES + tuple(f"r_{f}_tip" for f in FINGERS) + tuple(f"l_{f}_tip" for f in FINGERS)
    edges = BODY25_EDGES + tuple((4, 25 + k) for k in range(5)) + tuple((7, 30 + k) for k in range(5))
    return _layout("miga35", names, edges, center=1)


IMIGUE22_FROM_MIGA35 = (0, 1, 2, 3, 4, 5, 6, 7, 15, 16, 17, 18) + tuple(range(25, 35))


def _imigue22() -> JointLayout:
    names = tuple(MIGA35.joint_names[i] for i in IMIGUE22_FROM_MIGA35)
    # nose0 neck1 rsh2 relb3 rwr4 lsh5 lelb6 lwr7 reye8 leye9 rear10 lear11 rtips12-16 ltips17-21
    edges = ((0, 1), (1, 2), (2, 3), (3, 4), (1, 5), (5, 6), (6, 7), (0, 8), (8, 10), (0, 9), (9, 11))
    edges += tuple((4, 12 + k) for k in range(5)) + tuple((7, 17 + k) for k in range(5))
    return _layout("imigue22", names, edges, center=1)


def _openpose67() -> JointLayout:
    hand_names = ["wrist_hand"] + [f"{f}_{k}" for f in FINGERS for k in range(1, 5)]
    names = BODY25_NAMES + tuple(f"r_{n}" for n in hand_names) + tuple(f"l_{n}" for n in hand_names)
    hand_edges = [(0, 1 + 4 * f) for f in range(5)] + [(1 + 4 * f + k, 2 + 4 * f + k) for f in range(5) for k in range(3)]
    edges = BODY25_EDGES
    for root, wrist in ((25, 4), (46, 7)):  # hand roots hang from the body's wrists
        edges += ((wrist, root),) + tuple((root + a, root + b) for a, b in hand_edges)
    return _layout("openpose67", names, edges, center=1)


def _ntu25() -> JointLayout:
    names = (
        "base_spine", "mid_spine", "neck", "head", "l_shoulder", "l_elbow", "l_wrist", "l_hand",
        "r_shoulder", "r_elbow", "r_wrist", "r_hand", "l_hip", "l_knee", "l_ankle", "l_foot",
        "r_hip", "r_knee", "r_ankle", "r_foot", "spine_shoulder", "l_hand_tip", "l_thumb", "r_hand_tip", "r_thumb",
    )
    # PYSKL's graph (1-based in the NTU documentation); its bone stream pairs the hand tip with
    # the thumb instead of the hand.
    edges = ((0, 1), (1, 20), (2, 20), (3, 2), (4, 20), (5, 4), (6, 5), (7, 6), (8, 20), (9, 8), (10, 9),
             (11, 10), (12, 0), (13, 12), (14, 13), (15, 14), (16, 0), (17, 16), (18, 17), (19, 18),
             (21, 7), (22, 7), (23, 11), (24, 11))
    bones = ((0, 1), (1, 20), (2, 20), (3, 2), (4, 20), (5, 4), (6, 5), (7, 6), (8, 20), (9, 8), (10, 9),
             (11, 10), (12, 0), (13, 12), (14, 13), (15, 14), (16, 0), (17, 16), (18, 17), (19, 18),
             (21, 22), (20, 20), (22, 7), (23, 24), (24, 11))
    return _layout("ntu25", names, edges, center=20, bones=bones)


def _coco17() -> JointLayout:
    names = ("nose", "l_eye", "r_eye", "l_ear", "r_ear", "l_shoulder", "r_shoulder", "l_elbow", "r_elbow",
             "l_wrist", "r_wrist", "l_hip", "r_hip", "l_knee", "r_knee", "l_ankle", "r_ankle")
    edges = ((15, 13), (13, 11), (16, 14), (14, 12), (11, 5), (12, 6), (9, 7), (7, 5), (10, 8), (8, 6),
             (5, 0), (6, 0), (1, 0), (3, 1), (2, 0), (4, 2))
    # PYSKL's COCO bone stream hangs the hips from the nose, unlike its graph.
    bones = ((0, 0), (1, 0), (2, 0), (3, 1), (4, 2), (5, 0), (6, 0), (7, 5), (8, 6), (9, 7), (10, 8),
             (11, 0), (12, 0), (13, 11), (14, 12), (15, 13), (16, 14))
    return _layout("coco17", names, edges, center=0, bones=bones)


# BlazePose's 33 landmarks in MediaPipe's order, sides renamed to ours ("left_eye" -> "l_eye").
BLAZEPOSE_NAMES: tuple[str, ...] = (
    "nose", "l_eye_inner", "l_eye", "l_eye_outer", "r_eye_inner", "r_eye", "r_eye_outer", "l_ear", "r_ear",
    "l_mouth", "r_mouth", "l_shoulder", "r_shoulder", "l_elbow", "r_elbow", "l_wrist", "r_wrist",
    "l_pinky", "r_pinky", "l_index", "r_index", "l_thumb", "r_thumb", "l_hip", "r_hip", "l_knee", "r_knee",
    "l_ankle", "r_ankle", "l_heel", "r_heel", "l_foot_index", "r_foot_index",
)
_HAND_NAMES = ("wrist_hand",) + tuple(f"{f}_{k}" for f in FINGERS for k in range(1, 5))
_HAND_EDGES = tuple((0, 1 + 4 * f) for f in range(5)) + tuple(
    (1 + 4 * f + k, 2 + 4 * f + k) for f in range(5) for k in range(3))


def _mediapipe75() -> JointLayout:
    names = BLAZEPOSE_NAMES + tuple(f"r_{n}" for n in _HAND_NAMES) + tuple(f"l_{n}" for n in _HAND_NAMES)
    edges = ((0, 1), (1, 2), (2, 3), (3, 7), (0, 4), (4, 5), (5, 6), (6, 8), (0, 9), (0, 10), (0, 11), (0, 12),
             (11, 13), (13, 15), (12, 14), (14, 16), (15, 17), (15, 19), (15, 21), (16, 18), (16, 20), (16, 22),
             (11, 23), (12, 24), (23, 25), (25, 27), (27, 29), (27, 31), (24, 26), (26, 28), (28, 30), (28, 32))
    for root, wrist in ((33, 16), (54, 15)):  # each hand hangs from its own pose wrist
        edges += ((wrist, root),) + tuple((root + a, root + b) for a, b in _HAND_EDGES)
    return _layout("mediapipe75", names, edges, center=0)


MIGA35 = _miga35()
IMIGUE22 = _imigue22()
OPENPOSE67 = _openpose67()
NTU25 = _ntu25()
COCO17 = _coco17()
MEDIAPIPE75 = _mediapipe75()

LAYOUTS: dict[str, JointLayout] = {
    lay.name: lay for lay in (MIGA35, IMIGUE22, OPENPOSE67, NTU25, COCO17, MEDIAPIPE75)
}


def get_layout(name: str) -> JointLayout:
    try:
        return LAYOUTS[name]
    except KeyError:
        raise ValueError(f"unknown joint layout {name!r}; known: {', '.join(sorted(LAYOUTS))}") from None


# ----------------------------------------------------------------------------- conversions


@dataclass(frozen=True)
class Conversion:
    """Target joint j = mean of source joints `sources[j]` (empty: the source lacks it)."""

    source: str
    target: str
    sources: tuple[tuple[int, ...], ...]
    note: str = ""


def _by_name(src: JointLayout, dst: JointLayout, recipe: dict[str, tuple[str, ...]], note: str = "") -> Conversion:
    """A conversion taking each target joint from the source joints of the same name, or a recipe."""
    sources = []
    for name in dst.joint_names:
        names = recipe.get(name, (name,) if name in src.joint_names else ())
        sources.append(tuple(src.index(n) for n in names))
    return Conversion(src.name, dst.name, tuple(sources), note)


def _declared() -> list[Conversion]:
    body = {"neck": ("neck",)}
    to_openpose = {f"{s}_{f}_tip": (f"{s}_{f}_4",) for s in "lr" for f in FINGERS}
    op = OPENPOSE67
    mp_recipe = {**to_openpose, **_BODY25_FROM_BLAZEPOSE}
    return [
        _by_name(MIGA35, IMIGUE22, body),
        _by_name(op, MIGA35, to_openpose),
        _by_name(op, IMIGUE22, to_openpose),
        _by_name(MIGA35, COCO17, {}, "iMiGUE's lower body is undetected: hips, knees and ankles come out missing"),
        _by_name(op, COCO17, {}),
        _by_name(MIGA35, NTU25, _NTU_FROM_BODY25, "approximate: Kinect joints from OpenPose ones (see recipe)"),
        _by_name(MEDIAPIPE75, MIGA35, mp_recipe, _BLAZEPOSE_NOTE),
        _by_name(MEDIAPIPE75, IMIGUE22, mp_recipe, _BLAZEPOSE_NOTE),
    ]


# BODY_25 joints BlazePose lacks by name: the neck and mid-hip are midpoints (OpenPose's own
# neck sits between the shoulders too); the big toe is BlazePose's foot index; the small toes
# have no counterpart and stay undetected.
_BODY25_FROM_BLAZEPOSE: dict[str, tuple[str, ...]] = {
    "neck": ("l_shoulder", "r_shoulder"), "mid_hip": ("l_hip", "r_hip"),
    "l_big_toe": ("l_foot_index",), "r_big_toe": ("r_foot_index",),
}
_BLAZEPOSE_NOTE = ("MediaPipe: neck and mid-hip are the midpoints of the shoulders and hips; fingertips from the "
                   "hand landmarks; small toes missing")


# Kinect v2 joints from BODY_25 + fingertips; the spine and hand centres are midpoints.
_NTU_FROM_BODY25: dict[str, tuple[str, ...]] = {
    "base_spine": ("mid_hip",), "mid_spine": ("neck", "mid_hip"), "neck": ("nose", "neck"), "head": ("nose",),
    "spine_shoulder": ("neck",),
    **{f"{s}_hand": (f"{s}_wrist", f"{s}_middle_tip") for s in "lr"},
    **{f"{s}_hand_tip": (f"{s}_middle_tip",) for s in "lr"},
    **{f"{s}_thumb": (f"{s}_thumb_tip",) for s in "lr"},
    **{f"{s}_foot": (f"{s}_big_toe",) for s in "lr"},
}

CONVERSIONS: dict[tuple[str, str], Conversion] = {(c.source, c.target): c for c in _declared()}


def register_conversion(conversion: Conversion) -> None:
    """Declare another conversion (e.g. a pose estimator's layout onto ours)."""
    src, dst = get_layout(conversion.source), get_layout(conversion.target)
    if len(conversion.sources) != dst.num_joints or any(i >= src.num_joints for s in conversion.sources for i in s):
        raise ValueError(f"conversion {src.name} -> {dst.name} must list source joints for {dst.num_joints} joints")
    CONVERSIONS[(src.name, dst.name)] = conversion


def register_layout(layout: JointLayout) -> None:
    LAYOUTS[layout.name] = layout


def can_convert(src: JointLayout, dst: JointLayout) -> bool:
    return src.name == dst.name or (src.name, dst.name) in CONVERSIONS


def convert(points: np.ndarray, src: JointLayout, dst: JointLayout, score: np.ndarray | None = None):
    """Joints of layout `src` as layout `dst`.

    `points` [..., V, C]. With `score` [..., V] given, returns `(points, score)`: a joint taken
    from one source joint is copied; one made of several is their mean, detected only when all
    of them are (score > 0), with their smallest score; a joint the source lacks gets 0 and
    score 0. Without
    `score`, every target joint must be a single source joint (a selection), else ValueError.
    """
    if src.name == dst.name:
        return points if score is None else (points, score)
    conv = CONVERSIONS.get((src.name, dst.name))
    if conv is None:
        raise ValueError(f"no conversion from layout {src.name} to {dst.name}")
    single = all(len(s) == 1 for s in conv.sources)
    if score is None:
        if not single:
            raise ValueError(f"{src.name} -> {dst.name} averages or lacks joints: pass the scores too")
        return points[..., [s[0] for s in conv.sources], :]
    out = np.zeros(points.shape[:-2] + (dst.num_joints, points.shape[-1]), dtype=points.dtype)
    out_score = np.zeros(score.shape[:-1] + (dst.num_joints,), dtype=score.dtype)
    for j, idx in enumerate(conv.sources):
        if len(idx) == 1:  # a selection: values kept as they are
            out[..., j, :], out_score[..., j] = points[..., idx[0], :], score[..., idx[0]]
            continue
        if not idx:
            continue
        idx = list(idx)
        detected = np.all(score[..., idx] > 0, axis=-1)
        out[..., j, :] = np.where(detected[..., None], points[..., idx, :].mean(axis=-2), 0)
        out_score[..., j] = np.where(detected, score[..., idx].min(axis=-1), 0)
    return out, out_score


def convert_rows(joints: np.ndarray, src: JointLayout, dst: JointLayout) -> np.ndarray:
    """`convert` for per-frame rows [..., V, 3] of (x, y, confidence), as the CSV readers give them."""
    if src.name == dst.name:
        return joints
    points, score = convert(joints[..., :2], src, dst, joints[..., 2])
    return np.concatenate([points, score[..., None]], axis=-1)
