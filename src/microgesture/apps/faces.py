"""Face tracks at a glance: a contact sheet of won and lost videos' face tracks, and their statistics.

`face_track_sheet(annotations, out_png)` reads an annotation file whose video records have face
tracks (`face_video_path`: the synthetic data, or videos after `microgesture extract-faces` and
an import), draws a row of evenly spaced crops for a few won and a few lost videos (different
subjects where possible; a red bar under crops whose frame is missing) and returns one line:
how many videos have a face track, their frames, and the shares of frames missing and bridged.
The demo calls it on its synthetic dataset (a few seconds).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from microgesture.data.formats.annotations import load_annotations, resolve_face_video_path
from microgesture.data.formats.facetrack import FACE_SIZE, face_csv_path, read_face_csv
from microgesture.data.video import read_frames
from microgesture.errors import DataError
from microgesture.utils.io import atomic_path

EMOTIONS = {1: "won", 0: "lost", -1: "unknown"}


def _pick(records: list[dict], per_emotion: int) -> list[dict]:
    """Up to `per_emotion` videos per emotion, one per subject first."""
    out = []
    for emotion in (1, 0, -1):
        pool = [r for r in records if r["emotion"] == emotion]
        seen, first, rest = set(), [], []
        for r in pool:
            (rest if r["subject_id"] in seen else first).append(r)
            seen.add(r["subject_id"])
        out += (first + rest)[:per_emotion]
    return out


def _row(record: dict, path: Path, frames: int) -> np.ndarray:
    track = read_face_csv(face_csv_path(path))
    idx = np.linspace(0, len(track) - 1, frames).round().astype(int)
    crops = read_frames(path, idx.tolist()).copy()
    crops[track.missing[idx], -4:] = (220, 30, 30)
    label = np.full((FACE_SIZE, 150, 3), 255, np.uint8)
    for k, text in enumerate((f"video {record['video_id']}", f"subject {record['subject_id']}",
                              EMOTIONS.get(record["emotion"], "?"))):
        cv2.putText(label, text, (6, 30 + 28 * k), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([label, *crops], axis=1)


def face_track_sheet(annotations: str | Path, out_png: str | Path, *, per_emotion: int = 3, frames: int = 8) -> str:
    """Write the contact sheet (PNG) and return the summary line (see module doc)."""
    data = load_annotations(annotations)
    records = [r for r in data["videos"] if r.get("face_video_path")]
    if not records:
        raise DataError(annotations, "no video record has a face track (face_video_path): run `microgesture "
                                     "extract-faces` on the videos (or generate synthetic data with video), then import")
    total = with_box = bridged = 0
    for r in records:
        track = read_face_csv(face_csv_path(resolve_face_video_path(data, r)))
        total += len(track)
        with_box += int(track.has_box.sum())
        bridged += int((track.has_box & track.missing).sum())
    rows = [_row(r, resolve_face_video_path(data, r), frames) for r in _pick(records, per_emotion)]
    sheet = np.concatenate([np.pad(r, ((0, 4), (0, 0), (0, 0)), constant_values=255) for r in rows])
    with atomic_path(out_png, suffix=".png") as tmp:
        if not cv2.imwrite(str(tmp), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR)):
            raise DataError(out_png, "could not write the PNG")
    return (f"face tracks: {len(records)} of {len(data['videos'])} videos, {total} frames, "
            f"{100 * (total - with_box) / total:.1f} % without a face (black), {100 * bridged / total:.1f} % bridged; "
            f"sheet: {out_png}")
