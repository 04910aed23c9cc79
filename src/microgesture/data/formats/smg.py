"""SMG per-sequence folders -> canonical clips (annotation format v2); readers and writers.

SMG ("SMG: A Micro-gesture Dataset Towards Spontaneous Body Gestures for Emotional Stress State
Analysis", Chen et al., IJCV 2023): 40 participants, one Kinect v2 recording each, 17 MG
classes. The files, as the authors' released code reads them (docs/smg.md says what is known
and what is assumed):

    <root>/Sample0001/Sample0001_skeleton.csv       no header; one row per frame, row k = frame k + 1
    <root>/Sample0001/Sample0001_finelabels.csv     no header; rows `class,start_frame,end_frame`
    <root>/Sample0001/Sample0001_data.csv           one row `numFrames,fps,maxDepth`
    <root>/Sample0001/Sample0001_tflabels_new.csv   optional; emotional-state rows `id,start,end,code`

A skeleton row holds 25 joints in Kinect v2 order (our `ntu25` layout) x 11 values: world x, y, z
(metres), 4 orientation values, 2 pixel coordinates in the colour image (assumed 1920x1080,
Kinect v2's colour camera), 2 values we do not use. Classes are 1..17 (`SMG_CLASSES` index + 1).
Frames are numbered from 1 and label ranges are inclusive, as in the official access sample
(`SMGaccessSample.py`): a clip holds skeleton rows start-1 .. end-1, stored with our 0-based
inclusive `start_frame`/`end_frame`. Kinect gives no confidences: a joint scores 1 where the
coordinates it is read from are finite and not all zero, else 0 (coordinates 0).

`coords="pixel"` (default) keeps the 2 pixel coordinates; `coords="world"` keeps (x, -y) of the 3-D
position in metres (y flipped so that it points down, as in images). The sample number is both
the video id and the subject id (one sequence per participant). Emotional-state rows are kept as
written in the video record (`state_labels`); no task reads them yet.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from microgesture.data.formats.importing import (
    LabelRow,
    VideoSource,
    finish_import,
    import_videos,
    save_import,
    to_target_layout,
)
from microgesture.data.formats.text import MAX_ISSUES, Issue, is_number, parse_int, raise_first, read_lines
from microgesture.domain.classes import SMG_CLASSES
from microgesture.domain.layouts import NTU25, convert_rows
from microgesture.domain.protocols import check_protocol
from microgesture.errors import ConfigError, DataError
from microgesture.utils.io import atomic_open

JOINT_VALUES = 11
SKELETON_COLUMNS = NTU25.num_joints * JOINT_VALUES
WORLD = slice(0, 3)
PIXEL = slice(7, 9)
SMG_IMG_SHAPE = (1080, 1920)  # Kinect v2 colour frames (h, w): the pixel coordinates' frame
COORDS = ("pixel", "world")
STATE_FILE = "_tflabels_new.csv"  # the name the authors' emotion script reads
VIDEO_NAMES = ("_color.mp4", ".mp4")  # guessed from ChaLearn 2014's naming; SMG's is not published
_SAMPLE = re.compile(r"^Sample(\d{4,})$")
_VALUE_NAMES = ("world x", "world y", "world z", "orientation 1", "orientation 2", "orientation 3",
                "orientation 4", "pixel x", "pixel y", "extra 1", "extra 2")


@dataclass(frozen=True)
class SequenceFiles:
    """One SMG sequence folder's files, named after the folder."""

    skeleton: Path
    labels: Path
    info: Path
    states: Path | None  # the emotional-state file, when there is one
    video: Path | None  # the colour video, when there is one


def sequence_files(folder: str | Path) -> SequenceFiles:
    folder = Path(folder)
    name = folder.name
    states = folder / f"{name}{STATE_FILE}"
    video = next((folder / f"{name}{s}" for s in VIDEO_NAMES if (folder / f"{name}{s}").is_file()), None)
    return SequenceFiles(folder / f"{name}_skeleton.csv", folder / f"{name}_finelabels.csv",
                         folder / f"{name}_data.csv", states if states.is_file() else None, video)


def sample_folder(root: str | Path, sample_id: int) -> Path:
    return Path(root) / f"Sample{sample_id:04d}"


def is_smg_folder(path: str | Path) -> bool:
    """A folder of `SampleNNNN/` sequences, or one sequence folder itself."""
    path = Path(path)
    if not path.is_dir():
        return False
    return bool(_SAMPLE.match(path.name)) or any(_SAMPLE.match(p.name) and p.is_dir() for p in path.iterdir())


def find_sequences(src_dir: str | Path) -> list[tuple[int, Path]]:
    """`(sample number, folder)` of every `SampleNNNN/` in `src_dir` (or `src_dir` itself if it is one)."""
    src_dir = Path(src_dir)
    if not src_dir.is_dir():
        raise DataError(src_dir, "not a folder (expected an SMG folder of SampleNNNN/ sequence folders)")
    own = _SAMPLE.match(src_dir.name)
    if own:
        return [(int(own.group(1)), src_dir)]
    found = sorted((int(m.group(1)), p) for p in src_dir.iterdir() if (m := _SAMPLE.match(p.name)) and p.is_dir())
    if not found:
        raise DataError(src_dir, "no SMG sequence folders found (expected Sample0001/ with Sample0001_skeleton.csv "
                                 "and Sample0001_finelabels.csv)")
    return found


# ----------------------------------------------------------------------------- readers


def _int_rows(path: Path, columns: Sequence[str], issues: list[Issue]) -> list[tuple[int, list[int]]]:
    """(line number, integers) of each non-blank row of a headerless CSV with the given columns."""
    out = []
    for line_no, line in enumerate(read_lines(path, issues) or [], 1):
        if not line.strip():
            continue
        parts = [p.strip() for p in line.split(",")]
        if len(parts) != len(columns):
            issues.append((f"line {line_no}", f"{len(parts)} columns, expected {len(columns)} ({','.join(columns)})"))
            continue
        values = [parse_int(p) for p in parts]
        bad = next((i for i, v in enumerate(values) if v is None), None)
        if bad is not None:
            issues.append((f"line {line_no}, {columns[bad]}", f"{parts[bad]!r} is not an integer"))
            continue
        out.append((line_no, values))
    return out


def parse_labels(path: str | Path) -> tuple[list[LabelRow], list[Issue]]:
    """Rows of a `_finelabels.csv` (`class,start_frame,end_frame`, 1-based inclusive frames) and every problem.

    LabelRow frames are 0-based skeleton rows (start_frame - 1 .. end_frame - 1).
    """
    path = Path(path)
    issues: list[Issue] = []
    rows: list[LabelRow] = []
    for line_no, (raw, start, end) in _int_rows(path, ("class", "start_frame", "end_frame"), issues):
        where = f"line {line_no}"
        if not 1 <= raw <= len(SMG_CLASSES):
            issues.append((f"{where}, class", f"{raw} is not an SMG class (expected 1..{len(SMG_CLASSES)})"))
        elif start < 1 or end < start:
            issues.append((where, f"frame range {start}..{end}: expected 1 <= start_frame <= end_frame "
                                  "(SMG numbers frames from 1)"))
        else:
            rows.append(LabelRow(len(rows), line_no, raw, raw - 1, start - 1, end - 1))
    return rows, issues[:MAX_ISSUES]


def read_label_rows(path: str | Path) -> list[LabelRow]:
    rows, issues = parse_labels(path)
    raise_first(path, issues)
    return rows


def parse_info(path: str | Path) -> tuple[dict[str, int] | None, list[Issue]]:
    """`{'num_frames', 'fps', 'max_depth'}` of a `_data.csv` (one row `numFrames,fps,maxDepth`)."""
    issues: list[Issue] = []
    rows = _int_rows(Path(path), ("numFrames", "fps", "maxDepth"), issues)
    if not rows and not issues:
        issues.append(("", "no row, expected numFrames,fps,maxDepth"))
    if len(rows) > 1:
        issues.append((f"line {rows[1][0]}", "more than one row, expected one (numFrames,fps,maxDepth)"))
    if not rows or issues:
        return None, issues
    frames, fps, depth = rows[0][1]
    if frames < 0 or fps <= 0:
        issues.append(("line 1", f"numFrames {frames}, fps {fps}: expected numFrames >= 0 and fps > 0"))
        return None, issues
    return {"num_frames": frames, "fps": fps, "max_depth": depth}, issues


def parse_states(path: str | Path) -> tuple[list[list[int]], list[Issue]]:
    """Rows `[id, start, end, code]` of an emotional-state file, as written, and every problem."""
    issues: list[Issue] = []
    rows = [values for _, values in _int_rows(Path(path), ("id", "start_frame", "end_frame", "code"), issues)]
    return rows, issues[:MAX_ISSUES]


def _value_name(column: int) -> str:
    joint, value = divmod(column, JOINT_VALUES)
    return f"joint {joint} ({NTU25.joint_names[joint]}) {_VALUE_NAMES[value]}"


def parse_skeleton(path: str | Path) -> tuple[np.ndarray, list[Issue]]:
    """Values [T, 25, 11] (float64) of a `_skeleton.csv` and every problem.

    One row per frame, so an unreadable row (wrong column count, a value that is no number, a
    blank line between rows) stays in place as NaN (an undetected frame) and is reported.
    """
    path = Path(path)
    issues: list[Issue] = []
    lines = read_lines(path, issues) or []
    while lines and not lines[-1].strip():
        lines.pop()
    values = _fast_values(lines)
    split = [] if values is not None else [line.split(",") for line in lines]
    if values is None:
        values = np.full((len(lines), SKELETON_COLUMNS), np.nan)
    wrong: dict[int, list[int]] = {}
    for t, parts in enumerate(split):
        if len(parts) != SKELETON_COLUMNS:
            wrong.setdefault(len(parts) if lines[t].strip() else 0, []).append(t + 1)
            continue
        try:
            values[t] = np.array(parts, dtype=np.float64)
        except ValueError:
            col = next(i for i, p in enumerate(parts) if not is_number(p))
            issues.append((f"line {t + 1}, {_value_name(col)}", f"{parts[col].strip()!r} is not a number"))
    for count, where in wrong.items():
        more = f" (also {len(where) - 1} more such line(s))" if len(where) > 1 else ""
        what = "blank line" if count == 0 else f"{count} columns"
        issues.append((f"line {where[0]}", f"{what}, expected {SKELETON_COLUMNS} (25 joints x {JOINT_VALUES} values: "
                                           f"world x, y, z, 4 orientation values, 2 pixel values, 2 more){more}"))
    if not lines and not issues:
        issues.append(("", "no rows, expected one row per frame"))
    return values.reshape(len(lines), NTU25.num_joints, JOINT_VALUES), issues[:MAX_ISSUES]


def _fast_values(lines: list[str]) -> np.ndarray | None:
    """[T, 275] parsed in C when every row is well formed (no blank line, which loadtxt would drop)."""
    if not lines or any(not line.strip() for line in lines):
        return None
    try:
        values = np.loadtxt(lines, delimiter=",", dtype=np.float64, comments=None, ndmin=2)
    except ValueError:
        return None
    return values if values.shape == (len(lines), SKELETON_COLUMNS) else None


def read_skeleton(path: str | Path) -> np.ndarray:
    """Values [T, 25, 11] of a `_skeleton.csv`; DataError naming the first problem."""
    values, issues = parse_skeleton(path)
    raise_first(path, issues)
    return values


def to_joints(values: np.ndarray, coords: str = "pixel") -> np.ndarray:
    """[T, 25, 3] rows (x, y, score) from skeleton values [T, 25, 11] (see module doc for `coords`)."""
    if coords not in COORDS:
        raise ConfigError(f"coords must be one of {', '.join(COORDS)}, got {coords!r}")
    used = values[..., PIXEL] if coords == "pixel" else values[..., WORLD]
    xy = used if coords == "pixel" else np.stack([used[..., 0], -used[..., 1]], axis=-1)
    detected = np.isfinite(used).all(axis=-1) & (used != 0).any(axis=-1)
    out = np.zeros(values.shape[:-1] + (3,))
    out[..., :2] = np.where(detected[..., None], xy, 0.0)
    out[..., 2] = detected
    return out


# ----------------------------------------------------------------------------- writers


def write_sequence(root: str | Path, sample_id: int, values: np.ndarray, labels: Sequence[tuple[int, int, int]], *,
                   fps: int = 30, max_depth: int = 4500) -> Path:
    """Write one SMG sequence folder (skeleton values [T, 25, 11], `(class 1..17, start, end)` rows
    with 1-based inclusive frames, and `_data.csv`) atomically; returns the folder."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 3 or values.shape[1:] != (NTU25.num_joints, JOINT_VALUES):
        raise ValueError(f"values must be [T, {NTU25.num_joints}, {JOINT_VALUES}], got {values.shape}")
    folder = sample_folder(root, sample_id)
    files = sequence_files(folder)
    with atomic_open(files.skeleton, "w", newline="") as fh:
        for row in values.reshape(len(values), -1):
            fh.write(",".join(f"{v:.7g}" for v in row) + "\n")
    with atomic_open(files.labels, "w", newline="") as fh:
        fh.writelines(f"{int(c)},{int(s)},{int(e)}\n" for c, s, e in labels)
    with atomic_open(files.info, "w", newline="") as fh:
        fh.write(f"{len(values)},{int(fps)},{int(max_depth)}\n")
    return folder


# ----------------------------------------------------------------------------- import


def _source(sid: int, folder: Path, coords: str, target) -> VideoSource:
    files = sequence_files(folder)
    rows = read_label_rows(files.labels)
    joints = to_joints(read_skeleton(files.skeleton), coords)
    fps = None
    if files.info.is_file():
        info, issues = parse_info(files.info)
        raise_first(files.info, issues)
        fps = float(info["fps"])
    return VideoSource(sid, rows, np.arange(len(joints)), convert_rows(joints, NTU25, target), files.labels,
                       files.skeleton, "smg_csv", video=files.video, img_shape=SMG_IMG_SHAPE, fps=fps)


def _state_labels(sequences: list[tuple[int, Path]]) -> dict[int, list[list[int]]]:
    out = {}
    for sid, folder in sequences:
        path = sequence_files(folder).states
        if path is not None:
            rows, issues = parse_states(path)
            raise_first(path, issues)
            out[sid] = rows
    return out


def import_smg(
    src_dir: str | Path,
    *,
    protocol: str = "smg-xsub",
    val_fraction: float = 0.1,
    seed: int = 0,
    coords: str = "pixel",
    layout: str = "ntu25",
    img_shape: tuple[int, int] | None = None,
    out_path: str | Path | None = None,
    skip_unusable: bool = False,
) -> tuple[list[dict], dict[str, list[str]], dict, list[dict]]:
    """Read an SMG folder into `(clips, split, meta, videos)` (see annotations.py and the module doc).

    One clip per `_finelabels.csv` row, named `<sample:04d>_<row>`; `meta['classes']` are SMG's 17
    classes. `img_shape` (h, w) overrides the assumed 1080x1920 colour frame. Rows outside the
    skeleton or with no joint detected raise DataError, or are skipped with a warning when
    `skip_unusable`. `protocol` defaults to `smg-xsub` (participants 36-40 are test).
    """
    src_dir = Path(src_dir)
    check_protocol(protocol)
    if coords not in COORDS:
        raise ConfigError(f"coords must be one of {', '.join(COORDS)}, got {coords!r}")
    target = to_target_layout(layout, ("ntu25",))
    sequences = find_sequences(src_dir)
    states = _state_labels(sequences)
    people = {sid: (sid, -1) for sid, _ in sequences}
    sources = (_source(sid, folder, coords, target) for sid, folder in sequences)  # one sequence in memory at a time
    collected = import_videos(sources, layout=target.name, people=people, img_shape=img_shape, out_path=out_path,
                              skip_unusable=skip_unusable)
    meta = {"source": str(src_dir), "importer": "smg", "layout": target.name, "coords": coords,
            "videos": len(sequences)}
    clips, split, meta, videos = finish_import(collected, protocol=protocol, val_fraction=val_fraction, seed=seed,
                                               meta=meta, classes=SMG_CLASSES)
    for video in videos:
        if video["video_id"] in states:
            video["state_labels"] = states[video["video_id"]]
    meta["notes"] = list(meta["notes"]) + _notes(coords, img_shape)
    return clips, split, meta, videos


def _notes(coords: str, img_shape) -> list[str]:
    if coords == "world":
        return ["keypoints are Kinect world coordinates (x, -y) in metres; img_shape is the colour frame's"]
    if img_shape is None:
        return [f"pixel coordinates assumed to be in the {SMG_IMG_SHAPE[1]}x{SMG_IMG_SHAPE[0]} colour image"]
    return []


def import_smg_to_file(src_dir: str | Path, out_path: str | Path, **kwargs) -> dict:
    """`import_smg`, then save atomically (a failed import or save leaves any old file untouched).

    Returns `{'split', 'annotations', 'videos', 'meta'}` as `annotations.load_annotations` would.
    """
    return save_import(out_path, *import_smg(src_dir, out_path=out_path, **kwargs))
