"""Per-video tables: the iMiGUE master label table and our `videos.csv`.

The master table (`labels_*.csv`) has one row per MG instance with the columns
`video_id,label_id,start_time,start_frame,end_time,end_frame,class,subject_id,subject_gender,
subject_nationality,win_or_lose`; `class` is the 1-based C-number (1..31) or 99 (illustrative).
`videos.csv` (written by `data synth`, or by hand) has the header `video_id[,subject_id][,emotion]`.
Both give each video a subject and an emotion (1 win, 0 lose, -1 unknown).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from microgesture.data.formats.importing import LabelRow
from microgesture.data.formats.text import Issue, csv_records, parse_int, raise_first
from microgesture.domain.classes import EMOTION_UNKNOWN, class_index_from_raw, emotion_index
from microgesture.errors import DataError

TABLE_REQUIRED = ("video_id", "start_frame", "end_frame", "class")
VideoPeople = dict[int, tuple[int, int]]  # video_id -> (subject_id, emotion)


@dataclass(frozen=True)
class TableRow:
    """One row of the iMiGUE master label table (frames inclusive)."""

    line: int
    video_id: int
    start: int
    end: int
    raw: int
    label: int
    subject_id: int
    emotion: int


def parse_emotion(text: str) -> int:
    """win/lose (also positive/negative, 1/0) -> 1/0; empty, -1, unknown -> -1; else ValueError."""
    if text.strip().lower() in ("", "-1", "unknown", "?", "nan"):
        return EMOTION_UNKNOWN
    return emotion_index(text)


def parse_label_table(path: str | Path) -> tuple[list[TableRow], list[Issue]]:
    """Rows of the iMiGUE master table and every problem found.

    `video_id`, `start_frame`, `end_frame` and `class` are required; a missing subject or
    win_or_lose column (or empty cell) gives -1.
    """
    path = Path(path)
    issues: list[Issue] = []
    header, records = csv_records(path, issues)
    missing = [c for c in TABLE_REQUIRED if c not in header]
    if header and missing:
        return [], [("line 1", f"header lacks {', '.join(missing)}; expected {', '.join(TABLE_REQUIRED)}, ...")]
    if not issues and not records:
        issues.append(("", "no rows after the header"))
    rows = []
    for line_no, rec in records:
        row = _table_row(rec, line_no, issues)
        if row is not None:
            rows.append(row)
    return rows, issues


def _table_row(rec: dict[str, str], line_no: int, issues: list[Issue]) -> TableRow | None:
    ints = {}
    for col in ("video_id", "start_frame", "end_frame", "class", "subject_id"):
        value = parse_int(rec.get(col) or ("-1" if col == "subject_id" else ""))
        if value is None:
            issues.append((f"line {line_no}, {col}", f"{rec.get(col)!r} is not an integer"))
            return None
        ints[col] = value
    try:
        label = class_index_from_raw(ints["class"])
        emotion = parse_emotion(rec.get("win_or_lose", ""))
    except ValueError as exc:
        column = "class" if "class code" in str(exc) else "win_or_lose"
        issues.append((f"line {line_no}, {column}", str(exc)))
        return None
    if not 0 <= ints["start_frame"] <= ints["end_frame"]:
        issues.append((f"line {line_no}",
                       f"frames {ints['start_frame']}..{ints['end_frame']}: expected 0 <= start <= end"))
        return None
    return TableRow(line_no, ints["video_id"], ints["start_frame"], ints["end_frame"], ints["class"], label,
                    ints["subject_id"], emotion)


def read_label_table(path: str | Path) -> list[TableRow]:
    rows, issues = parse_label_table(path)
    raise_first(path, issues)
    return rows


def video_table(rows: list[TableRow], path: str | Path | None = None) -> VideoPeople:
    """`video_id -> (subject_id, emotion)`; they must agree across a video's rows."""
    table: VideoPeople = {}
    for r in rows:
        old = table.setdefault(r.video_id, (r.subject_id, r.emotion))
        if old != (r.subject_id, r.emotion):
            raise DataError(path, f"video {r.video_id}: subject/emotion {r.subject_id}/{r.emotion} "
                                  f"disagrees with {old[0]}/{old[1]} on an earlier row", f"line {r.line}")
    return table


def label_rows(rows: list[TableRow], video_id: int) -> list[LabelRow]:
    """A video's rows as LabelRows, numbered 0.. in table order (the MiGA `<vid>_<row>` names)."""
    mine = [r for r in rows if r.video_id == video_id]
    return [LabelRow(i, r.line, r.raw, r.label, r.start, r.end) for i, r in enumerate(mine)]


def parse_videos_csv(path: str | Path) -> tuple[VideoPeople, list[Issue]]:
    """`video_id -> (subject_id, emotion)` of a `videos.csv`, and every problem found."""
    path = Path(path)
    issues: list[Issue] = []
    header, records = csv_records(path, issues)
    if not issues and "video_id" not in header:
        return {}, [("line 1", "expected a header with video_id (and subject_id, emotion)")]
    table: VideoPeople = {}
    for line_no, rec in records:
        vid = parse_int(rec.get("video_id", ""))
        subject = parse_int(rec.get("subject_id") or "-1")
        for column, value in (("video_id", vid), ("subject_id", subject)):
            if value is None:
                issues.append((f"line {line_no}, {column}", f"{rec.get(column)!r} is not an integer"))
        try:
            emotion = parse_emotion(rec.get("emotion", ""))
        except ValueError as exc:
            issues.append((f"line {line_no}, emotion", str(exc)))
            continue
        if vid is None or subject is None:
            continue
        if vid in table:
            issues.append((f"line {line_no}", f"video {vid} is listed twice"))
        table[vid] = (subject, emotion)
    return table, issues


def read_videos_csv(path: str | Path) -> VideoPeople:
    table, issues = parse_videos_csv(path)
    raise_first(path, issues)
    return table


def merge_video_tables(tables: Sequence[tuple[Path, VideoPeople]]) -> VideoPeople:
    """Combine per-video (subject, emotion) tables; -1 is unknown; known values must agree."""
    merged: VideoPeople = {}
    for path, table in tables:
        for vid, values in table.items():
            old = merged.get(vid, (-1, -1))
            for name, a, b in zip(("subject_id", "emotion"), old, values):
                if a >= 0 and b >= 0 and a != b:
                    raise DataError(path, f"video {vid}: {name} {b} disagrees with {a} from another table")
            merged[vid] = tuple(b if b >= 0 else a for a, b in zip(old, values))
    return merged
