"""The heatmap modality described as data: its settings (`data.heatmap`), the limbs a layout can
draw and the channel order of a volume. Numpy only; the drawing is data/transforms/heatmap.py.

A volume has one channel per joint of the layout (`joints`), then one per limb (`limbs`): the
layout's graph edges between two different joints, each pair once, in the order of
`JointLayout.edges` (`limb_pairs`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from microgesture.domain.layouts import JointLayout, get_layout
from microgesture.errors import ConfigError


@dataclass(frozen=True)
class HeatmapInput:
    """How heatmap volumes are drawn (the `data.heatmap` config section).

    size x size pixels inside the person's box over the clip, widened by `margin` of its side
    on each side; Gaussians of `sigma` pixels; channels: the layout's joints and/or its limbs.
    `num_frames`: an evenly spaced subset of the sampled frames (None: all). `crop_area`: in
    training, a random square covering this fraction range of the box (PoseC3D used
    [0.56, 1]); [1, 1] turns it off.
    """

    size: int = 56
    sigma: float = 0.6
    joints: bool = True
    limbs: bool = True
    margin: float = 0.1
    num_frames: int | None = None
    crop_area: tuple[float, float] = (1.0, 1.0)

    def check(self, prefix: str = "data.heatmap") -> None:
        if self.size < 1 or not self.sigma > 0 or (self.num_frames is not None and self.num_frames < 1):
            raise ConfigError(f"{prefix}: need size >= 1, sigma > 0 and num_frames >= 1 (or null); got size "
                              f"{self.size}, sigma {self.sigma}, num_frames {self.num_frames}")
        if not 0 <= self.margin <= 2:
            raise ConfigError(f"{prefix}.margin: must be in [0, 2] (a fraction of the box side), got {self.margin}")
        lo, hi = self.crop_area
        if not 0 < lo <= hi <= 1:
            raise ConfigError(f"{prefix}.crop_area: need 0 < low <= high <= 1, got {list(self.crop_area)}")
        if not (self.joints or self.limbs):
            raise ConfigError(f"{prefix}: draw joints, limbs or both (joints: true and/or limbs: true)")

    def channels(self, layout: str, prefix: str = "data.heatmap") -> int:
        """The volume's channel count for `layout`; ConfigError when the layout has no limbs to draw."""
        return check_heatmap_layout(get_layout(layout), joints=self.joints, limbs=self.limbs, key=prefix)


def limb_pairs(layout: JointLayout) -> tuple[tuple[int, int], ...]:
    """The layout's edges that can be drawn as limbs: two different joints, each pair once."""
    seen: set[frozenset[int]] = set()
    pairs = []
    for a, b in layout.edges:
        key = frozenset((a, b))
        if a != b and 0 <= min(a, b) and max(a, b) < layout.num_joints and key not in seen:
            seen.add(key)
            pairs.append((a, b))
    return tuple(pairs)


def check_heatmap_layout(layout: JointLayout, *, joints: bool, limbs: bool, key: str = "data.heatmap") -> int:
    """The channel count K of a heatmap volume for `layout`; ConfigError naming `key` when none can be drawn."""
    if not (joints or limbs):
        raise ConfigError(f"{key}: draw joints, limbs or both (joints: true and/or limbs: true)")
    pairs = limb_pairs(layout) if limbs else ()
    if limbs and not pairs:
        raise ConfigError(f"{key}.limbs: layout {layout.name!r} has no limb list (no edge between two joints in "
                          "JointLayout.edges); set limbs: false or use a layout with edges")
    return (layout.num_joints if joints else 0) + len(pairs)


def heatmap_flip_permutation(layout: JointLayout, *, joints: bool = True, limbs: bool = True) -> np.ndarray:
    """Channel order of the mirrored volume: joints swapped by `flip_pairs`, limbs by their swapped ends."""
    perm = layout.flip_permutation()
    parts = [perm] if joints else []
    if limbs:
        pairs = limb_pairs(layout)
        index = {frozenset(p): i for i, p in enumerate(pairs)}
        try:
            swapped = [index[frozenset((perm[a], perm[b]))] for a, b in pairs]
        except KeyError:
            raise ValueError(f"layout {layout.name}: a limb's mirror image is not a limb (edges not symmetric)") from None
        parts.append(np.asarray(swapped) + (layout.num_joints if joints else 0))
    return np.concatenate(parts).astype(np.int64)
