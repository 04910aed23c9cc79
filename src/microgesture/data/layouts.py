"""Joint layouts as data: names, the anatomical graph, bone pairs and left/right flip pairs.

OpenPose names sides from the person's point of view: "R" joints are the person's right,
which appear on the image's left. The official MiGA reader calls BODY_25 index 2
"ShoulderLeft"; it is OpenPose's RShoulder, and we keep OpenPose's semantics.
"""

from __future__ import annotations

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
    `parents[j]` is the next joint towards `center` (the center is its own parent): a bone is
    `joint - parent`. `flip_pairs` are (left, right) joints swapped by a horizontal flip.
    `source_indices[j]` says which joint of `source` this joint is (None for a native layout).
    """

    name: str
    joint_names: tuple[str, ...]
    edges: tuple[tuple[int, int], ...]
    center: int
    flip_pairs: tuple[tuple[int, int], ...]
    source: str | None = None
    source_indices: tuple[int, ...] | None = None
    parents: tuple[int, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "parents", _parents_from_edges(self.num_joints, self.edges, self.center, self.name))

    @property
    def num_joints(self) -> int:
        return len(self.joint_names)

    @property
    def bone_pairs(self) -> tuple[tuple[int, int], ...]:
        """(child, parent) for every joint; the center pairs with itself (a zero bone)."""
        return tuple((j, p) for j, p in enumerate(self.parents))

    def index(self, name: str) -> int:
        return self.joint_names.index(name)

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


def _parents_from_edges(n: int, edges, center: int, name: str) -> tuple[int, ...]:
    """Breadth-first tree from the center; fails loudly if the graph is not connected."""
    neighbours: list[list[int]] = [[] for _ in range(n)]
    for i, j in edges:
        neighbours[i].append(j)
        neighbours[j].append(i)
    parents = [-1] * n
    parents[center] = center
    queue = [center]
    while queue:
        node = queue.pop(0)
        for nb in sorted(neighbours[node]):
            if parents[nb] == -1:
                parents[nb] = node
                queue.append(nb)
    isolated = [i for i, p in enumerate(parents) if p == -1]
    if isolated:
        raise ValueError(f"layout {name}: joints {isolated} are not connected to the graph")
    return tuple(parents)


def _side_pairs(names: tuple[str, ...]) -> tuple[tuple[int, int], ...]:
    pairs = []
    for i, n in enumerate(names):
        if n.startswith("l_"):
            j = names.index("r_" + n[2:])
            pairs.append((i, j))
    return tuple(pairs)


def _miga35() -> JointLayout:
    names = BODY25_NAMES + tuple(f"r_{f}_tip" for f in FINGERS) + tuple(f"l_{f}_tip" for f in FINGERS)
    edges = BODY25_EDGES + tuple((4, 25 + k) for k in range(5)) + tuple((7, 30 + k) for k in range(5))
    return JointLayout("miga35", names, edges, center=1, flip_pairs=_side_pairs(names))


def _imigue22() -> JointLayout:
    body = (0, 1, 2, 3, 4, 5, 6, 7, 15, 16, 17, 18)
    tips = tuple(range(25, 35))
    names = tuple(MIGA35.joint_names[i] for i in body + tips)
    # nose0 neck1 rsh2 relb3 rwr4 lsh5 lelb6 lwr7 reye8 leye9 rear10 lear11 rtips12-16 ltips17-21
    edges = ((0, 1), (1, 2), (2, 3), (3, 4), (1, 5), (5, 6), (6, 7), (0, 8), (8, 10), (0, 9), (9, 11))
    edges += tuple((4, 12 + k) for k in range(5)) + tuple((7, 17 + k) for k in range(5))
    return JointLayout(
        "imigue22", names, edges, center=1, flip_pairs=_side_pairs(names),
        source="miga35", source_indices=body + tips,
    )


def _body25_hands() -> JointLayout:
    hand_names = ["wrist_hand"] + [f"{f}_{k}" for f in FINGERS for k in range(1, 5)]
    names = BODY25_NAMES + tuple(f"r_{n}" for n in hand_names) + tuple(f"l_{n}" for n in hand_names)
    hand_edges = [(0, 1 + 4 * f) for f in range(5)] + [(1 + 4 * f + k, 2 + 4 * f + k) for f in range(5) for k in range(3)]
    edges = BODY25_EDGES
    for root, wrist in ((25, 4), (46, 7)):  # hand roots hang from the body's wrists
        edges += ((wrist, root),) + tuple((root + a, root + b) for a, b in hand_edges)
    return JointLayout("openpose67", names, edges, center=1, flip_pairs=_side_pairs(names))


MIGA35 = _miga35()
IMIGUE22 = _imigue22()
OPENPOSE67 = _body25_hands()

LAYOUTS: dict[str, JointLayout] = {lay.name: lay for lay in (MIGA35, IMIGUE22, OPENPOSE67)}


def get_layout(name: str) -> JointLayout:
    try:
        return LAYOUTS[name]
    except KeyError:
        raise ValueError(f"unknown joint layout {name!r}; known: {', '.join(sorted(LAYOUTS))}") from None


def convert(keypoint: np.ndarray, src: JointLayout, dst: JointLayout) -> np.ndarray:
    """Select `dst`'s joints from an array whose joint axis (-2 for [...,V,C], -1 for scores) is `src`.

    Works on keypoints [..., V, C]; for scores [..., V] pass `scores[..., None]` and squeeze.
    """
    if src.name == dst.name:
        return keypoint
    if dst.source != src.name or dst.source_indices is None:
        raise ValueError(f"no conversion from layout {src.name} to {dst.name}")
    return keypoint[..., list(dst.source_indices), :]
