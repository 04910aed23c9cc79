"""Draw a skeleton (any layout) and a face box on a frame, for reports and visual checks.

Colours say the side: the person's right in orange, left in blue, the middle in white, so a
glance shows whether left and right are the person's own (their right appears on the image's
left when they face the camera).
"""

from __future__ import annotations

import cv2
import numpy as np

from microgesture.domain.layouts import JointLayout

RIGHT, LEFT, MIDDLE = (255, 140, 0), (40, 120, 255), (255, 255, 255)


def _colour(name: str) -> tuple[int, int, int]:
    return RIGHT if name.startswith("r_") else LEFT if name.startswith("l_") else MIDDLE


def draw_skeleton(frame: np.ndarray, joints: np.ndarray, layout: JointLayout, *,
                  face: np.ndarray | None = None, thickness: int | None = None) -> np.ndarray:
    """A copy of RGB `frame` [H, W, 3] with `joints` [V, 3] (x, y, confidence; 0 = missing) drawn."""
    out = np.ascontiguousarray(frame.copy())
    h, w = out.shape[:2]
    t = thickness or max(1, round(max(h, w) / 320))
    seen = joints[:, 2] > 0
    pts = np.round(joints[:, :2]).astype(int)
    for i, j in layout.edges:
        if seen[i] and seen[j]:
            colour = _colour(layout.joint_names[j]) if layout.joint_names[i][:2] not in ("l_", "r_") else \
                _colour(layout.joint_names[i])
            cv2.line(out, tuple(pts[i]), tuple(pts[j]), colour, t, cv2.LINE_AA)
    for k in np.flatnonzero(seen):
        cv2.circle(out, tuple(pts[k]), t + 1, _colour(layout.joint_names[k]), -1, cv2.LINE_AA)
    if face is not None and face[4] > 0:
        x0, y0, x1, y1 = (int(round(v)) for v in face[:4])
        cv2.rectangle(out, (x0, y0), (x1, y1), (0, 220, 0), t, cv2.LINE_AA)
    return out
