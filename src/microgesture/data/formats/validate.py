"""Check a dataset before training on it and list every problem found (not just the first).

`validate_path` accepts a MiGA-layout folder (or one video's folder), a single
`<vid>_label.csv` / `<vid>_light_hand.csv`, an iMiGUE label table (`*.csv`), an OpenPose JSON
folder (first problem only), an SMG folder (`SampleNNNN/` sequences, or one of them), or an
annotation pickle.
An empty list means the data is clean.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from microgesture.data.formats import miga, smg
from microgesture.data.formats.annotations import (
    clip_problems,
    dataset_problems,
    read_annotation_pickle,
    resolve_face_video_path,
    resolve_video_path,
)
from microgesture.data.formats.facetrack import FACE_SIZE, face_csv_path, face_video_path, parse_face_csv
from microgesture.data.formats.imigue_table import parse_label_table, parse_videos_csv, video_table
from microgesture.data.formats.importing import slice_frames
from microgesture.data.video import decode_all, video_info
from microgesture.errors import DataError

# Keypoints further than this beyond img_shape suggest (w, h) written as (h, w).
_BOUNDS_SLACK = 1.1


@dataclass(frozen=True)
class Problem:
    file: str
    where: str  # line / frame / field, or "" for the whole file
    message: str
    warning: bool = False  # worth a look, but import and training work

    def __str__(self) -> str:
        text = ": ".join(part for part in (self.file, self.where, self.message) if part)
        return f"warning: {text}" if self.warning else text


def validate_path(path: str | Path, video_root: str | Path | None = None, decode: bool = False) -> list[Problem]:
    """Every problem in a dataset path; see the module docstring for what it accepts.

    `video_root`: for an annotation file, where its relative video paths start (default: its folder).
    `decode`: decode every frame of every video (slow), to find corrupt data behind a valid header.
    """
    path = Path(path)
    if not path.exists():
        return [Problem(str(path), "", "not found")]
    if path.is_dir():
        if not any(path.iterdir()):
            return [Problem(str(path), "", "empty folder: expected a MiGA-layout folder (<vid:04d>/ sub-folders), "
                                           "an SMG folder (SampleNNNN/ sub-folders) "
                                           "or a folder of OpenPose <vid>_<frame>_keypoints.json files")]
        if any(p.name.endswith("_keypoints.json") for p in path.iterdir()):
            return _validate_openpose(path)
        if smg.is_smg_folder(path):
            return validate_smg_folder(path)
        return validate_miga_folder(path, decode)
    if path.suffix in (".pkl", ".pickle"):
        return validate_annotation_file(path, video_root, decode)
    if path.name.endswith("_label.csv"):
        return _issues(path, miga.parse_labels(path)[1])
    if path.name.endswith("_light_hand.csv"):
        return _issues(path, miga.parse_skeleton(path)[2])
    if path.name == "videos.csv":
        return _issues(path, parse_videos_csv(path)[1])
    if path.suffix == ".csv":
        return _validate_label_table(path)
    return [Problem(str(path), "", "unknown kind of file: expected a MiGA folder, a .pkl annotation file, "
                                   "a <vid>_label.csv, a <vid>_light_hand.csv or an iMiGUE label table")]


def _issues(path: Path, issues: list[tuple[str, str]]) -> list[Problem]:
    return [Problem(str(path), where, message) for where, message in issues]


def _from_error(exc: DataError) -> Problem:
    return Problem("" if exc.path is None else str(exc.path), exc.where or "", exc.detail)


def validate_miga_folder(root: str | Path, decode: bool = False) -> list[Problem]:
    try:
        folders = miga.find_video_folders(root)
    except DataError as exc:
        return [_from_error(exc)]
    problems: list[Problem] = []
    videos_csv = Path(root) / "videos.csv"
    if videos_csv.is_file():
        problems += _issues(videos_csv, parse_videos_csv(videos_csv)[1])
    for _, folder in folders:
        problems += _validate_video(folder, decode)
    return problems


def _validate_video(folder: Path, decode: bool = False) -> list[Problem]:
    label_file, skeleton_file, video = miga.video_files(folder)
    rows, label_issues = miga.parse_labels(label_file)
    frames, joints, skeleton_issues = miga.parse_skeleton(skeleton_file)
    problems = _issues(label_file, label_issues) + _issues(skeleton_file, skeleton_issues)
    if label_file.is_file() and not rows and not label_issues:
        problems.append(Problem(str(label_file), "", "no label rows: this video adds no clips", warning=True))
    problems += _duplicate_rows(label_file, rows)
    if not skeleton_file.is_file() or not len(frames):
        return problems
    for row in rows:
        where = f"line {row.line}"
        if row.start < frames[0] or row.end > frames[-1]:
            problems.append(Problem(str(label_file), where, f"frames {row.start}..{row.end} are outside the "
                                    f"skeleton's frames {frames[0]}..{frames[-1]} in {skeleton_file.name}"))
            continue
        seg, missing = slice_frames(frames, joints, row.start, row.end)
        if missing and not skeleton_issues:  # dropped malformed rows would show up here again
            message = f"{missing} of the {len(seg)} frames {row.start}..{row.end} have no row in {skeleton_file.name}"
            problems.append(Problem(str(label_file), where, message))
        if not np.any(seg):
            problems.append(Problem(str(label_file), where,
                                    f"frames {row.start}..{row.end}: every joint is zero (no person detected)"))
    if video.is_file():
        problems += _check_video_length(video, skeleton_file, len(frames), decode)
    face = face_video_path(video)
    if face.is_file() or face_csv_path(face).is_file():
        problems += face_track_problems(face, video if video.is_file() else None, len(frames))
    return problems


def face_track_problems(face: Path, source: Path | None = None, frames: int | None = None) -> list[Problem]:
    """A face track (`<vid>_face.mp4` + `<vid>_face.csv`) against its source video and frame count."""
    csv_file = face_csv_path(face)
    if not face.is_file():
        return [Problem(str(face), "", f"face-track video not found (its {csv_file.name} is there)")]
    try:
        info = video_info(face)
    except DataError as exc:
        return [_from_error(exc)]
    problems = []
    if (info.width, info.height) != (FACE_SIZE, FACE_SIZE):
        problems.append(Problem(str(face), "", f"{info.width}x{info.height} frames, expected {FACE_SIZE}x{FACE_SIZE}"))
    track, issues = parse_face_csv(csv_file)
    problems += _issues(csv_file, issues)
    if not issues and len(track) != info.num_frames:
        problems.append(Problem(str(csv_file), "", f"{len(track)} rows, but {face.name} has {info.num_frames} frames"))
    if source is not None:
        try:
            src = video_info(source)
        except DataError:
            return problems  # reported with the source video
        if src.num_frames != info.num_frames or abs(src.fps - info.fps) > 0.01 * src.fps:
            problems.append(Problem(str(face), "", f"{info.num_frames} frames at {info.fps:.3f} fps, but its source "
                                    f"{source.name} has {src.num_frames} at {src.fps:.3f} fps"))
    elif frames is not None and frames != info.num_frames:
        problems.append(Problem(str(face), "", f"{info.num_frames} frames, but the video has {frames}"))
    return problems


def validate_smg_folder(root: str | Path) -> list[Problem]:
    """Every problem in an SMG folder (see smg.py): files, label rows against the skeleton, frame counts."""
    try:
        sequences = smg.find_sequences(root)
    except DataError as exc:
        return [_from_error(exc)]
    problems: list[Problem] = []
    for _, folder in sequences:
        problems += _validate_smg_sequence(smg.sequence_files(folder))
    return problems


def _validate_smg_sequence(files: smg.SequenceFiles) -> list[Problem]:
    rows, label_issues = smg.parse_labels(files.labels)
    values, skeleton_issues = smg.parse_skeleton(files.skeleton)
    problems = _issues(files.labels, label_issues) + _issues(files.skeleton, skeleton_issues)
    problems += _duplicate_rows(files.labels, [r._replace(start=r.start + 1, end=r.end + 1) for r in rows])
    if files.info.is_file():
        info, info_issues = smg.parse_info(files.info)
        problems += _issues(files.info, info_issues)
        if info is not None and files.skeleton.is_file() and info["num_frames"] != len(values):
            problems.append(Problem(str(files.info), "line 1", f"numFrames is {info['num_frames']}, but "
                                    f"{files.skeleton.name} has {len(values)} rows", warning=True))
    else:
        problems.append(Problem(str(files.info), "", "not found: the frame rate is unknown", warning=True))
    if files.states is not None:
        problems += _issues(files.states, smg.parse_states(files.states)[1])
    if not files.skeleton.is_file() or not len(values):
        return problems
    problems += _smg_detection_problems(files, values)
    joints = smg.to_joints(values)
    for row in rows:
        where = f"line {row.line}"
        first, last = row.start + 1, row.end + 1  # as written: SMG numbers frames from 1
        if row.end >= len(values):
            problems.append(Problem(str(files.labels), where, f"frames {first}..{last} go beyond the "
                                    f"{len(values)} frames of {files.skeleton.name} (frames are numbered from 1)"))
        elif not joints[row.start:row.end + 1, :, 2].any():
            problems.append(Problem(str(files.labels), where, f"frames {first}..{last}: no joint detected"))
    return problems


def _smg_detection_problems(files: smg.SequenceFiles, values: np.ndarray) -> list[Problem]:
    """Warnings for pixel positions Kinect could not map (non-finite) where the 3-D joint was tracked."""
    tracked = np.isfinite(values[..., smg.WORLD]).all(-1) & (values[..., smg.WORLD] != 0).any(-1)
    unmapped = tracked & ~np.isfinite(values[..., smg.PIXEL]).all(-1)
    if not unmapped.any():
        return []
    frames = np.flatnonzero(unmapped.any(-1))
    return [Problem(str(files.skeleton), f"line {frames[0] + 1}",
                    f"{int(unmapped.sum())} tracked joint(s) in {len(frames)} frame(s) have no finite pixel "
                    "position: they count as undetected with --coords pixel", warning=True)]


def _duplicate_rows(label_file: Path, rows) -> list[Problem]:
    """A warning for each label row that repeats or overlaps an earlier one (same class or not)."""
    problems = []
    ordered = sorted(rows, key=lambda r: (r.start, r.end))
    for prev, row in zip(ordered, ordered[1:]):
        if row.start > prev.end:
            continue
        kind = "repeats" if (row.raw, row.start, row.end) == (prev.raw, prev.start, prev.end) else "overlaps"
        first, second = sorted((prev, row), key=lambda r: r.line)
        problems.append(Problem(str(label_file), f"line {second.line}",
                                f"{second.raw},{second.start},{second.end} {kind} line {first.line} "
                                f"({first.raw},{first.start},{first.end})", warning=True))
    return problems


def _check_video_length(video: Path, skeleton_file: Path, rows: int, decode: bool = False) -> list[Problem]:
    try:
        count = video_info(video).num_frames
        if decode:
            decode_all(video)
    except DataError as exc:
        return [_from_error(exc)]
    if count != rows:
        return [Problem(str(skeleton_file), "", f"{rows} rows, but the video {video.name} has {count} frames")]
    return []


def _validate_label_table(path: Path) -> list[Problem]:
    rows, issues = parse_label_table(path)
    problems = _issues(path, issues)
    try:
        video_table(rows, path)
    except DataError as exc:
        problems.append(_from_error(exc))
    return problems


def _validate_openpose(folder: Path) -> list[Problem]:
    from microgesture.data.formats.openpose import read_openpose_folder  # lazy: only for JSON folders

    try:
        _, _, joints, stats = read_openpose_folder(folder)
    except DataError as exc:
        return [_from_error(exc)]
    if not np.any(joints[..., 2] > 0):
        return [Problem(str(folder), "", f"no person detected in any of its {stats['frames']} frames")]
    return []


def validate_annotation_file(path: str | Path, video_root: str | Path | None = None,
                             decode: bool = False) -> list[Problem]:
    """`annotations.dataset_problems`, plus frame ranges and img_shape against each clip's video."""
    path = Path(path)
    try:
        data = read_annotation_pickle(path)
    except DataError as exc:
        return [_from_error(exc)]
    problems = []
    for text in dataset_problems(data):
        where, _, message = text.partition(": ")
        problems.append(Problem(str(path), where, message))
    if not isinstance(data, dict) or not isinstance(data.get("annotations"), list):
        return problems
    meta = data.get("meta") if isinstance(data.get("meta"), dict) else {}
    root = video_root if video_root is not None else path.parent
    data_here = {**data, "meta": {**meta, "path": str(path), "video_root": str(root)}}
    headers: dict[Path, Any] = {}
    for i, clip in enumerate(data["annotations"]):
        if clip_problems(clip):  # already reported; the checks below need a well-formed clip
            continue
        where = f"annotations[{i}] ({clip['frame_dir']})"
        problems += [Problem(str(path), where, m) for m in _clip_range_problems(data_here, clip, headers, decode)]
    return problems + _face_record_problems(path, data_here)


def _face_record_problems(path: Path, data: dict) -> list[Problem]:
    """Each video record's face track: present, well formed, as long as the video."""
    problems = []
    videos = data.get("videos") if isinstance(data.get("videos"), list) else []
    for i, record in enumerate(videos):
        if not isinstance(record, dict) or not isinstance(record.get("face_video_path"), str):
            continue
        face = resolve_face_video_path(data, record)
        if not face.is_file():
            problems.append(Problem(str(path), f"videos[{i}]", f"face_video_path: {face} not found"))
            continue
        source = resolve_video_path(data, record)
        frames = record.get("num_frames")
        problems += face_track_problems(face, source if source is not None and source.is_file() else None,
                                        frames if isinstance(frames, int) else None)
    return problems


def _clip_range_problems(data: dict, clip: dict, headers: dict, decode: bool = False) -> list[str]:
    problems = []
    start = int(clip.get("start_frame", 0) or 0)
    end = start + int(clip["total_frames"]) - 1
    if start < 0:
        problems.append(f"start_frame: {start} is negative")
    height, width = (int(s) for s in clip["img_shape"])
    kp, score = clip["keypoint"], clip["keypoint_score"]
    seen = kp[score > 0] if kp.shape[:3] == score.shape else kp.reshape(-1, kp.shape[-1])
    if len(seen) and (seen[:, 0].max() > width * _BOUNDS_SLACK or seen[:, 1].max() > height * _BOUNDS_SLACK):
        problems.append(f"keypoint: reaches x={seen[:, 0].max():.0f}, y={seen[:, 1].max():.0f} beyond "
                        f"img_shape {tuple(clip['img_shape'])}; img_shape must be (height, width)")
    video = resolve_video_path(data, clip)
    if video is None:
        return problems
    if not video.is_file():
        return problems + [f"video_path: {video} not found"]
    if video not in headers:
        try:
            info = video_info(video)
            if decode:
                decode_all(video)
            headers[video] = (info.num_frames, (info.height, info.width))
        except DataError as exc:
            headers[video] = exc
    header = headers[video]
    if isinstance(header, DataError):
        return problems + [f"video_path: {header}"]
    count, shape = header
    if end >= count:
        problems.append(f"end_frame: frames {start}..{end} go beyond the video's {count} frames")
    if (height, width) != tuple(shape):
        hint = " (written as (width, height)?)" if (width, height) == tuple(shape) else ""
        problems.append(f"img_shape: {(height, width)} but the video is {tuple(shape)} (h, w){hint}")
    return problems
