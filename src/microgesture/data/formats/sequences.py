"""A whole video's skeleton sequence, read again from the file an importer took it from.

Annotation files (format v2) keep, per video, `skeleton_path` and `skeleton_format`
(annotations.py): `miga_csv` is a `<vid>_light_hand.csv` (also what `extract-pose` writes),
`openpose_json` a folder of per-frame OpenPose JSON files. `read_sequence` gives the frames in
any layout the source converts to; online recognition slides its windows over them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from microgesture.data.formats.annotations import resolve_path
from microgesture.domain.layouts import MIGA35, OPENPOSE67, can_convert, convert_rows, get_layout
from microgesture.errors import DataError


@dataclass
class Sequence:
    """Per-frame joints of one video: `frames` [T] (consecutive, from 0), `joints` [T, V, 3]."""

    video_id: int
    frames: np.ndarray
    joints: np.ndarray
    layout: str
    fps: float | None = None
    img_shape: tuple[int, int] | None = None  # (h, w)

    @property
    def num_frames(self) -> int:
        return len(self.frames)


def _dense(frames: np.ndarray, joints: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows for every frame 0..last (frames a file skips are undetected: zeros)."""
    total = int(frames[-1]) + 1 if len(frames) else 0
    out = np.zeros((total,) + joints.shape[1:], dtype=np.float32)
    out[frames] = joints
    return np.arange(total, dtype=np.int64), out


def read_sequence(path: str | Path, fmt: str, layout: str = "miga35", *, video_id: int = -1) -> Sequence:
    """The whole sequence stored at `path` in format `fmt`, converted to `layout`."""
    path = Path(path)
    target = get_layout(layout)
    if fmt == "miga_csv":
        from microgesture.data.formats.miga import read_skeleton

        frames, joints = read_skeleton(path)
        source = MIGA35
    elif fmt == "openpose_json":
        from microgesture.data.formats.openpose import read_openpose_folder

        _, frames, joints, _ = read_openpose_folder(path, None if video_id < 0 else video_id)
        source = OPENPOSE67
    else:
        raise DataError(path, f"skeleton format {fmt!r} is not miga_csv or openpose_json")
    if not can_convert(source, target):
        raise DataError(path, f"{source.name} joints cannot be converted to layout {layout}")
    frames, dense = _dense(frames, convert_rows(joints, source, target))
    return Sequence(video_id, frames, dense, target.name)


def video_sequence(data: dict[str, Any], video: dict[str, Any], layout: str = "miga35") -> Sequence:
    """The sequence of one record of an annotation file's `videos` table."""
    where = f"videos: video {video.get('video_id')}"
    path = resolve_path(data, video.get("skeleton_path"))
    if path is None or video.get("skeleton_format") is None:
        raise DataError(data.get("meta", {}).get("path"), "no skeleton_path/skeleton_format: re-import the "
                        "dataset with this version to read whole videos", where)
    if not path.exists():
        raise DataError(path, "skeleton file not found (moved since the import? see --video-root)", where)
    seq = read_sequence(path, video["skeleton_format"], layout, video_id=int(video["video_id"]))
    seq.fps = video.get("fps")
    seq.img_shape = tuple(video["img_shape"]) if video.get("img_shape") else None
    return seq
