"""The one annotation format for every dataset.

A pickle compatible with PYSKL's skeleton annotations::

    {'split': {'train': [frame_dir, ...], 'val': [...], 'test': [...]},
     'annotations': [clip, ...],
     'meta': {'format': 'microgesture-annotations', 'version': 1, 'classes': [...], ...}}

Each clip is a dict with PYSKL's keys
    frame_dir (str, unique: '<vid:04d>_<row>'), label (int, -1 when unknown),
    total_frames (int), img_shape (h, w), original_shape (h, w),
    keypoint float32 [M, T, V, 2] (pixels), keypoint_score float32 [M, T, V]
and ours
    video_id (int), subject_id (int, -1 unknown), start_frame / end_frame (ints, inclusive,
    frame indices in the source video), emotion (1 win, 0 lose, -1 unknown),
    video_path (str or None; relative paths are relative to the annotation file's folder),
    layout (joint layout name, see `layouts.py`).
"""

from __future__ import annotations

import pickle
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from microgesture.data.layouts import LAYOUTS, get_layout
from microgesture.errors import DataError
from microgesture.utils.io import write_pickle

FORMAT_NAME = "microgesture-annotations"
FORMAT_VERSION = 1

REQUIRED_KEYS: dict[str, type | tuple[type, ...]] = {
    "frame_dir": str,
    "label": (int, np.integer),
    "total_frames": (int, np.integer),
    "img_shape": (tuple, list),
    "keypoint": np.ndarray,
    "keypoint_score": np.ndarray,
}
# Our extra fields and the value used when a PYSKL file lacks them.
OPTIONAL_DEFAULTS: dict[str, Any] = {
    "video_id": -1,
    "subject_id": -1,
    "start_frame": 0,
    "end_frame": None,  # start_frame + total_frames - 1
    "emotion": -1,
    "video_path": None,
    "layout": None,  # inferred from V when unambiguous
    "original_shape": None,  # = img_shape
}


def make_clip(
    *,
    frame_dir: str,
    label: int,
    keypoint: np.ndarray,
    keypoint_score: np.ndarray,
    img_shape: tuple[int, int],
    layout: str,
    video_id: int = -1,
    subject_id: int = -1,
    start_frame: int = 0,
    emotion: int = -1,
    video_path: str | None = None,
) -> dict[str, Any]:
    """Build one clip dict with every field filled and arrays in canonical dtype/shape."""
    keypoint = np.asarray(keypoint, dtype=np.float32)
    keypoint_score = np.asarray(keypoint_score, dtype=np.float32)
    if keypoint.ndim == 3:  # [T, V, C] for one person
        keypoint, keypoint_score = keypoint[None], keypoint_score[None]
    total = int(keypoint.shape[1])
    return {
        "frame_dir": frame_dir,
        "label": int(label),
        "total_frames": total,
        "img_shape": (int(img_shape[0]), int(img_shape[1])),
        "original_shape": (int(img_shape[0]), int(img_shape[1])),
        "keypoint": keypoint,
        "keypoint_score": keypoint_score,
        "video_id": int(video_id),
        "subject_id": int(subject_id),
        "start_frame": int(start_frame),
        "end_frame": int(start_frame) + total - 1,
        "emotion": int(emotion),
        "video_path": video_path,
        "layout": layout,
    }


def clip_problems(clip: Any, num_classes: int | None = None) -> list[str]:
    """Every problem with one clip, as 'field: what is wrong' strings (empty when clean)."""
    if not isinstance(clip, dict):
        return [f"clip is a {type(clip).__name__}, expected a dict"]
    problems = []
    for key, kind in REQUIRED_KEYS.items():
        if key not in clip:
            problems.append(f"{key}: missing")
        elif not isinstance(clip[key], kind):
            problems.append(f"{key}: is {type(clip[key]).__name__}, expected {_kind_name(kind)}")
    if problems:
        return problems
    kp, score = clip["keypoint"], clip["keypoint_score"]
    total = int(clip["total_frames"])
    if kp.ndim != 4 or kp.shape[-1] not in (2, 3):
        problems.append(f"keypoint: shape {kp.shape}, expected [M, T, V, 2]")
    elif score.shape != kp.shape[:3]:
        problems.append(f"keypoint_score: shape {score.shape}, expected {kp.shape[:3]} to match keypoint")
    else:
        if kp.shape[1] != total:
            problems.append(f"total_frames: {total} but keypoint has {kp.shape[1]} frames")
        if total <= 0:
            problems.append("total_frames: clip has no frames")
        bad = ~np.isfinite(kp).all(axis=(0, 2, 3)) | ~np.isfinite(score).all(axis=(0, 2))
        if bad.any():
            problems.append(f"keypoint: NaN or inf in frames {_frames(np.flatnonzero(bad))}")
        elif total > 0 and not (score > 0).any() and not np.any(kp != 0):
            problems.append("keypoint: every joint is zero in every frame (no detection)")
        layout = clip.get("layout")
        if layout is not None:
            if layout not in LAYOUTS:
                problems.append(f"layout: unknown layout {layout!r}")
            elif get_layout(layout).num_joints != kp.shape[2]:
                problems.append(
                    f"layout: {layout} has {get_layout(layout).num_joints} joints, keypoint has {kp.shape[2]}"
                )
    label = int(clip["label"])
    if label < -1 or (num_classes is not None and label >= num_classes):
        upper = "" if num_classes is None else f"..{num_classes - 1}"
        problems.append(f"label: {label} is not a class index (expected -1 or 0{upper})")
    shape = clip["img_shape"]
    if len(shape) != 2 or min(int(s) for s in shape) <= 0:
        problems.append(f"img_shape: {shape}, expected (height, width)")
    start, end = clip.get("start_frame"), clip.get("end_frame")
    if start is not None and end is not None and end - start + 1 != total:
        problems.append(f"end_frame: [{start}, {end}] spans {end - start + 1} frames, total_frames is {total}")
    return problems


def _kind_name(kind) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(k.__name__ for k in kinds)


def _frames(idx: np.ndarray) -> str:
    shown = ", ".join(str(i) for i in idx[:5])
    return shown + (f" and {len(idx) - 5} more" if len(idx) > 5 else "")


def _fill_defaults(clip: dict[str, Any]) -> dict[str, Any]:
    for key, default in OPTIONAL_DEFAULTS.items():
        clip.setdefault(key, default)
    if clip["end_frame"] is None:
        clip["end_frame"] = int(clip["start_frame"]) + int(clip["total_frames"]) - 1
    if clip["original_shape"] is None:
        clip["original_shape"] = tuple(clip["img_shape"])
    if clip["layout"] is None:
        matches = [n for n, lay in LAYOUTS.items() if lay.num_joints == clip["keypoint"].shape[2]]
        clip["layout"] = matches[0] if len(matches) == 1 else None
    return clip


def dataset_problems(data: Any, num_classes: int | None = None) -> list[str]:
    """Every problem with a whole annotation object, each prefixed by where it is."""
    if not isinstance(data, dict) or "annotations" not in data:
        return ["top level: expected a dict with 'annotations' (and 'split')"]
    clips = data["annotations"]
    if not isinstance(clips, list):
        return [f"annotations: is {type(clips).__name__}, expected a list"]
    problems = []
    names: set[str] = set()
    for i, clip in enumerate(clips):
        name = clip.get("frame_dir", f"#{i}") if isinstance(clip, dict) else f"#{i}"
        problems += [f"annotations[{i}] ({name}): {p}" for p in clip_problems(clip, num_classes)]
        if name in names:
            problems.append(f"annotations[{i}] ({name}): frame_dir: duplicate name")
        names.add(name)
    split = data.get("split", {})
    if not isinstance(split, dict):
        return problems + [f"split: is {type(split).__name__}, expected a dict"]
    for key, members in split.items():
        missing = [m for m in members if m not in names]
        if missing:
            problems.append(f"split[{key!r}]: {len(missing)} names not in annotations, e.g. {missing[0]!r}")
    for a, b in (("train", "test"), ("val", "test"), ("train", "val")):
        shared = set(split.get(a, ())) & set(split.get(b, ()))
        if shared:
            problems.append(f"split: {len(shared)} clips are in both {a!r} and {b!r}, e.g. {sorted(shared)[0]!r}")
    return problems


def load_annotations(path: str | Path, num_classes: int | None = None) -> dict[str, Any]:
    """Read and validate an annotation pickle (ours or PYSKL's). Raises DataError naming the problem."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "annotation file not found")
    try:
        with open(path, "rb") as fh:
            data = pickle.load(fh)
    except Exception as exc:  # pickle raises many types on foreign or truncated files
        raise DataError(path, f"not a readable annotation pickle ({type(exc).__name__}: {exc})") from exc
    problems = dataset_problems(data, num_classes)
    if problems:
        shown = "\n  ".join(problems[:20])
        more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
        raise DataError(path, f"{len(problems)} problem(s):\n  {shown}{more}")
    data.setdefault("split", {})
    data.setdefault("meta", {})
    for clip in data["annotations"]:
        _fill_defaults(clip)
    data["meta"]["path"] = str(path)
    return data


def save_annotations(
    path: str | Path,
    clips: list[dict[str, Any]],
    split: dict[str, list[str]],
    meta: dict[str, Any] | None = None,
) -> None:
    """Validate, then write atomically: a failed save leaves any old file untouched."""
    data = {
        "split": {k: list(v) for k, v in split.items()},
        "annotations": clips,
        "meta": {"format": FORMAT_NAME, "version": FORMAT_VERSION, **(meta or {})},
    }
    problems = dataset_problems(data)
    if problems:
        raise DataError(path, "refusing to write invalid annotations:\n  " + "\n  ".join(problems[:20]))
    write_pickle(path, data)


def select(data: dict[str, Any], split: str) -> list[dict[str, Any]]:
    """The clips of one split, in the split's order."""
    if split not in data.get("split", {}):
        where = data.get("meta", {}).get("path")
        raise DataError(where, f"split {split!r} not found; available: {sorted(data.get('split', {}))}")
    by_name = {c["frame_dir"]: c for c in data["annotations"]}
    return [by_name[n] for n in data["split"][split]]


def resolve_video_path(data: dict[str, Any], clip: dict[str, Any]) -> Path | None:
    """A clip's video as an absolute path (relative paths are relative to the annotation file)."""
    video = clip.get("video_path")
    if video is None:
        return None
    video = Path(video)
    if not video.is_absolute() and data.get("meta", {}).get("path"):
        video = Path(data["meta"]["path"]).parent / video
    return video


def summarize(clips: Iterable[dict[str, Any]]) -> dict[str, int]:
    clips = list(clips)
    return {
        "clips": len(clips),
        "videos": len({c.get("video_id") for c in clips}),
        "subjects": len({c.get("subject_id") for c in clips}),
        "frames": int(sum(c["total_frames"] for c in clips)),
    }
