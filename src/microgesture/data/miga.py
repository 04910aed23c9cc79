"""The MiGA challenge per-video layout (DOMAIN.md section 2).

`<root>/<vid:04d>/<vid>_label.csv`: no header, rows `class,start_frame,end_frame` (raw iMiGUE code
1..31 or 99; frames inclusive). `<vid>_light_hand.csv`: no header, column 0 the frame index, then
35 joints x (x, y, confidence) in the `miga35` layout. `<vid>.mp4`: the RGB video.

Here: path helpers and writers; readers (`read_labels`, `read_skeleton`, and `parse_*` that
collect every problem for `validate.py`); and `import_miga`, whose clip building
(`build_clips`, `finish_import`) `openpose.py` shares.
"""

from __future__ import annotations

import csv
import json
import math
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np

from microgesture.data.annotations import FORMAT_NAME, FORMAT_VERSION, make_clip, save_annotations
from microgesture.data.classes import EMOTION_UNKNOWN, IMIGUE_CLASSES, class_index_from_raw, emotion_index
from microgesture.data.layouts import MIGA35, JointLayout, convert, get_layout
from microgesture.data.splits import check_protocol, make_split
from microgesture.errors import ConfigError, DataError
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


# ---------------------------------------------------------------------------------------------
# Readers. `parse_*` collect every problem in a file as (where, message) pairs (for validation);
# `read_*` return the data or raise a DataError naming the first problem.
# ---------------------------------------------------------------------------------------------

SKELETON_COLUMNS = 1 + 3 * MIGA35.num_joints
_FIELDS = ("x", "y", "confidence")
_MAX_ISSUES = 50
MAX_CONFIDENCE = 2.0
DEFAULT_IMG_SHAPE = (720, 1280)  # iMiGUE's frames (h, w)


class LabelRow(NamedTuple):
    """One labelled MG instance. The clip is named `<vid:04d>_<row>`."""

    row: int  # 0-based index among the video's label rows
    line: int  # 1-based line in the file it came from
    raw: int  # iMiGUE class code as written (1..31 or 99)
    label: int  # 0-based class index
    start: int  # first frame, inclusive
    end: int  # last frame, inclusive


Issue = tuple[str, str]


def _read_lines(path: Path, issues: list[Issue]) -> list[str] | None:
    try:
        return path.read_text(encoding="utf-8-sig").splitlines()
    except FileNotFoundError:
        issues.append(("", "file not found"))
    except IsADirectoryError:
        issues.append(("", "is a folder, expected a CSV file"))
    except (OSError, UnicodeDecodeError) as exc:
        issues.append(("", f"cannot be read as text ({type(exc).__name__}: {exc})"))
    return None


def parse_int(text: str) -> int | None:
    """'168' or '168.0' -> 168; anything else -> None."""
    try:
        value = float(text)
    except ValueError:
        return None
    if not math.isfinite(value) or value != int(value):
        return None
    return int(value)


def raise_first(path: str | Path, issues: list[Issue]) -> None:
    """Raise a DataError for the first issue (and say how many more there are)."""
    if not issues:
        return
    where, message = issues[0]
    if len(issues) > 1:
        message += f" (and {len(issues) - 1} more problem(s) in this file)"
    raise DataError(path, message, where or None)


def parse_labels(path: str | Path) -> tuple[list[LabelRow], list[Issue]]:
    """Rows of a `<vid>_label.csv` (`class,start_frame,end_frame`, no header) and every problem."""
    path = Path(path)
    issues: list[Issue] = []
    rows: list[LabelRow] = []
    row = 0
    for line_no, line in enumerate(_read_lines(path, issues) or [], 1):
        if not line.strip():
            continue
        where, row = f"line {line_no}", row + 1
        parts = [p.strip() for p in line.split(",")]
        if len(parts) != 3:
            issues.append((where, f"{len(parts)} columns, expected 3 (class,start_frame,end_frame)"))
            continue
        values = [parse_int(p) for p in parts]
        names = ("class", "start_frame", "end_frame")
        bad = [i for i, v in enumerate(values) if v is None]
        if bad:
            issues.append((f"{where}, {names[bad[0]]}", f"{parts[bad[0]]!r} is not an integer"))
            continue
        raw, start, end = values
        try:
            label = class_index_from_raw(raw)
        except ValueError as exc:
            issues.append((f"{where}, class", str(exc)))
            continue
        if start < 0 or end < start:
            issues.append((where, f"frame range {start}..{end}: expected 0 <= start_frame <= end_frame"))
            continue
        rows.append(LabelRow(row - 1, line_no, raw, label, start, end))
    return rows, issues[:_MAX_ISSUES]


def read_label_rows(path: str | Path) -> list[LabelRow]:
    rows, issues = parse_labels(path)
    raise_first(path, issues)
    return rows


def read_labels(path: str | Path) -> list[tuple[int, int, int]]:
    """`(class index 0..31, start_frame, end_frame)` per row of a `<vid>_label.csv`."""
    return [(r.label, r.start, r.end) for r in read_label_rows(path)]


def _columns_message(count: int, num_joints: int) -> str:
    msg = f"{count} columns, expected {1 + 3 * num_joints} (frame index + {num_joints} joints x (x, y, confidence))"
    if (count - 1) % 3 == 0:
        msg += f"; this row has {(count - 1) // 3} joints"
    elif count % 3 == 0:
        msg += f"; it looks like {count // 3} joints without the frame-index column"
    return msg


def _field_name(column: int) -> str:
    if column == 0:
        return "frame index"
    joint, field = divmod(column - 1, 3)
    return f"joint {joint} ({MIGA35.joint_names[joint]}) {_FIELDS[field]}"


def _split_rows(lines: list[str], ncols: int, num_joints: int, issues: list[Issue]):
    """Rows with the right column count; wrong counts are reported once per distinct count."""
    rows, line_nos, wrong = [], [], {}
    for line_no, line in enumerate(lines, 1):
        if not line.strip():
            continue
        parts = line.split(",")
        if len(parts) == ncols:
            rows.append(parts)
            line_nos.append(line_no)
        else:
            wrong.setdefault(len(parts), []).append(line_no)
    for count, where in wrong.items():
        more = f" (also {len(where) - 1} more line(s) with {count} columns)" if len(where) > 1 else ""
        issues.append((f"line {where[0]}", _columns_message(count, num_joints) + more))
    return rows, line_nos


def _to_floats(rows, line_nos, ncols: int, issues: list[Issue]) -> tuple[np.ndarray, list[int]]:
    try:
        return np.array(rows, dtype=np.float64).reshape(len(rows), ncols), line_nos
    except ValueError:
        pass
    good, kept = [], []  # slow path only to say where the bad value is
    for parts, line_no in zip(rows, line_nos):
        try:
            good.append([float(p) for p in parts])
            kept.append(line_no)
        except ValueError:
            col = next(i for i, p in enumerate(parts) if not _is_float(p))
            issues.append((f"line {line_no}, {_field_name(col)}", f"{parts[col].strip()!r} is not a number"))
    return np.array(good, dtype=np.float64).reshape(len(good), ncols), kept


def _is_float(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def parse_skeleton(path: str | Path) -> tuple[np.ndarray, np.ndarray, list[Issue]]:
    """Frame indices [T] (int64), joints [T, 35, 3] (float64) of a `<vid>_light_hand.csv`, and every problem.

    Rows with a wrong column count or a non-numeric value are dropped from the arrays (and
    reported); rows with NaN/inf, out-of-range confidences or out-of-order frame indices are
    kept but reported.
    """
    path = Path(path)
    issues: list[Issue] = []
    num_joints = MIGA35.num_joints
    lines = _read_lines(path, issues)
    rows, line_nos = _split_rows(lines or [], SKELETON_COLUMNS, num_joints, issues)
    values, line_nos = _to_floats(rows, line_nos, SKELETON_COLUMNS, issues)
    if lines is not None and not rows and not issues:
        issues.append(("", "no rows, expected one row per frame"))
    frames_f = values[:, 0] if len(values) else np.zeros(0)
    bad = ~np.isfinite(frames_f) | (frames_f < 0) | (frames_f != np.round(frames_f))
    for i in np.flatnonzero(bad)[:5]:
        issues.append((f"line {line_nos[i]}, frame index", f"{values[i, 0]!r} is not a non-negative integer"))
    values = values[~bad]
    line_nos = [n for n, b in zip(line_nos, bad) if not b]
    frames = values[:, 0].astype(np.int64) if len(values) else np.zeros(0, dtype=np.int64)
    joints = values[:, 1:].reshape(len(values), num_joints, 3) if len(values) else np.zeros((0, num_joints, 3))
    for i in np.flatnonzero(np.diff(frames) <= 0)[:5]:
        issues.append(
            (f"line {line_nos[i + 1]}, frame index",
             f"{frames[i + 1]} follows {frames[i]}: frame indices must increase strictly")
        )
    nonfinite = ~np.isfinite(joints)
    for t, j, f in np.argwhere(nonfinite)[:5]:
        where = f"line {line_nos[t]}, {_field_name(1 + 3 * j + f)}"
        issues.append((where, f"{joints[t, j, f]} is not a finite number"))
    # OpenPose's hand confidences slightly exceed 1 at times; far outside 0..1 means shifted columns.
    conf = np.where(nonfinite[..., 2], 0.0, joints[..., 2])
    for t, j in np.argwhere((conf < 0) | (conf > MAX_CONFIDENCE))[:5]:
        issues.append((f"line {line_nos[t]}, {_field_name(3 + 3 * j)}",
                       f"{joints[t, j, 2]} is not a confidence (expected 0..1; are the columns shifted?)"))
    return frames, joints, issues[:_MAX_ISSUES]


def read_skeleton(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """`(frame_indices [T] int64, joints [T, 35, 3] float64)` of a `<vid>_light_hand.csv`."""
    frames, joints, issues = parse_skeleton(path)
    raise_first(path, issues)
    return frames, joints


# ---------------------------------------------------------------------------------------------
# Import: per-video folders -> canonical clips (annotations.py), shared with openpose.py.
# ---------------------------------------------------------------------------------------------


def find_video_folders(src_dir: str | Path) -> list[tuple[int, Path]]:
    """`(video_id, folder)` for each numeric sub-folder, or for `src_dir` itself if it is one video's folder."""
    src_dir = Path(src_dir)
    if not src_dir.is_dir():
        raise DataError(src_dir, "not a folder (expected a MiGA-layout folder of <vid:04d>/ sub-folders)")
    own = video_files(src_dir)
    if src_dir.name.isdigit() and (own[0].exists() or own[1].exists()):
        return [(int(src_dir.name), src_dir)]
    found = sorted((int(p.name), p) for p in src_dir.iterdir() if p.is_dir() and p.name.isdigit())
    if not found:
        raise DataError(
            src_dir, "no video folders found (expected <vid:04d>/ with <vid>_label.csv and <vid>_light_hand.csv)"
        )
    return found


def video_files(folder: Path) -> tuple[Path, Path, Path]:
    """A video folder's label CSV, skeleton CSV and video, named after the folder."""
    name = folder.name
    return folder / f"{name}_label.csv", folder / f"{name}_light_hand.csv", folder / f"{name}.mp4"


def read_videos_csv(path: str | Path) -> dict[int, tuple[int, int]]:
    """`video_id -> (subject_id, emotion)` from a CSV with header `video_id[,subject_id][,emotion]`.

    Emotion is win/lose (also positive/negative, 1/0); empty or -1 means unknown (-1).
    """
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except OSError as exc:
        raise DataError(path, f"cannot read ({exc.strerror or exc})") from exc
    reader = csv.DictReader(lines)
    if not reader.fieldnames or "video_id" not in [f.strip() for f in reader.fieldnames]:
        raise DataError(path, "expected a header with video_id (and subject_id, emotion)", "line 1")
    table: dict[int, tuple[int, int]] = {}
    for line_no, record in enumerate(reader, 2):
        record = {str(k).strip(): (v or "").strip() for k, v in record.items() if k is not None}
        vid = _table_int(path, line_no, "video_id", record.get("video_id", ""))
        subject = _table_int(path, line_no, "subject_id", record.get("subject_id") or "-1")
        emotion = parse_emotion(path, line_no, "emotion", record.get("emotion", ""))
        if vid in table:
            raise DataError(path, f"video {vid} is listed twice", f"line {line_no}")
        table[vid] = (subject, emotion)
    return table


def _table_int(path: Path, line_no: int, column: str, text: str) -> int:
    value = parse_int(text)
    if value is None:
        raise DataError(path, f"{text!r} is not an integer", f"line {line_no}, {column}")
    return value


def parse_emotion(path: Path, line_no: int, column: str, text: str) -> int:
    if text.strip().lower() in ("", "-1", "unknown", "?", "nan"):
        return EMOTION_UNKNOWN
    try:
        return emotion_index(text)
    except ValueError as exc:
        raise DataError(path, str(exc), f"line {line_no}, {column}") from None


def merge_video_tables(tables: Sequence[tuple[Path, dict[int, tuple[int, int]]]]) -> dict[int, tuple[int, int]]:
    """Combine per-video (subject, emotion) tables; -1 is unknown; known values must agree."""
    merged: dict[int, tuple[int, int]] = {}
    for path, table in tables:
        for vid, values in table.items():
            old = merged.get(vid, (-1, -1))
            for name, a, b in zip(("subject_id", "emotion"), old, values):
                if a >= 0 and b >= 0 and a != b:
                    raise DataError(path, f"video {vid}: {name} {b} disagrees with {a} from another table")
            merged[vid] = tuple(b if b >= 0 else a for a, b in zip(old, values))
    return merged


def video_header(path: str | Path) -> tuple[int, tuple[int, int]]:
    """`(frame count, (h, w))` of a video; DataError for a missing or broken one."""
    from microgesture.data.video import video_info  # lazy: decoding is only needed when videos exist

    info = video_info(Path(path))
    return int(info.num_frames), (int(info.height), int(info.width))


def read_synth_shape(src_dir: Path) -> tuple[int, int] | None:
    """(h, w) from `synth.json` (written by our synthetic generator), or None when absent."""
    path = src_dir / "synth.json"
    if not path.is_file():
        return None
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
        return int(info["height"]), int(info["width"])
    except (ValueError, KeyError, TypeError) as exc:
        raise DataError(path, f"expected a JSON object with integer 'width' and 'height' ({exc})") from None


def resolve_img_shape(
    explicit: tuple[int, int] | None, synth: tuple[int, int] | None, video: Path | None
) -> tuple[tuple[int, int], str]:
    """(h, w) and where it came from: argument, synth.json, the video header, else iMiGUE's default."""
    if explicit is not None:
        return (int(explicit[0]), int(explicit[1])), "argument"
    if synth is not None:
        return synth, "synth.json"
    if video is not None and video.is_file():
        return video_header(video)[1], "video header"
    return DEFAULT_IMG_SHAPE, "default"


def relative_video_path(video: Path | None, out_path: str | Path | None) -> str | None:
    """The video's path relative to the annotation file's folder when possible, else absolute."""
    if video is None or not video.is_file():
        return None
    if out_path is None:
        return str(video.resolve())
    try:
        return os.path.relpath(video.resolve(), Path(out_path).resolve().parent)
    except ValueError:  # e.g. another drive on Windows
        return str(video.resolve())


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


def build_clips(
    rows: Sequence[LabelRow],
    frames: np.ndarray,
    joints: np.ndarray,
    *,
    video_id: int,
    layout: str,
    img_shape: tuple[int, int],
    subject_id: int,
    emotion: int,
    video_path: str | None,
    label_file: Path,
    skeleton_file: Path,
    skip_unusable: bool,
) -> tuple[list[dict], list[str], int]:
    """One clip per label row from a video's joints [T, V, 3] (already in `layout`).

    A row whose frames lie outside the skeleton's, or whose joints are all zero, is unusable:
    a DataError, or with `skip_unusable` a note in the returned list. Returns
    (clips, skipped notes, number of zero-filled frames).
    """
    clips, skipped, filled = [], [], 0
    for row in rows:
        name = f"{video_id:04d}_{row.row}"
        problem = None
        if not len(frames) or row.start < frames[0] or row.end > frames[-1]:
            span = f"{frames[0]}..{frames[-1]}" if len(frames) else "none"
            problem = f"frames {row.start}..{row.end} are outside the skeleton's frames {span} ({skeleton_file})"
        else:
            seg, missing = slice_frames(frames, joints, row.start, row.end)
            if not np.any(seg):
                problem = f"frames {row.start}..{row.end}: every joint is zero (no person detected)"
        if problem is not None:
            if not skip_unusable:
                raise DataError(label_file, problem, f"line {row.line}")
            skipped.append(f"{name} (line {row.line}): {problem}")
            continue
        filled += missing
        clips.append(make_clip(
            frame_dir=name, label=row.label, keypoint=seg[..., :2], keypoint_score=seg[..., 2],
            img_shape=img_shape, layout=layout, video_id=video_id, subject_id=subject_id,
            start_frame=row.start, emotion=emotion, video_path=video_path,
        ))
    return clips, skipped, filled


def to_target_layout(layout: str, allowed_sources: Sequence[str]) -> JointLayout:
    try:
        target = get_layout(layout)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    if target.name not in allowed_sources and target.source not in allowed_sources:
        raise ConfigError(f"layout {layout!r} cannot be made from {'/'.join(allowed_sources)} joints")
    return target


def finish_import(
    clips: list[dict], *, protocol: str, val_fraction: float, seed: int, meta: dict, skipped: list[str]
) -> tuple[list[dict], dict[str, list[str]], dict]:
    """Warn about skipped rows, split, and complete the metadata."""
    if skipped:
        shown = "\n  ".join(skipped[:10]) + (f"\n  ... and {len(skipped) - 10} more" if len(skipped) > 10 else "")
        warnings.warn(f"skipped {len(skipped)} unusable label row(s):\n  {shown}", stacklevel=3)
    if not clips:
        note = f" ({len(skipped)} skipped)" if skipped else ""
        raise DataError(meta.get("source"), f"no usable clips to import{note}")
    split = make_split(clips, protocol, val_fraction=val_fraction, seed=seed)
    assigned = sum(len(v) for v in split.values())
    meta.update(
        protocol=protocol, val_fraction=float(val_fraction), seed=int(seed), classes=list(IMIGUE_CLASSES),
        skipped=skipped, unassigned_clips=len(clips) - assigned,
    )
    return clips, split, meta


def import_miga(
    src_dir: str | Path,
    *,
    protocol: str | None = None,
    val_fraction: float = 0.1,
    seed: int = 0,
    videos_csv: str | Path | None = None,
    labels_table: str | Path | None = None,
    img_shape: tuple[int, int] | None = None,
    layout: str = "miga35",
    out_path: str | Path | None = None,
    skip_unusable: bool = False,
) -> tuple[list[dict], dict[str, list[str]], dict]:
    """Read a MiGA-layout folder into `(clips, split, meta)` (see annotations.py).

    One clip per label row, named `<vid:04d>_<row>`, its joints taken from the skeleton rows
    whose frame index (column 0) lies in start..end; frames missing inside the skeleton's span
    are zero-filled (counted in `meta['zero_filled_frames']`). Subject and emotion come from
    `videos_csv` (default `src_dir/videos.csv` when present) and/or the iMiGUE master
    `labels_table` (its MG rows are not used here), else -1. `img_shape` (h, w): the argument,
    else `src_dir/synth.json`, else each video's header, else iMiGUE's 720x1280 (noted in meta).
    `video_path` is relative to `out_path`'s folder when given. Rows outside the skeleton or
    with no detection raise DataError, or are skipped with a warning when `skip_unusable`.
    `protocol` (splits.py) defaults to `synthetic-xsub` when `src_dir/synth.json` exists (our
    synthetic data), else `imigue-xsub`.
    """
    src_dir = Path(src_dir)
    if protocol is None:
        protocol = "synthetic-xsub" if (src_dir / "synth.json").is_file() else "imigue-xsub"
    check_protocol(protocol)
    target = to_target_layout(layout, ("miga35",))
    folders = find_video_folders(src_dir)
    tables = []
    if labels_table is not None:
        from microgesture.data.openpose import read_label_table, video_table  # lazy: it imports this module

        tables.append((Path(labels_table), video_table(read_label_table(labels_table))))
    auto_csv = src_dir / "videos.csv"
    videos_csv = videos_csv if videos_csv is not None else (auto_csv if auto_csv.is_file() else None)
    if videos_csv is not None:
        tables.append((Path(videos_csv), read_videos_csv(videos_csv)))
    people = merge_video_tables(tables)
    synth = None if img_shape is not None else read_synth_shape(src_dir)
    clips, skipped, filled, shape_sources = [], [], 0, {}
    for vid, folder in folders:
        label_file, skeleton_file, video = video_files(folder)
        rows = read_label_rows(label_file)
        frames, joints = read_skeleton(skeleton_file)
        joints = convert(joints, MIGA35, target)
        shape, source = resolve_img_shape(img_shape, synth, video)
        shape_sources[source] = shape_sources.get(source, 0) + 1
        subject, emotion = people.get(vid, (-1, -1))
        new, skip, fill = build_clips(
            rows, frames, joints, video_id=vid, layout=target.name, img_shape=shape, subject_id=subject,
            emotion=emotion, video_path=relative_video_path(video, out_path), label_file=label_file,
            skeleton_file=skeleton_file, skip_unusable=skip_unusable,
        )
        clips += new
        skipped += skip
        filled += fill
    meta = {
        "source": str(src_dir), "importer": "miga", "layout": target.name, "videos": len(folders),
        "img_shape_sources": shape_sources, "zero_filled_frames": filled,
        "notes": shape_notes(shape_sources),
    }
    return finish_import(clips, protocol=protocol, val_fraction=val_fraction, seed=seed, meta=meta, skipped=skipped)


def shape_notes(sources: dict[str, int]) -> list[str]:
    if "default" not in sources:
        return []
    return [f"img_shape unknown for {sources['default']} video(s): assumed iMiGUE's {DEFAULT_IMG_SHAPE} (h, w)"]


def save_import(out_path: str | Path, clips: list[dict], split: dict, meta: dict) -> dict:
    """Save atomically and return the data as `load_annotations` would."""
    save_annotations(out_path, clips, split, meta)
    meta = {"format": FORMAT_NAME, "version": FORMAT_VERSION, **meta, "path": str(out_path)}
    return {"split": split, "annotations": clips, "meta": meta}


def import_miga_to_file(src_dir: str | Path, out_path: str | Path, **kwargs) -> dict:
    """`import_miga`, then save atomically (a failed import or save leaves any old file untouched).

    Returns `{'split', 'annotations', 'meta'}` as `annotations.load_annotations` would.
    """
    return save_import(out_path, *import_miga(src_dir, out_path=out_path, **kwargs))
