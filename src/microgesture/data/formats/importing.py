"""What every importer shares: one video at a time in, canonical clips and video records out.

An importer (miga.py, openpose.py, smg.py) reads each video's label rows and per-frame joints
into a `VideoSource`; `import_videos` turns the sources into clips (one per label row, named
`<vid:04d>_<row>`) and `videos` records (annotation format v2), splits them by a protocol and
fills the metadata. Frames missing inside the skeleton's span are zero-filled and counted.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from microgesture.data.formats.annotations import FORMAT_NAME, FORMAT_VERSION, make_clip, make_video, save_annotations
from microgesture.domain.classes import IMIGUE_CLASSES
from microgesture.domain.ids import sample_name
from microgesture.domain.layouts import JointLayout, get_layout
from microgesture.domain.protocols import make_split
from microgesture.errors import ConfigError, DataError

DEFAULT_IMG_SHAPE = (720, 1280)  # iMiGUE's frames (h, w)


class LabelRow(NamedTuple):
    """One labelled MG instance. The clip is named `<vid:04d>_<row>`."""

    row: int  # 0-based index among the video's label rows
    line: int  # 1-based line in the file it came from
    raw: int  # class code as written (iMiGUE: 1..31 or 99)
    label: int  # 0-based class index
    start: int  # first frame, inclusive
    end: int  # last frame, inclusive


@dataclass
class VideoSource:
    """One video as an importer read it; `joints` [T, V, 3] are already in the target layout."""

    video_id: int
    rows: list[LabelRow]
    frames: np.ndarray  # [T] frame indices of the joint rows
    joints: np.ndarray  # [T, V, 3] (x, y, confidence)
    label_file: Path
    skeleton_file: Path
    skeleton_format: str  # how to read the whole sequence again: "miga_csv", "openpose_json", ...
    video: Path | None = None  # the RGB video file, when present
    img_shape: tuple[int, int] | None = None  # known from the source (synth.json, the SMG clip)
    fps: float | None = None
    face_video: Path | None = None  # the face track `<vid>_face.mp4` (facetrack.py), when present


def relative_path(path: Path | None, out_path: str | Path | None) -> str | None:
    """`path` relative to the annotation file's folder when possible, else absolute; None if absent."""
    if path is None or not path.exists():
        return None
    if out_path is None:
        return str(path.resolve())
    try:
        return os.path.relpath(path.resolve(), Path(out_path).resolve().parent)
    except ValueError:  # e.g. another drive on Windows
        return str(path.resolve())


def slice_frames(frames: np.ndarray, joints: np.ndarray, start: int, end: int) -> tuple[np.ndarray, int]:
    """Rows for frame indices start..end (inclusive) matched by index; gaps are zero-filled.

    Returns the [end - start + 1, ...] array and how many frames were missing.
    """
    want = np.arange(start, end + 1)
    pos = np.minimum(np.searchsorted(frames, want), max(len(frames) - 1, 0))
    found = frames[pos] == want if len(frames) else np.zeros(len(want), dtype=bool)
    out = np.zeros((len(want),) + joints.shape[1:], dtype=joints.dtype)
    out[found] = joints[pos[found]]
    return out, int((~found).sum())


def to_target_layout(layout: str, allowed_sources: Sequence[str]) -> JointLayout:
    """The layout clips are stored in; it must be a source layout or convertible from one."""
    from microgesture.domain.layouts import can_convert

    try:
        target = get_layout(layout)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    if not any(can_convert(get_layout(s), target) for s in allowed_sources):
        raise ConfigError(f"layout {layout!r} cannot be made from {'/'.join(allowed_sources)} joints")
    return target


@dataclass
class _Collected:
    clips: list[dict]
    videos: list[dict]
    skipped: list[str]
    zero_filled: int
    shape_sources: dict[str, int]


def _clips_of(src: VideoSource, *, layout: str, img_shape, subject: int, emotion: int, video_path: str | None,
              skip_unusable: bool, out: _Collected) -> None:
    """One clip per label row; unusable rows raise DataError, or are noted with `skip_unusable`."""
    frames = src.frames
    for row in src.rows:
        name = sample_name(src.video_id, row.row)
        problem = None
        if not len(frames) or row.start < frames[0] or row.end > frames[-1]:
            span = f"{frames[0]}..{frames[-1]}" if len(frames) else "none"
            problem = f"frames {row.start}..{row.end} are outside the skeleton's frames {span} ({src.skeleton_file})"
        else:
            seg, missing = slice_frames(frames, src.joints, row.start, row.end)
            if not np.any(seg):
                problem = f"frames {row.start}..{row.end}: every joint is zero (no person detected)"
        if problem is not None:
            if not skip_unusable:
                raise DataError(src.label_file, problem, f"line {row.line}")
            out.skipped.append(f"{name} ({src.label_file}, line {row.line}): {problem}")
            continue
        out.zero_filled += missing
        out.clips.append(make_clip(
            frame_dir=name, label=row.label, keypoint=seg[..., :2], keypoint_score=seg[..., 2],
            img_shape=img_shape, layout=layout, video_id=src.video_id, subject_id=subject,
            start_frame=row.start, emotion=emotion, video_path=video_path,
        ))


def resolve_img_shape(src: VideoSource, explicit: tuple[int, int] | None) -> tuple[tuple[int, int], str, float | None]:
    """(h, w), where it came from (argument, the source, the video header, else iMiGUE's default),
    and the frame rate when the video header was read for it."""
    if explicit is not None:
        return (int(explicit[0]), int(explicit[1])), "argument", None
    if src.img_shape is not None:
        return src.img_shape, "source", None
    if src.video is not None and src.video.is_file():
        from microgesture.data.video import video_info  # decoding is only needed when videos exist

        info = video_info(src.video)
        return (int(info.height), int(info.width)), "video header", float(info.fps)
    return DEFAULT_IMG_SHAPE, "default", None


def import_videos(
    sources: Iterable[VideoSource],
    *,
    layout: str,
    people: dict[int, tuple[int, int]],
    img_shape: tuple[int, int] | None,
    out_path: str | Path | None,
    skip_unusable: bool,
) -> _Collected:
    """Clips and video records of every source (see module doc)."""
    out = _Collected([], [], [], 0, {})
    for src in sources:
        if not src.rows:
            warnings.warn(f"{src.label_file}: no label rows, video {src.video_id} adds no clips", UserWarning,
                          stacklevel=2)
        shape, where, header_fps = resolve_img_shape(src, img_shape)
        out.shape_sources[where] = out.shape_sources.get(where, 0) + 1
        subject, emotion = people.get(src.video_id, (-1, -1))
        video_path = relative_path(src.video, out_path)
        _clips_of(src, layout=layout, img_shape=shape, subject=subject, emotion=emotion, video_path=video_path,
                  skip_unusable=skip_unusable, out=out)
        out.videos.append(make_video(
            video_id=src.video_id, subject_id=subject, emotion=emotion, fps=src.fps or header_fps,
            num_frames=int(src.frames[-1]) + 1 if len(src.frames) else 0, img_shape=shape, video_path=video_path,
            skeleton_path=relative_path(src.skeleton_file, out_path), skeleton_format=src.skeleton_format,
            layout=layout, labelled_segments=len(src.rows), face_video_path=relative_path(src.face_video, out_path),
        ))
    return out


def shape_notes(sources: dict[str, int]) -> list[str]:
    if "default" not in sources:
        return []
    return [f"img_shape unknown for {sources['default']} video(s): assumed iMiGUE's {DEFAULT_IMG_SHAPE} (h, w)"]


def finish_import(
    collected: _Collected, *, protocol: str, val_fraction: float, seed: int, meta: dict,
    classes: Sequence[str] = IMIGUE_CLASSES,
) -> tuple[list[dict], dict[str, list[str]], dict, list[dict]]:
    """Warn about skipped rows, split, and complete the metadata: `(clips, split, meta, videos)`."""
    clips, skipped = collected.clips, collected.skipped
    if skipped:
        shown = "\n  ".join(skipped[:10]) + (f"\n  ... and {len(skipped) - 10} more" if len(skipped) > 10 else "")
        warnings.warn(f"skipped {len(skipped)} unusable label row(s):\n  {shown}", UserWarning, stacklevel=2)
    if not clips:
        note = f" ({len(skipped)} skipped)" if skipped else ""
        raise DataError(meta.get("source"), f"no usable clips to import{note}")
    split = make_split(clips, protocol, val_fraction=val_fraction, seed=seed)
    assigned = sum(len(v) for v in split.values())
    meta.update(
        protocol=protocol, val_fraction=float(val_fraction), seed=int(seed), classes=list(classes),
        skipped=skipped, unassigned_clips=len(clips) - assigned, zero_filled_frames=collected.zero_filled,
        img_shape_sources=collected.shape_sources, notes=shape_notes(collected.shape_sources),
    )
    return clips, split, meta, collected.videos


def save_import(out_path: str | Path, clips: list[dict], split: dict, meta: dict, videos: list[dict]) -> dict:
    """Save atomically and return the data as `load_annotations` would."""
    save_annotations(out_path, clips, split, meta, videos=videos)
    meta = {"format": FORMAT_NAME, "version": FORMAT_VERSION, **meta, "path": str(out_path)}
    return {"split": split, "annotations": clips, "videos": videos, "meta": meta}
