"""Modalities by name: what a sample can carry and what kind of input each one is.

A model config names the modalities its streams read; the data pipeline makes each named one
(data/transforms/pipelines.py) and an encoder whose input spec has the same kind reads it.
"""

from __future__ import annotations

MODALITIES: dict[str, str] = {
    "joint": "skeleton",  # joint coordinates (+ confidence)
    "bone": "skeleton",  # joint - parent
    "joint_motion": "skeleton",  # joint(t + 1) - joint(t)
    "bone_motion": "skeleton",
    "rgb": "video",  # frames at the skeleton's sampled instants
    "heatmap": "heatmap",  # joint and limb pseudo-heatmap volumes drawn from the keypoints (PoseC3D)
    "face": "video",  # aligned 112x112 face-track crops at the same instants (+ face_missing)
    "rgb_crops": "video",  # skeleton-guided crops tiled 2x2: right hand, left hand, face, upper body
    "rgb_hands": "video",  # the hands, tiled 2x2: close (top row) and with their surroundings (bottom row)
    "rgb_face": "video",  # the face crop alone
}
SKELETON_STREAMS: tuple[str, ...] = tuple(m for m, kind in MODALITIES.items() if kind == "skeleton")
