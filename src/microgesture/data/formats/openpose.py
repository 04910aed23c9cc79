"""OpenPose 1.3 per-frame JSON folders and the iMiGUE master label table -> canonical clips.

A video's folder holds `<vid>_<frame:012d>_keypoints.json`, each with `people`, a list of
persons carrying `pose_keypoints_2d` (BODY_25, 75 values) and `hand_left_keypoints_2d` /
`hand_right_keypoints_2d` (21 points, 63 values each) as flat (x, y, confidence) triples.
We read them into [T, 67, 3] in the `openpose67` layout (BODY_25, right hand, left hand); the
declared layout conversions (domain/layouts.py) give `miga35`, `imigue22` or `coco17`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from microgesture.data.formats.imigue_table import label_rows, read_label_table, video_table
from microgesture.data.formats.importing import VideoSource, finish_import, import_videos, save_import, to_target_layout
from microgesture.domain.layouts import OPENPOSE67, convert_rows
from microgesture.domain.protocols import check_protocol
from microgesture.errors import ConfigError, DataError

FRAME_FILE = re.compile(r"^(?P<video>.+)_(?P<frame>\d{12})_keypoints\.json$")
_PARTS = (("pose_keypoints_2d", 25), ("hand_right_keypoints_2d", 21), ("hand_left_keypoints_2d", 21))


def _person_joints(person: object, path: Path, index: int) -> np.ndarray:
    """One person's [67, 3]; a missing or empty hand list means an undetected hand (zeros)."""
    if not isinstance(person, dict):
        raise DataError(path, f"is a {type(person).__name__}, expected an object", f"people[{index}]")
    out = []
    for key, count in _PARTS:
        values = person.get(key) or []
        where = f"people[{index}].{key}"
        if not values and key != "pose_keypoints_2d":
            out.append(np.zeros((count, 3)))
            continue
        if key not in person:
            raise DataError(path, "missing: every person needs its BODY_25 points", where)
        if not isinstance(values, list) or len(values) != 3 * count:
            size = len(values) if isinstance(values, list) else type(values).__name__
            expected = f"expected {3 * count} ({count} points x (x, y, confidence))"
            raise DataError(path, f"has {size} values, {expected}", where)
        try:
            arr = np.asarray(values, dtype=np.float64).reshape(count, 3)
        except (TypeError, ValueError):
            raise DataError(path, "contains a value that is not a number", where) from None
        if not np.isfinite(arr).all():
            raise DataError(path, f"point {int(np.argwhere(~np.isfinite(arr))[0][0])} is NaN or inf", where)
        out.append(arr)
    return np.concatenate(out)


def choose_person(people: list[np.ndarray]) -> np.ndarray:
    """The subject among several detections: the highest summed confidence over body and hands.

    A seated, fully visible speaker scores far above partial detections of people or posters
    in the background; ties go to the larger bounding box of confident points.
    """
    def key(joints: np.ndarray) -> tuple[float, float]:
        seen = joints[joints[:, 2] > 0]
        area = float(np.ptp(seen[:, 0]) * np.ptp(seen[:, 1])) if len(seen) else 0.0
        return float(joints[:, 2].sum()), area

    return max(people, key=key)


def read_openpose_frame(path: str | Path) -> tuple[np.ndarray, int]:
    """`(joints [67, 3], number of people)`; nobody detected gives zeros with zero confidence."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise DataError(path, f"not a readable OpenPose JSON file ({type(exc).__name__}: {exc})") from None
    people = data.get("people") if isinstance(data, dict) else None
    if not isinstance(people, list):
        raise DataError(path, "expected an object with a 'people' list", "people")
    if not people:
        return np.zeros((OPENPOSE67.num_joints, 3)), 0
    return choose_person([_person_joints(p, path, i) for i, p in enumerate(people)]), len(people)


def frame_files(json_dir: Path) -> dict[str, list[tuple[int, Path]]]:
    """`<vid>` prefix -> sorted (frame, path) of the OpenPose JSON files in a folder."""
    found: dict[str, list[tuple[int, Path]]] = {}
    for path in json_dir.iterdir():
        match = FRAME_FILE.match(path.name)
        if match:
            found.setdefault(match["video"], []).append((int(match["frame"]), path))
    return {k: sorted(v) for k, v in found.items()}


def _video_id_of(prefix: str, folder: Path) -> int | None:
    for text in (prefix, folder.name):
        digits = re.search(r"(\d+)$", text)
        if digits:
            return int(digits.group(1))
    return None


def read_openpose_folder(
    json_dir: str | Path, video_id: int | None = None
) -> tuple[int, np.ndarray, np.ndarray, dict]:
    """`(video_id, frame indices [T], joints [T, 67, 3], stats)` of one video's JSON folder.

    The video id comes from the file names (`<vid>_<frame>_keypoints.json`, trailing digits of
    `<vid>`), else from the folder name; give `video_id` when a folder mixes videos.
    `stats` counts frames with no person and with several people.
    """
    json_dir = Path(json_dir)
    if not json_dir.is_dir():
        raise DataError(json_dir, "not a folder of OpenPose JSON files")
    groups = frame_files(json_dir)
    by_id = {}
    for prefix, files in groups.items():
        vid = _video_id_of(prefix, json_dir)
        if vid is None:
            raise DataError(json_dir / files[0][1].name, f"cannot tell the video id from {prefix!r}; pass video_id")
        by_id.setdefault(vid, []).extend(files)
    if video_id is None and len(by_id) > 1:
        raise DataError(json_dir, f"holds frames of several videos {sorted(by_id)}; pass video_id")
    if video_id is None and by_id:
        video_id = next(iter(by_id))
    files = sorted(by_id.get(video_id, []))
    if not files:
        raise DataError(json_dir, f"no <vid>_<frame:012d>_keypoints.json files for video {video_id}")
    frames = np.array([f for f, _ in files], dtype=np.int64)
    dup = np.flatnonzero(np.diff(frames) == 0)
    if len(dup):
        raise DataError(files[dup[0] + 1][1], f"frame {frames[dup[0]]} appears twice for video {video_id}")
    joints = np.zeros((len(files), OPENPOSE67.num_joints, 3))
    counts = np.zeros(len(files), dtype=np.int64)
    for t, (_, path) in enumerate(files):
        joints[t], counts[t] = read_openpose_frame(path)
    stats = {"frames": len(files), "no_person": int((counts == 0).sum()), "several_people": int((counts > 1).sum())}
    return int(video_id), frames, joints, stats


def _video_dirs(json_dir: Path) -> list[Path]:
    if not json_dir.is_dir():
        raise DataError(json_dir, "not a folder of OpenPose JSON files")
    if any(FRAME_FILE.match(p.name) for p in json_dir.iterdir()):
        return [json_dir]
    subs = sorted(p for p in json_dir.iterdir() if p.is_dir() and any(FRAME_FILE.match(q.name) for q in p.iterdir()))
    if not subs:
        raise DataError(json_dir, "no <vid>_<frame:012d>_keypoints.json files here or in its sub-folders")
    return subs


def _find_video(videos_dir: Path | None, vid: int) -> Path | None:
    if videos_dir is None:
        return None
    for name in (f"{vid:04d}.mp4", f"{vid}.mp4"):
        if (Path(videos_dir) / name).is_file():
            return Path(videos_dir) / name
    return None


def import_openpose(
    json_dir: str | Path,
    labels_csv: str | Path,
    *,
    protocol: str | None = None,
    video_id: int | None = None,
    layout: str = "miga35",
    val_fraction: float = 0.1,
    seed: int = 0,
    img_shape: tuple[int, int] | None = None,
    videos_dir: str | Path | None = None,
    out_path: str | Path | None = None,
    skip_unusable: bool = True,
) -> tuple[list[dict], dict[str, list[str]], dict, list[dict]]:
    """OpenPose JSON folder(s) + the iMiGUE label table -> `(clips, split, meta, videos)` like `import_miga`.

    `json_dir` is one video's folder or a folder of per-video sub-folders. Clips are named
    `<vid:04d>_<k>` with k the row's 0-based position among the video's rows in the table.
    Label rows whose frames are not all within the JSON frames' span (e.g. a folder holding
    only the first frames of a video) or with no detection are skipped with a warning and
    listed in `meta['skipped']` (`skip_unusable=False` makes them a DataError). `img_shape`:
    the argument, else `<videos_dir>/<vid>.mp4`'s header, else iMiGUE's 720x1280 (noted).
    `protocol` (splits.py) defaults to `imigue-xsub`.
    """
    protocol = check_protocol(protocol or "imigue-xsub")
    json_dir = Path(json_dir)
    target = to_target_layout(layout, ("openpose67",))
    dirs = _video_dirs(json_dir)
    if video_id is not None and len(dirs) > 1:
        raise ConfigError(f"video_id={video_id} is only for a single video's folder; {json_dir} has {len(dirs)}")
    table = read_label_table(labels_csv)
    people = video_table(table, labels_csv)
    sources, missing, stats = [], [], {}
    for folder in dirs:
        vid, frames, joints, stats[folder.name] = read_openpose_folder(folder, video_id if len(dirs) == 1 else None)
        rows = label_rows(table, vid)
        if not rows:
            missing.append(f"video {vid} ({folder}): no rows in {labels_csv}")
            continue
        video = _find_video(Path(videos_dir) if videos_dir else None, vid)
        sources.append(VideoSource(vid, rows, frames, convert_rows(joints, OPENPOSE67, target), Path(labels_csv),
                                   folder, "openpose_json", video=video))
    collected = import_videos(sources, layout=target.name, people=people, img_shape=img_shape, out_path=out_path,
                              skip_unusable=skip_unusable)
    collected.skipped[:0] = missing
    meta = {
        "source": str(json_dir), "labels_table": str(labels_csv), "importer": "openpose", "layout": target.name,
        "videos": len(dirs), "frame_stats": stats,
    }
    return finish_import(collected, protocol=protocol, val_fraction=val_fraction, seed=seed, meta=meta)


def import_openpose_to_file(json_dir: str | Path, labels_csv: str | Path, out_path: str | Path, **kwargs) -> dict:
    """`import_openpose`, then save atomically (a failed import or save leaves any old file untouched).

    Returns `{'split', 'annotations', 'videos', 'meta'}` as `annotations.load_annotations` would.
    """
    return save_import(out_path, *import_openpose(json_dir, labels_csv, out_path=out_path, **kwargs))
