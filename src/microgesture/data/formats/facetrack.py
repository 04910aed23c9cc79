"""Face-track files: the aligned face crop of every frame of a source video, and where it came from.

Beside a source video `<name>.<ext>` (or under an output folder, same relative path) live

    <name>_face.mp4   112x112 RGB, the source's frame count and frame rate; frame i is the aligned
                      face crop of source frame i; frames without a face are black
    <name>_face.csv   header `frame,x0,y0,x1,y1,score,missing`, one row per frame 0..N-1:
                      x0,y0,x1,y1  the square crop region in source pixels (before the crop is
                                   rotated about its centre to level the eyes); empty when the
                                   frame has no face box
                      score        detection confidence 0..1 (see docs/faces.md for tracked and
                                   bridged frames); 0 when there is no box
                      missing      1 when no face was found (black frame) or the box was bridged
                                   over failed detections (crop drawn but not confirmed), else 0

Writers here are atomic; readers check the header, the frame column (0..N-1, in order) and
every value, and name the file, line and column of the first problem.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from microgesture.data.formats.text import MAX_ISSUES, Issue, raise_first, read_lines
from microgesture.utils.io import atomic_open

FACE_SIZE = 112
HEADER = ("frame", "x0", "y0", "x1", "y1", "score", "missing")
SUFFIX = "_face"


def face_video_path(video: str | Path) -> Path:
    """`<dir>/<name>_face.mp4` for the source video `<dir>/<name>.<ext>`."""
    video = Path(video)
    return video.with_name(f"{video.stem}{SUFFIX}.mp4")


def face_csv_path(face_video: str | Path) -> Path:
    """The CSV that goes with a face-track video (`<name>_face.mp4` -> `<name>_face.csv`)."""
    return Path(face_video).with_suffix(".csv")


def is_face_video(path: str | Path) -> bool:
    return Path(path).stem.endswith(SUFFIX)


@dataclass
class FaceTrack:
    """The rows of a `<name>_face.csv`: boxes [N, 4] float64 (NaN where empty), score [N], missing [N] bool."""

    boxes: np.ndarray
    score: np.ndarray
    missing: np.ndarray

    def __len__(self) -> int:
        return len(self.missing)

    @property
    def has_box(self) -> np.ndarray:
        return np.isfinite(self.boxes).all(axis=1)


def write_face_csv(path: str | Path, boxes: np.ndarray, score: np.ndarray, missing: np.ndarray) -> None:
    """Write one row per frame (see module doc) atomically; rows whose box has a NaN get empty box cells."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    score = np.asarray(score, dtype=np.float64).reshape(-1)
    missing = np.asarray(missing, dtype=bool).reshape(-1)
    if not len(boxes) == len(score) == len(missing):
        raise ValueError(f"boxes, score and missing need one row per frame, got {len(boxes)}, {len(score)}, {len(missing)}")
    lines = [",".join(HEADER)]
    for i, (box, s, m) in enumerate(zip(boxes, score, missing)):
        cells = ",".join(f"{v:.2f}" for v in box) if np.isfinite(box).all() else ",,,"
        lines.append(f"{i},{cells},{s:.3f},{int(m)}")
    with atomic_open(path, "w", newline="") as fh:
        fh.write("\n".join(lines) + "\n")


def _parse_row(parts: list[str], where: str, issues: list[Issue]) -> tuple[list[float], float, int] | None:
    cells = [p.strip() for p in parts]
    box_cells = cells[1:5]
    if all(c == "" for c in box_cells):
        box = [np.nan] * 4
    else:
        box = []
        for name, cell in zip(HEADER[1:5], box_cells):
            try:
                box.append(float(cell))
            except ValueError:
                issues.append((f"{where}, {name}", f"{cell!r} is not a number (or leave all four box cells empty)"))
                return None
        if not np.isfinite(box).all() or box[2] <= box[0] or box[3] <= box[1]:
            issues.append((f"{where}, x0..y1", f"box {box} is not finite with x1 > x0 and y1 > y0"))
            return None
    try:
        score = float(cells[5])
    except ValueError:
        issues.append((f"{where}, score", f"{cells[5]!r} is not a number"))
        return None
    if not 0.0 <= score <= 1.0:
        issues.append((f"{where}, score", f"{score} is not a confidence in 0..1"))
        return None
    if cells[6] not in ("0", "1"):
        issues.append((f"{where}, missing", f"{cells[6]!r}, expected 0 or 1"))
        return None
    if cells[6] == "0" and not np.isfinite(box).all():
        issues.append((f"{where}, missing", "0 but the row has no box (a frame without a box is missing)"))
        return None
    return box, score, int(cells[6])


def parse_face_csv(path: str | Path) -> tuple[FaceTrack, list[Issue]]:
    """The rows of a face-track CSV and every problem found (bad rows are dropped)."""
    path = Path(path)
    issues: list[Issue] = []
    lines = read_lines(path, issues) or []
    if lines and tuple(c.strip() for c in lines[0].split(",")) != HEADER:
        issues.append(("line 1", f"header {lines[0].strip()!r}, expected {','.join(HEADER)!r}"))
        lines = []
    boxes, scores, missing = [], [], []
    for line_no, line in enumerate(lines[1:], 2):
        if not line.strip():
            continue
        where = f"line {line_no}"
        parts = line.split(",")
        if len(parts) != len(HEADER):
            issues.append((where, f"{len(parts)} columns, expected {len(HEADER)} ({','.join(HEADER)})"))
            continue
        if parts[0].strip() != str(len(boxes)):
            issues.append((f"{where}, frame", f"{parts[0].strip()!r}, expected {len(boxes)}: one row per frame, in order from 0"))
            break
        row = _parse_row(parts, where, issues)
        if row is None:
            continue
        boxes.append(row[0])
        scores.append(row[1])
        missing.append(row[2])
    if lines and not boxes and not issues:
        issues.append(("", "no rows, expected one row per frame"))
    track = FaceTrack(np.asarray(boxes, dtype=np.float64).reshape(-1, 4), np.asarray(scores, dtype=np.float64),
                      np.asarray(missing, dtype=bool))
    return track, issues[:MAX_ISSUES]


def read_face_csv(path: str | Path) -> FaceTrack:
    """The rows of a face-track CSV; DataError naming the first problem."""
    track, issues = parse_face_csv(path)
    raise_first(path, issues)
    return track
