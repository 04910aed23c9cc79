"""What `microgesture extract-pose` writes: the MiGA per-video layout plus two files of our own.

Under the output folder, per video `<vid:04d>/`:
- `<vid>_light_hand.csv`: the MiGA skeleton CSV (miga.py: frame index, then 35 joints x
  (x, y, confidence) in video pixels), converted from MediaPipe's landmarks by the declared
  `mediapipe75 -> miga35` conversion; every importer and trained model reads it. To import the
  folder as a dataset, add each video's `<vid>_label.csv`.
- `<vid>_face.csv`: no header, one row per frame, `frame,x0,y0,x1,y1,score`: the followed
  person's face box in video pixels (all zero where no face was found).
- `<vid>_pose.json`: the manifest, written last: the source video (path, size, modification
  time), the extractor and its options, frame rate and size, frames with a person, stage timings.
  A video whose manifest names the same source file and options is already extracted.
Beside the video folders, `sources.csv` (`video_id,source`) keeps each source file's id, so a
folder extracted in several runs keeps its numbering; `.sources.csv.lock` is the lock file of the
runs that update it (shards of one folder at the same time).
"""

from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from microgesture.data.formats.miga import skeleton_path, video_folder, write_skeleton
from microgesture.errors import DataError
from microgesture.utils.io import atomic_open, write_text
from microgesture.utils.runlock import waiting_lock

FORMAT = "microgesture-mediapipe"
VERSION = 1
SOURCES = "sources.csv"
SOURCES_LOCK = ".sources.csv.lock"
EXTRACTOR = "MediaPipe 0.10.21 solutions: BlazePose (model_complexity=1), Hands, full-range face detection"


def manifest_path(root: str | Path, video_id: int) -> Path:
    return video_folder(root, video_id) / f"{video_id:04d}_pose.json"


def face_path(root: str | Path, video_id: int) -> Path:
    return video_folder(root, video_id) / f"{video_id:04d}_face.csv"


def source_signature(video: str | Path) -> dict[str, Any]:
    """What identifies a source file's content cheaply: absolute path, size, modification time."""
    st = os.stat(video)
    return {"path": str(Path(video).resolve()), "bytes": st.st_size, "mtime_ns": st.st_mtime_ns}


def is_extracted(root: str | Path, video_id: int, video: str | Path, options: Any) -> bool:
    """True when `<vid>_pose.json` records this very source file and these options."""
    path = manifest_path(root, video_id)
    if not path.is_file():
        return False
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return manifest.get("source") == source_signature(video) and manifest.get("options") == asdict(options)


def write_faces(path: Path, boxes: np.ndarray) -> None:
    with atomic_open(path, "w", newline="") as fh:
        for t, row in enumerate(boxes):
            fh.write(f"{t}," + ",".join(f"{v:.6g}" for v in row) + "\n")


def read_faces(path: str | Path) -> np.ndarray:
    """[T, 5] face boxes of a `<vid>_face.csv`."""
    path = Path(path)
    try:
        rows = np.loadtxt(path, delimiter=",", ndmin=2)
    except (OSError, ValueError) as exc:
        raise DataError(path, f"expected rows frame,x0,y0,x1,y1,score ({exc})") from None
    if rows.size == 0:
        return np.zeros((0, 5), dtype=np.float32)
    if rows.shape[1] != 6:
        raise DataError(path, f"{rows.shape[1]} columns, expected 6 (frame,x0,y0,x1,y1,score)")
    return rows[:, 1:].astype(np.float32)


def write_extraction(root: str | Path, video_id: int, extraction: Any, video: str | Path) -> Path:
    """Write one video's files (module doc); the manifest last. Returns the skeleton CSV's path."""
    folder = video_folder(root, video_id)
    folder.mkdir(parents=True, exist_ok=True)
    skeleton = skeleton_path(root, video_id)
    write_skeleton(skeleton, extraction.frames, extraction.joints("miga35"))
    write_faces(face_path(root, video_id), extraction.face_boxes)
    manifest = {"format": FORMAT, "version": VERSION, "video_id": int(video_id), "extractor": EXTRACTOR,
                "layout": "miga35", **extraction.describe(),
                "files": {"skeleton": skeleton.name, "faces": face_path(root, video_id).name}}
    manifest.update(source=source_signature(video), options=asdict(extraction.options))
    write_text(manifest_path(root, video_id), json.dumps(manifest, indent=2))
    return skeleton


def read_manifest(root: str | Path, video_id: int) -> dict[str, Any]:
    path = manifest_path(root, video_id)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(path, "not found: the video has not been extracted") from None
    except (OSError, ValueError) as exc:
        raise DataError(path, f"not a readable JSON manifest ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise DataError(path, f"not a {FORMAT} manifest")
    return data


def read_sources(root: str | Path) -> dict[str, int]:
    """source path -> video id, from `sources.csv` (empty when there is none yet)."""
    path = Path(root) / SOURCES
    if not path.is_file():
        return {}
    out = {}
    with open(path, encoding="utf-8", newline="") as fh:
        for line, row in enumerate(csv.DictReader(fh), 2):
            try:
                out[row["source"]] = int(row["video_id"])
            except (KeyError, TypeError, ValueError):
                raise DataError(path, "expected columns video_id,source with an integer id", f"line {line}") from None
    return out


def assign_ids(root: str | Path, videos: list[Path]) -> dict[Path, int]:
    """An id for each video: its old one from `sources.csv`, else the next free one in the order of
    `videos` (a folder's sorted listing); the table is rewritten. Under a file lock: runs into one
    folder at once (the shards of a folder, each passing the whole listing) all get the same ids."""
    with waiting_lock(Path(root) / SOURCES_LOCK, "assigning video ids in sources.csv"):
        return _assign_ids(root, videos)


def _assign_ids(root: str | Path, videos: list[Path]) -> dict[Path, int]:
    known = read_sources(root)
    ids = {}
    next_id = max(known.values(), default=0) + 1
    for video in videos:
        key = str(video.resolve())
        if key not in known:
            known[key], next_id = next_id, next_id + 1
        ids[video] = known[key]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["video_id", "source"])
    for source, vid in sorted(known.items(), key=lambda kv: kv[1]):
        writer.writerow([vid, source])
    write_text(Path(root) / SOURCES, buf.getvalue())
    return ids
