"""Sliding windows over untrimmed skeleton sequences: the clips online recognition trains and runs on.

A window is `length` consecutive frames starting every `stride` frames, plus one ending at the
last frame so every frame is covered (a sequence shorter than `length` is one short window; the
sampling step repeats its frames). Windows are ordinary clips (annotations.py), named
`<vid:04d>_w<start:06d>`, so the whole engine (pipelines, models, training) takes them as is.

Training labels come from the video's labelled segments (every frame outside them is
background, the class "no gesture" appended after the dataset's classes). A window is labelled
by its core, the central `core` share of its frames, because decoding gives a window's
scores mostly to its centre (eval/segments.py):
- class c when segments of class c cover at least `min_share` of the core (the class covering
  most when several do);
- background when no segment touches the core;
- otherwise ambiguous (a boundary between gestures, or a core mostly empty): left out of training.
Windows where no joint is detected in more than half of the frames are left out too (there is
nothing to learn from, and recognition does not score them).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from microgesture.data.formats.annotations import load_annotations, make_clip, make_video, resolve_path, \
    save_annotations
from microgesture.data.formats.importing import relative_path
from microgesture.data.formats.sequences import Sequence, video_sequence
from microgesture.domain.classes import IMIGUE_CLASSES
from microgesture.errors import ConfigError, DataError

BACKGROUND = "no gesture"
MIN_PERSON = 0.5  # share of a window's frames with a detected joint


def window_starts(total: int, length: int, stride: int) -> np.ndarray:
    """First frames of the windows covering 0..total-1 (module doc)."""
    if length < 1 or stride < 1:
        raise ConfigError(f"window length and stride must be >= 1, got {length} and {stride}")
    if total <= length:
        return np.zeros(1 if total > 0 else 0, dtype=np.int64)
    starts = np.arange(0, total - length + 1, stride, dtype=np.int64)
    if starts[-1] != total - length:
        starts = np.append(starts, total - length)
    return starts


def window_label(start: int, length: int, segments: Iterable[tuple[int, int, int]], background: int, *,
                 core: float = 0.5, min_share: float = 0.5) -> int | None:
    """The training label of the window [start, start + length) (module doc); None when ambiguous."""
    width = max(1, int(round(core * length)))
    lo = start + (length - width) // 2
    hi = lo + width - 1
    cover: dict[int, int] = {}
    for label, s, e in segments:
        inside = min(e, hi) - max(s, lo) + 1
        if inside > 0:
            cover[label] = cover.get(label, 0) + inside
    if not cover:
        return background
    label, frames = max(cover.items(), key=lambda kv: (kv[1], -kv[0]))
    return label if frames >= min_share * width else None


def person_share(joints: np.ndarray) -> float:
    """Share of frames [T, V, 3] in which at least one joint is detected."""
    return float((joints[..., 2] > 0).any(axis=-1).mean()) if len(joints) else 0.0


def window_clip(seq: Sequence, start: int, length: int, *, label: int = -1, subject: int = -1, emotion: int = -1,
                img_shape: tuple[int, int] | None = None, video_path: str | None = None) -> dict[str, Any]:
    """Frames [start, start + length) of `seq` as a clip."""
    part = seq.joints[start:start + length]
    return make_clip(
        frame_dir=f"{max(seq.video_id, 0):04d}_w{start:06d}", label=label, keypoint=part[..., :2],
        keypoint_score=part[..., 2], img_shape=img_shape or seq.img_shape or (720, 1280), layout=seq.layout,
        video_id=seq.video_id, subject_id=subject, start_frame=start, emotion=emotion, video_path=video_path,
    )


def sequence_windows(seq: Sequence, length: int, stride: int, **fields: Any) -> tuple[np.ndarray, list[dict | None]]:
    """Every window of `seq`: its start and its clip, None where a person is seen in too few frames."""
    starts = window_starts(seq.num_frames, length, stride)
    clips = []
    for s in starts:
        part = seq.joints[s:s + length]
        clips.append(window_clip(seq, int(s), length, **fields) if person_share(part) >= MIN_PERSON else None)
    return starts, clips


def _video_splits(data: dict) -> dict[int, str]:
    """video id -> the split its clips are in (one split per video under every protocol we ship)."""
    by_name = {c["frame_dir"]: int(c["video_id"]) for c in data["annotations"]}
    out: dict[int, str] = {}
    for split, names in data["split"].items():
        for name in names:
            out.setdefault(by_name[name], split)
    return out


class SegmentIndex:
    """A video's segments sorted by start: those that can touch a frame range, in O(log n).

    A segment [s, e] touches [lo, hi] when s <= hi and e >= lo, so its start lies in
    [lo - longest + 1, hi]. Labelling each window against every segment of its video was
    quadratic in the video's length: 1.2 s for a 30-minute video and 21 s for 2 hours, against
    0.03 s and 0.13 s through the index (stride 8, measured; docs/benchmarks.md).
    """

    def __init__(self, segments: Iterable[tuple[int, int, int]]):
        self.segments = sorted(segments, key=lambda seg: seg[1])
        self.starts = np.array([s for _, s, _ in self.segments], dtype=np.int64)
        self.longest = max((e - s + 1 for _, s, e in self.segments), default=0)

    def touching(self, lo: int, hi: int) -> list[tuple[int, int, int]]:
        """Every segment overlapping frames lo..hi (and maybe a few that end just before lo)."""
        a = int(np.searchsorted(self.starts, lo - self.longest + 1, "left"))
        b = int(np.searchsorted(self.starts, hi, "right"))
        return self.segments[a:b]


def _segments(data: dict) -> dict[int, list[tuple[int, int, int]]]:
    out: dict[int, list[tuple[int, int, int]]] = {}
    for clip in data["annotations"]:
        out.setdefault(int(clip["video_id"]), []).append((int(clip["label"]), int(clip["start_frame"]),
                                                         int(clip["end_frame"])))
    return out


def training_windows(data: dict, *, length: int = 32, stride: int = 8, core: float = 0.5,
                     layout: str = "miga35", out_path: str | Path | None = None
                     ) -> tuple[list[dict], dict[str, list[str]], list[dict], dict[str, Any]]:
    """`(clips, split, videos, counts)`: labelled windows of every video of an annotation file.

    Each window is in the split of its video's clips; videos in no split are left out.
    """
    classes = list(data["meta"].get("classes") or IMIGUE_CLASSES)
    background = len(classes)
    splits, segments = _video_splits(data), _segments(data)
    clips, split, videos = [], {name: [] for name in data["split"]}, []
    counts = {"windows": 0, "background": 0, "ambiguous": 0, "no_person": 0}
    for video in data["videos"]:
        vid = int(video["video_id"])
        if vid not in splits:
            continue
        seq = video_sequence(data, video, layout)
        path = relative_path(resolve_path(data, video.get("video_path")), out_path)
        index = SegmentIndex(segments.get(vid, ()))
        for start in window_starts(seq.num_frames, length, stride):
            near = index.touching(int(start), int(start) + length - 1)
            label = window_label(int(start), length, near, background, core=core)
            if label is None:
                counts["ambiguous"] += 1
                continue
            if person_share(seq.joints[start:start + length]) < MIN_PERSON:
                counts["no_person"] += 1
                continue
            clip = window_clip(seq, int(start), length, label=label, subject=int(video["subject_id"]),
                               emotion=int(video["emotion"]), img_shape=video.get("img_shape"), video_path=path)
            clips.append(clip)
            split[splits[vid]].append(clip["frame_dir"])
            counts["windows"] += 1
            counts["background"] += label == background
        videos.append(make_video(**{**video, "video_path": path, "skeleton_path": relative_path(
            resolve_path(data, video.get("skeleton_path")), out_path)}))
    if not clips:
        raise DataError(data["meta"].get("path"), "no usable windows (no video with a split and a detected person)")
    return clips, split, videos, {**counts, "classes": classes + [BACKGROUND]}


def write_window_annotations(src: str | Path, out: str | Path, *, length: int = 32, stride: int = 8,
                             core: float = 0.5, layout: str = "miga35") -> dict[str, Any]:
    """Read an annotation file, cut its videos into labelled windows, save them as another one.

    Returns the counts (windows, background, ambiguous, no_person) and the class list.
    """
    data = load_annotations(src)
    clips, split, videos, counts = training_windows(data, length=length, stride=stride, core=core, layout=layout,
                                                    out_path=out)
    meta = {"source": str(src), "importer": "windows", "layout": layout, "classes": counts["classes"],
            "protocol": data["meta"].get("protocol"),
            "windows": {"length": length, "stride": stride, "core": core, "background": BACKGROUND},
            "counts": {k: v for k, v in counts.items() if k != "classes"}}
    save_annotations(out, clips, split, meta, videos=videos)
    return counts
