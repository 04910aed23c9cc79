"""The one annotation format for every dataset (version 2).

A pickle compatible with PYSKL's skeleton annotations::

    {'split': {'train': [frame_dir, ...], 'val': [...], 'test': [...]},
     'annotations': [clip, ...],
     'videos': [video, ...],
     'meta': {'format': 'microgesture-annotations', 'version': 2, 'classes': [...], ...}}

Each clip is a dict with PYSKL's keys
    frame_dir (str, unique: '<vid:04d>_<row>'), label (int, -1 when unknown),
    total_frames (int), img_shape (h, w), original_shape (h, w),
    keypoint float32 [M, T, V, 2] (pixels), keypoint_score float32 [M, T, V]
and ours
    video_id (int), subject_id (int, -1 unknown), start_frame / end_frame (ints, inclusive,
    frame indices in the source video), emotion (1 win, 0 lose, -1 unknown),
    video_path (str or None), layout (joint layout name, see domain/layouts.py).

Each video record (new in version 2) describes one untrimmed source video:
    video_id, subject_id, emotion (video-level label: 1 win, 0 lose, -1 unknown), fps,
    num_frames (frames of the whole skeleton sequence), img_shape (h, w), video_path,
    skeleton_path + skeleton_format (where the whole skeleton sequence is read from again:
    'miga_csv', 'openpose_json', 'smg_csv', or None), layout, labelled_segments (label rows in the
    source), and optionally face_video_path (the video's face track `<vid>_face.mp4`, with its
    `<vid>_face.csv` beside it: data/formats/facetrack.py; absent or None when there is none).
    At load time each clip gets its video's `face_video_path` (None when its video has none).
    An importer may add fields of its own (SMG: `state_labels`).

Paths are relative to the annotation file's folder (absolute ones are kept), so a file moved
together with its videos keeps working; `load_annotations(video_root=...)` resolves them under
another folder instead. Version 1 files (no `videos`) and plain PYSKL pickles load too: their
video table is made from the clips. Pickles are read with a restricted unpickler (numpy arrays
and builtin containers only), so a crafted file cannot run code.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from microgesture.domain.layouts import LAYOUTS, get_layout
from microgesture.errors import DataError
from microgesture.utils.io import write_pickle
from microgesture.utils.safe_pickle import load_pickle

FORMAT_NAME = "microgesture-annotations"
FORMAT_VERSION = 2

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
VIDEO_KEYS = ("video_id", "subject_id", "emotion", "fps", "num_frames", "img_shape", "video_path",
              "skeleton_path", "skeleton_format", "layout", "labelled_segments")
SKELETON_FORMATS = ("miga_csv", "openpose_json", "smg_csv")


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


def make_video(
    *,
    video_id: int,
    subject_id: int = -1,
    emotion: int = -1,
    fps: float | None = None,
    num_frames: int | None = None,
    img_shape: tuple[int, int] | None = None,
    video_path: str | None = None,
    skeleton_path: str | None = None,
    skeleton_format: str | None = None,
    layout: str | None = None,
    labelled_segments: int | None = None,
    face_video_path: str | None = None,
) -> dict[str, Any]:
    """One video record (see module doc) with plain Python values; `face_video_path` only when given."""
    record = {
        "video_id": int(video_id), "subject_id": int(subject_id), "emotion": int(emotion),
        "fps": None if fps is None else float(fps), "num_frames": None if num_frames is None else int(num_frames),
        "img_shape": None if img_shape is None else (int(img_shape[0]), int(img_shape[1])),
        "video_path": video_path, "skeleton_path": skeleton_path, "skeleton_format": skeleton_format,
        "layout": layout, "labelled_segments": None if labelled_segments is None else int(labelled_segments),
    }
    if face_video_path is not None:
        record["face_video_path"] = str(face_video_path)
    return record


def clip_problems(clip: Any, num_classes: int | None = None) -> list[str]:
    """Every problem with one clip, as 'field: what is wrong' strings (empty when clean)."""
    if not isinstance(clip, dict):
        return [f"clip is a {type(clip).__name__}, expected a dict"]
    problems = []
    for key, kind in REQUIRED_KEYS.items():
        if key not in clip:
            problems.append(f"{key}: missing" + _three_d_hint(clip, key))
        elif not isinstance(clip[key], kind):
            problems.append(f"{key}: is {type(clip[key]).__name__}, expected {_kind_name(kind)}")
    if problems:
        return problems
    problems += _keypoint_problems(clip)
    label = int(clip["label"])
    if label < -1 or (num_classes is not None and label >= num_classes):
        upper = "" if num_classes is None else f"..{num_classes - 1}"
        problems.append(f"label: {label} is not a class index (expected -1 or 0{upper})")
    shape = clip["img_shape"]
    if len(shape) != 2 or min(int(s) for s in shape) <= 0:
        problems.append(f"img_shape: {shape}, expected (height, width)")
    start, end = clip.get("start_frame"), clip.get("end_frame")
    if start is not None and end is not None and end - start + 1 != int(clip["total_frames"]):
        problems.append(f"end_frame: [{start}, {end}] spans {end - start + 1} frames, "
                        f"total_frames is {clip['total_frames']}")
    return problems


def _three_d_hint(clip: dict[str, Any], key: str) -> str:
    kp = clip.get("keypoint")
    if key != "keypoint_score" or not isinstance(kp, np.ndarray) or kp.ndim != 4 or kp.shape[-1] != 3:
        return ""
    return " (3-D keypoints without scores, as in PYSKL's NTU files: `microgesture data import pyskl --project xy`)"


def _keypoint_problems(clip: dict[str, Any]) -> list[str]:
    kp, score = clip["keypoint"], clip["keypoint_score"]
    total = int(clip["total_frames"])
    if kp.ndim != 4 or kp.shape[-1] not in (2, 3):
        return [f"keypoint: shape {kp.shape}, expected [M, T, V, 2]"]
    if score.shape != kp.shape[:3]:
        return [f"keypoint_score: shape {score.shape}, expected {kp.shape[:3]} to match keypoint"]
    problems = []
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
            problems.append(f"layout: {layout} has {get_layout(layout).num_joints} joints, keypoint has {kp.shape[2]}")
    return problems


def video_problems(video: Any) -> list[str]:
    """Every problem with one video record."""
    if not isinstance(video, dict):
        return [f"video record is a {type(video).__name__}, expected a dict"]
    problems = [f"{key}: missing" for key in VIDEO_KEYS if key not in video]
    if problems:
        return problems
    for key in ("video_id", "subject_id", "emotion"):
        if not isinstance(video[key], (int, np.integer)):
            problems.append(f"{key}: is {type(video[key]).__name__}, expected int")
    if not problems and video["emotion"] not in (-1, 0, 1):
        problems.append(f"emotion: {video['emotion']} is not a video label (expected 1 win, 0 lose, -1 unknown)")
    fps = video["fps"]
    if fps is not None and not (isinstance(fps, (int, float)) and np.isfinite(fps) and fps > 0):
        problems.append(f"fps: {fps!r}, expected a positive number or None")
    frames = video["num_frames"]
    if frames is not None and not (isinstance(frames, (int, np.integer)) and frames >= 0):
        problems.append(f"num_frames: {frames!r}, expected an integer >= 0 or None")
    fmt = video["skeleton_format"]
    if fmt is not None and fmt not in SKELETON_FORMATS:
        problems.append(f"skeleton_format: {fmt!r} is not one of {', '.join(SKELETON_FORMATS)} (or None)")
    if (fmt is None) != (video["skeleton_path"] is None):
        problems.append("skeleton_path: give both skeleton_path and skeleton_format, or neither")
    face = video.get("face_video_path")
    if face is not None and not (isinstance(face, str) and face.endswith("_face.mp4")):
        problems.append(f"face_video_path: {face!r}, expected None or the path of a <vid>_face.mp4 (a str)")
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


def num_classes_of(data: Any) -> int | None:
    """The class count an annotation object declares in `meta.classes` (None when it declares none)."""
    meta = data.get("meta") if isinstance(data, dict) else None
    classes = meta.get("classes") if isinstance(meta, dict) else None
    return len(classes) if isinstance(classes, (list, tuple)) and classes else None


def dataset_problems(data: Any, num_classes: int | None = None) -> list[str]:
    """Every problem with a whole annotation object, each prefixed by where it is.

    Labels are checked against `num_classes`, else against the classes the file declares.
    """
    if not isinstance(data, dict) or "annotations" not in data:
        return ["top level: expected a dict with 'annotations' (and 'split')"]
    clips = data["annotations"]
    if not isinstance(clips, list):
        return [f"annotations: is {type(clips).__name__}, expected a list"]
    num_classes = num_classes if num_classes is not None else num_classes_of(data)
    problems = []
    names: set[str] = set()
    for i, clip in enumerate(clips):
        name = clip.get("frame_dir", f"#{i}") if isinstance(clip, dict) else f"#{i}"
        problems += [f"annotations[{i}] ({name}): {p}" for p in clip_problems(clip, num_classes)]
        if name in names:
            problems.append(f"annotations[{i}] ({name}): frame_dir: duplicate name")
        names.add(name)
    problems += _videos_problems(data)
    return problems + _split_problems(data.get("split", {}), names)


def _videos_problems(data: dict) -> list[str]:
    videos = data.get("videos")
    if videos is None:
        return []
    if not isinstance(videos, list):
        return [f"videos: is {type(videos).__name__}, expected a list"]
    problems, seen = [], set()
    for i, video in enumerate(videos):
        problems += [f"videos[{i}]: {p}" for p in video_problems(video)]
        vid = video.get("video_id") if isinstance(video, dict) else None
        if vid in seen:
            problems.append(f"videos[{i}]: video_id {vid} appears twice")
        seen.add(vid)
    orphans = sorted({c.get("video_id") for c in data["annotations"] if isinstance(c, dict)
                      and c.get("video_id", -1) >= 0} - seen)
    if videos and orphans:
        problems.append(f"videos: {len(orphans)} video id(s) of clips have no video record, e.g. {orphans[0]}")
    return problems


def _split_problems(split: Any, names: set[str]) -> list[str]:
    if not isinstance(split, dict):
        return [f"split: is {type(split).__name__}, expected a dict"]
    problems = []
    for key, members in split.items():
        missing = [m for m in members if m not in names]
        if missing:
            problems.append(f"split[{key!r}]: {len(missing)} names not in annotations, e.g. {missing[0]!r}")
    for a, b in (("train", "test"), ("val", "test"), ("train", "val")):
        shared = set(split.get(a, ())) & set(split.get(b, ()))
        if shared:
            problems.append(f"split: {len(shared)} clips are in both {a!r} and {b!r}, e.g. {sorted(shared)[0]!r}")
    return problems


def read_annotation_pickle(path: str | Path) -> Any:
    """The raw object in an annotation pickle, read without running any code in it."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "annotation file not found" if not path.exists() else "is not a file")
    with open(path, "rb") as fh:
        head = fh.read(1)
    if head != b"\x80":  # every pickle since protocol 2 starts with PROTO
        raise DataError(path, "not a pickle file (it does not start like one); expected an annotation "
                              "pickle from `data import`")
    return load_pickle(path, what="annotation pickle")


def load_annotations(path: str | Path, num_classes: int | None = None,
                     video_root: str | Path | None = None) -> dict[str, Any]:
    """Read and validate an annotation pickle (ours, version 1 or 2, or PYSKL's).

    Raises DataError naming every problem (the first 20). `video_root` resolves relative video
    and skeleton paths under that folder instead of the annotation file's.
    """
    path = Path(path)
    data = read_annotation_pickle(path)
    problems = dataset_problems(data, num_classes)
    if problems:
        shown = "\n  ".join(problems[:20])
        more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
        raise DataError(path, f"{len(problems)} problem(s):\n  {shown}{more}")
    data.setdefault("split", {})
    data.setdefault("meta", {})
    for clip in data["annotations"]:
        _fill_defaults(clip)
    if not data.get("videos"):
        data["videos"] = videos_from_clips(data["annotations"])
    faces = {int(v["video_id"]): v.get("face_video_path") for v in data["videos"]}
    for clip in data["annotations"]:
        clip.setdefault("face_video_path", faces.get(int(clip["video_id"])))
    data["meta"]["path"] = str(path)
    data["meta"]["video_root"] = str(video_root if video_root is not None else path.parent)
    return data


def videos_from_clips(clips: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """A version-1 file's video table: one record per video id, from its clips (fps unknown)."""
    first: dict[int, dict[str, Any]] = {}
    for clip in clips:
        vid = int(clip.get("video_id", -1))
        if vid >= 0:
            first.setdefault(vid, clip)
    return [make_video(video_id=vid, subject_id=c.get("subject_id", -1), emotion=c.get("emotion", -1),
                       img_shape=tuple(c["img_shape"]), video_path=c.get("video_path"), layout=c.get("layout"))
            for vid, c in sorted(first.items())]


def save_annotations(
    path: str | Path,
    clips: list[dict[str, Any]],
    split: dict[str, list[str]],
    meta: dict[str, Any] | None = None,
    videos: list[dict[str, Any]] | None = None,
) -> None:
    """Validate, then write atomically: a failed save leaves any old file untouched."""
    meta = {k: v for k, v in (meta or {}).items() if k not in ("path", "video_root")}
    data = {
        "split": {k: list(v) for k, v in split.items()},
        "annotations": clips,
        "videos": list(videos) if videos is not None else videos_from_clips(clips),
        "meta": {"format": FORMAT_NAME, **meta, "version": FORMAT_VERSION},
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


def resolve_path(data: dict[str, Any], relative: str | None) -> Path | None:
    """A path stored in the file, made absolute (relative ones are under the video root)."""
    if relative is None:
        return None
    path = Path(relative)
    root = data.get("meta", {}).get("video_root")
    if not path.is_absolute() and root:
        path = Path(root) / path
    return path


def resolve_video_path(data: dict[str, Any], clip: dict[str, Any]) -> Path | None:
    """A clip's (or video record's) video as an absolute path."""
    return resolve_path(data, clip.get("video_path"))


def resolve_face_video_path(data: dict[str, Any], record: dict[str, Any]) -> Path | None:
    """A video record's (or loaded clip's) face-track video as an absolute path, None when it has none."""
    return resolve_path(data, record.get("face_video_path"))


def video_records(data: dict[str, Any]) -> dict[int, dict[str, Any]]:
    """video_id -> video record."""
    return {int(v["video_id"]): v for v in data.get("videos") or []}


def summarize(clips: Iterable[dict[str, Any]]) -> dict[str, int]:
    clips = list(clips)
    return {
        "clips": len(clips),
        "videos": len({c.get("video_id") for c in clips}),
        "subjects": len({c.get("subject_id") for c in clips}),
        "frames": int(sum(c["total_frames"] for c in clips)),
    }
