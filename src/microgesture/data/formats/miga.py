"""The MiGA challenge per-video layout: paths, writers, readers and the importer.

`<root>/<vid:04d>/<vid>_label.csv`: no header, rows `class,start_frame,end_frame` (raw iMiGUE code
1..31 or 99; frames inclusive). `<vid>_light_hand.csv`: no header, column 0 the frame index, then
35 joints x (x, y, confidence) in the `miga35` layout. `<vid>.mp4`: the RGB video; optionally
its face track `<vid>_face.mp4` + `<vid>_face.csv` (facetrack.py; ours, not MiGA's). Beside the
video folders, our `videos.csv` (subject and emotion per video, see imigue_table.py) and, for
the synthetic data, `synth.json` (frame size and rate).

Readers come in pairs: `parse_*` collects every problem (for `data validate`), `read_*` raises
a DataError naming the first.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from microgesture.data.formats.facetrack import face_video_path
from microgesture.data.formats.imigue_table import merge_video_tables, read_label_table, read_videos_csv, video_table
from microgesture.data.formats.importing import (
    LabelRow,
    VideoSource,
    finish_import,
    import_videos,
    save_import,
    to_target_layout,
)
from microgesture.data.formats.text import MAX_ISSUES, Issue, is_number, parse_int, raise_first, read_lines
from microgesture.domain.classes import class_index_from_raw
from microgesture.domain.layouts import MIGA35, convert_rows
from microgesture.domain.protocols import check_protocol
from microgesture.errors import DataError
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


SKELETON_COLUMNS = 1 + 3 * MIGA35.num_joints
_FIELDS = ("x", "y", "confidence")
MAX_CONFIDENCE = 2.0


def parse_labels(path: str | Path) -> tuple[list[LabelRow], list[Issue]]:
    """Rows of a `<vid>_label.csv` (`class,start_frame,end_frame`, no header) and every problem."""
    path = Path(path)
    issues: list[Issue] = []
    rows: list[LabelRow] = []
    row = 0
    for line_no, line in enumerate(read_lines(path, issues) or [], 1):
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
    return rows, issues[:MAX_ISSUES]


def read_label_rows(path: str | Path) -> list[LabelRow]:
    rows, issues = parse_labels(path)
    raise_first(path, issues)
    return rows


def read_labels(path: str | Path) -> list[tuple[int, int, int]]:
    """`(class index 0..31, start_frame, end_frame)` per row of a `<vid>_label.csv`."""
    return [(r.label, r.start, r.end) for r in read_label_rows(path)]


def _columns_message(count: int, num_joints: int, every_row: bool) -> str:
    msg = f"{count} columns, expected {1 + 3 * num_joints} (frame index + {num_joints} joints x (x, y, confidence))"
    if (count - 1) % 3 == 0:
        msg += f"; this row has {(count - 1) // 3} joints"
    elif count % 3 == 0 and every_row:
        msg += f"; it looks like {count // 3} joints without the frame-index column"
    else:  # other rows are fine: this one lost or gained values
        msg += "; values are missing or extra on this row"
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
        issues.append((f"line {where[0]}", _columns_message(count, num_joints, not rows and len(wrong) == 1) + more))
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
            col = next(i for i, p in enumerate(parts) if not is_number(p))
            issues.append((f"line {line_no}, {_field_name(col)}", f"{parts[col].strip()!r} is not a number"))
    return np.array(good, dtype=np.float64).reshape(len(good), ncols), kept


def _clean_skeleton(path: Path) -> tuple[np.ndarray, np.ndarray] | None:
    """The fast path of `parse_skeleton`: numpy's C parser, and the checks as array operations.

    Only for a file with nothing to report: any irregularity (a wrong column count, a value
    that is not a number, NaN/inf, a confidence out of range, frame indices that are not
    strictly increasing non-negative integers, no rows, a file that cannot be read) returns
    None, and the line-by-line reader finds and words the problems. Same values as that reader
    (both round each decimal to the nearest float64), 3.3x faster (measured interleaved on 5.8-min
    videos): at iMiGUE's size (3.1 M frames) parsing is most of the import's time
    (docs/benchmarks.md, "The real datasets' size").
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "input contained no data"
            values = np.loadtxt(path, delimiter=",", dtype=np.float64, comments=None, ndmin=2, encoding="utf-8-sig")
    except (OSError, ValueError):  # UnicodeDecodeError is a ValueError
        return None
    if values.shape[0] == 0 or values.shape[1] != SKELETON_COLUMNS or not np.isfinite(values).all():
        return None
    frames_f = values[:, 0]
    if (frames_f < 0).any() or (frames_f != np.round(frames_f)).any() or (np.diff(frames_f) <= 0).any():
        return None
    joints = values[:, 1:].reshape(len(values), MIGA35.num_joints, 3)
    conf = joints[..., 2]
    if (conf < 0).any() or (conf > MAX_CONFIDENCE).any():
        return None
    return frames_f.astype(np.int64), joints


def parse_skeleton(path: str | Path) -> tuple[np.ndarray, np.ndarray, list[Issue]]:
    """Frame indices [T] (int64), joints [T, 35, 3] (float64) of a `<vid>_light_hand.csv`, and every problem.

    Rows with a wrong column count or a non-numeric value are dropped from the arrays (and
    reported); rows with NaN/inf, out-of-range confidences or out-of-order frame indices are
    kept but reported.
    """
    path = Path(path)
    clean = _clean_skeleton(path)
    if clean is not None:
        return clean[0], clean[1], []
    issues: list[Issue] = []
    num_joints = MIGA35.num_joints
    lines = read_lines(path, issues)
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
    return frames, joints, issues[:MAX_ISSUES]


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
    numeric = sorted(p for p in src_dir.iterdir() if p.name.isdigit())
    stray = [p for p in numeric if not p.is_dir()]
    if stray:
        raise DataError(stray[0], "is a file where a video folder <vid:04d>/ is expected")
    if not numeric:
        raise DataError(
            src_dir, "no video folders found (expected <vid:04d>/ with <vid>_label.csv and <vid>_light_hand.csv)"
        )
    return sorted((int(p.name), p) for p in numeric)


def video_files(folder: Path) -> tuple[Path, Path, Path]:
    """A video folder's label CSV, skeleton CSV and video, named after the folder."""
    name = folder.name
    return folder / f"{name}_label.csv", folder / f"{name}_light_hand.csv", folder / f"{name}.mp4"


def read_synth_info(src_dir: Path) -> tuple[tuple[int, int] | None, float | None]:
    """((h, w), fps) from `synth.json` (written by our synthetic generator), or (None, None)."""
    path = src_dir / "synth.json"
    if not path.is_file():
        return None, None
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
        fps = info.get("fps")
        return (int(info["height"]), int(info["width"])), None if fps is None else float(fps)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise DataError(path, f"expected a JSON object with integer 'width' and 'height' ({exc})") from None


def _people(src_dir: Path, videos_csv, labels_table) -> dict[int, tuple[int, int]]:
    """Subject and emotion per video from videos.csv (default src_dir/videos.csv) and the master table."""
    tables = []
    if labels_table is not None:
        tables.append((Path(labels_table), video_table(read_label_table(labels_table), labels_table)))
    auto_csv = src_dir / "videos.csv"
    videos_csv = videos_csv if videos_csv is not None else (auto_csv if auto_csv.is_file() else None)
    if videos_csv is not None:
        tables.append((Path(videos_csv), read_videos_csv(videos_csv)))
    return merge_video_tables(tables)


def _sources(src_dir: Path, target, folders: list[tuple[int, Path]]) -> Iterator[VideoSource]:
    """One video at a time: only one video's whole skeleton is in memory (at iMiGUE's size all of
    them together are 2.6 GB of float64, which a list of sources held until the import ended)."""
    shape, fps = read_synth_info(src_dir)
    for vid, folder in folders:
        label_file, skeleton_file, video = video_files(folder)
        rows = read_label_rows(label_file)
        frames, joints = read_skeleton(skeleton_file)
        face = face_video_path(video)
        yield VideoSource(
            vid, rows, frames, convert_rows(joints, MIGA35, target), label_file, skeleton_file, "miga_csv",
            video=video if video.is_file() else None, img_shape=shape, fps=fps,
            face_video=face if face.is_file() else None,
        )


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
) -> tuple[list[dict], dict[str, list[str]], dict, list[dict]]:
    """Read a MiGA-layout folder into `(clips, split, meta, videos)` (see annotations.py).

    One clip per label row, named `<vid:04d>_<row>`, its joints taken from the skeleton rows
    whose frame index (column 0) lies in start..end; frames missing inside the skeleton's span
    are zero-filled (counted in `meta['zero_filled_frames']`). Subject and emotion come from
    `videos_csv` (default `src_dir/videos.csv` when present) and/or the iMiGUE master
    `labels_table` (its MG rows are not used here), else -1. `img_shape` (h, w): the argument,
    else `src_dir/synth.json`, else each video's header, else iMiGUE's 720x1280 (noted in meta).
    `video_path` (and the video record's `face_video_path`, when `<vid>/<vid>_face.mp4` exists)
    is relative to `out_path`'s folder when given. Rows outside the skeleton or
    with no detection raise DataError, or are skipped with a warning when `skip_unusable`.
    `protocol` (splits.py) defaults to `synthetic-xsub` when `src_dir/synth.json` exists (our
    synthetic data), else `imigue-xsub`.
    """
    src_dir = Path(src_dir)
    if protocol is None:
        protocol = "synthetic-xsub" if (src_dir / "synth.json").is_file() else "imigue-xsub"
    check_protocol(protocol)
    target = to_target_layout(layout, ("miga35",))
    people = _people(src_dir, videos_csv, labels_table)
    folders = find_video_folders(src_dir)
    collected = import_videos(_sources(src_dir, target, folders), layout=target.name, people=people,
                              img_shape=img_shape, out_path=out_path, skip_unusable=skip_unusable)
    meta = {"source": str(src_dir), "importer": "miga", "layout": target.name, "videos": len(folders)}
    return finish_import(collected, protocol=protocol, val_fraction=val_fraction, seed=seed, meta=meta)


def import_miga_to_file(src_dir: str | Path, out_path: str | Path, **kwargs) -> dict:
    """`import_miga`, then save atomically (a failed import or save leaves any old file untouched).

    Returns `{'split', 'annotations', 'videos', 'meta'}` as `annotations.load_annotations` would.
    """
    return save_import(out_path, *import_miga(src_dir, out_path=out_path, **kwargs))
