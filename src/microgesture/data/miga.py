"""The MiGA challenge per-video layout (DOMAIN.md section 2).

`<root>/<vid:04d>/<vid>_label.csv`: no header, rows `class,start_frame,end_frame` (raw iMiGUE code
1..31 or 99; frames inclusive). `<vid>_light_hand.csv`: no header, column 0 the frame index, then
35 joints x (x, y, confidence) in the `miga35` layout. `<vid>.mp4`: the RGB video.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from microgesture.data.layouts import MIGA35
from microgesture.utils.io import atomic_open


def video_folder(root: str | Path, video_id: int) -> Path:
    return Path(root) / f"{video_id:04d}"


def label_path(root: str | Path, video_id: int) -> Path:
    return video_folder(root, video_id) / f"{video_id:04d}_label.csv"


def skeleton_path(root: str | Path, video_id: int) -> Path:
    return video_folder(root, video_id) / f"{video_id:04d}_light_hand.csv"


def rgb_path(root: str | Path, video_id: int) -> Path:
    return video_folder(root, video_id) / f"{video_id:04d}.mp4"


def write_labels(path: str | Path, rows: Sequence[tuple[int, int, int]]) -> None:
    """Write `(raw_class, start_frame, end_frame)` rows, no header, atomically."""
    with atomic_open(path, "w", newline="") as fh:
        for raw, start, end in rows:
            fh.write(f"{int(raw)},{int(start)},{int(end)}\n")


def write_skeleton(path: str | Path, frame_indices: np.ndarray, joints: np.ndarray) -> None:
    """Write per-frame joints [T, 35, 3] (x, y, confidence) with their frame indices, atomically.

    Values are written with 6 significant digits, as OpenPose prints them; exact zeros stay "0".
    """
    joints = np.asarray(joints, dtype=np.float64)
    if joints.ndim != 3 or joints.shape[1:] != (MIGA35.num_joints, 3):
        raise ValueError(f"joints must be [T, {MIGA35.num_joints}, 3], got {joints.shape}")
    flat = joints.reshape(len(joints), -1)
    with atomic_open(path, "w", newline="") as fh:
        for idx, row in zip(frame_indices, flat):
            fh.write(f"{int(idx)}," + ",".join(f"{v:.6g}" for v in row) + "\n")
