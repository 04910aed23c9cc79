"""MiGA challenge submission files (docs/data.md, "MiGA layouts and submissions").

Classification: one CSV zipped alone (at the zip's root), one row per test sample:
- style "2025": header `Id,Target`, then `<sample>,<class>`;
- style "2023": no header, `<sample>,<class>` (as in the MiGA 2023 sample submission).
Samples are named `<video:04d>_<k>` (k = the 0-based row of the video's label file); classes are
0-based indices (0..31, illustrative = 31). Lines end with LF.

The name of the CSV inside the zip is not fixed by any page we could read. Defaults: 2023 uses
`Submission.csv` (the MiGA 2023 winning team's published script zips `Submission.csv` into
`Submission.zip`); 2025 uses `submission.csv`. Both can be changed with `csv_name`.

Online recognition: `<vid:04d>_prediction.csv` per video, no header, rows `class,start,end`
(frames, inclusive). We write the class with the same code as `<vid>_label.csv` (raw iMiGUE
codes 1..31 and 99) by default, since predictions are compared with those files; whether the
server expects raw codes or 0-based indices is not in the record we have, so `class_codes`
switches to 0-based indices.
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from microgesture.domain.classes import NUM_CLASSES, class_index_from_raw, raw_from_class_index
from microgesture.errors import DataError
from microgesture.utils.io import atomic_open, atomic_path

STYLES = ("2025", "2023")
DEFAULT_CSV_NAMES = {"2025": "submission.csv", "2023": "Submission.csv"}
HEADER_2025 = ("Id", "Target")
CLASS_CODES = ("raw", "index")
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # fixed timestamp: the same predictions give the same bytes


def submission_csv_text(
    sample_ids: Sequence[str], classes: Any, *, style: str = "2025", num_classes: int = NUM_CLASSES
) -> str:
    """The CSV text of a classification submission (validated; see the module docstring)."""
    if style not in STYLES:
        raise ValueError(f"submission style {style!r} is not one of {STYLES}")
    ids = [str(s) for s in sample_ids]
    cls = np.asarray(classes)
    if cls.ndim != 1 or len(cls) != len(ids):
        raise ValueError(f"{len(ids)} sample ids but predicted classes of shape {cls.shape}")
    if not ids:
        raise ValueError("no samples to submit")
    if not np.issubdtype(cls.dtype, np.integer):
        raise ValueError(f"predicted classes must be integers, got dtype {cls.dtype}")
    if cls.min() < 0 or cls.max() >= num_classes:
        raise ValueError(f"predicted classes must be in 0..{num_classes - 1}, got {cls.min()}..{cls.max()}")
    seen: set[str] = set()
    for sid in ids:
        if not sid or sid != sid.strip() or any(c in sid for c in ',"\r\n'):
            raise ValueError(f"sample id {sid!r} is empty, padded or contains a comma/quote/newline")
        if sid in seen:
            raise ValueError(f"sample id {sid!r} appears twice")
        seen.add(sid)
    lines = [",".join(HEADER_2025)] if style == "2025" else []
    lines += [f"{sid},{int(c)}" for sid, c in zip(ids, cls)]
    return "\n".join(lines) + "\n"


def _write_zip(path_zip: str | Path, members: Mapping[str, str]) -> Path:
    with atomic_path(path_zip, suffix=".zip") as tmp, zipfile.ZipFile(tmp, "w") as zf:
        for name, text in members.items():
            info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, text.encode("utf-8"))
    return Path(path_zip)


def write_submission(
    path_zip: str | Path,
    sample_ids: Sequence[str],
    predicted_class_indices: Any,
    *,
    style: str = "2025",
    csv_name: str | None = None,
    num_classes: int = NUM_CLASSES,
) -> Path:
    """Write a zipped classification submission atomically; returns `path_zip`.

    Raises ValueError for mismatched lengths, repeated or malformed ids, classes out of range.
    """
    name = csv_name or DEFAULT_CSV_NAMES.get(style, "submission.csv")
    if "/" in name or "\\" in name or not name.lower().endswith(".csv"):
        raise ValueError(f"csv_name {name!r} must be a plain file name ending in .csv")
    text = submission_csv_text(sample_ids, predicted_class_indices, style=style, num_classes=num_classes)
    return _write_zip(path_zip, {name: text})


@dataclass
class Submission:
    """A classification submission read back: ids, 0-based classes, detected style, CSV name."""

    sample_ids: list[str]
    classes: np.ndarray
    style: str
    csv_name: str


def _submission_text(path: Path) -> tuple[str, str]:
    if not path.is_file():
        raise DataError(path, "submission file not found")
    if not zipfile.is_zipfile(path):
        return path.name, path.read_bytes().decode("utf-8-sig")
    with zipfile.ZipFile(path) as zf:
        names = [n for n in zf.namelist() if not n.endswith("/") and not n.startswith("__MACOSX/")]
        if len(names) != 1 or not names[0].lower().endswith(".csv"):
            raise DataError(path, f"a submission zip holds exactly one .csv file; found {names}")
        return names[0], zf.read(names[0]).decode("utf-8-sig")


def read_submission(
    path: str | Path, *, num_classes: int = NUM_CLASSES, expected_ids: Iterable[str] | None = None
) -> Submission:
    """Read and validate a classification submission (a .zip with one CSV, or the CSV itself).

    Checks: two columns per row, style detected from an `Id,Target` header, ids non-empty and
    unique, classes integers in 0..num_classes-1, and with `expected_ids` the exact id set.
    Raises DataError naming the file, the CSV inside and the line.
    """
    path = Path(path)
    member, text = _submission_text(path)
    rows = list(csv.reader(io.StringIO(text, newline="")))
    style = "2025" if rows and tuple(c.strip() for c in rows[0]) == HEADER_2025 else "2023"
    start = 1 if style == "2025" else 0
    ids: list[str] = []
    classes: list[int] = []
    first_line: dict[str, int] = {}
    for n, row in enumerate(rows[start:], start=start + 1):
        where = f"{member} line {n}"
        if not row:
            continue
        if len(row) != 2:
            raise DataError(path, f"{len(row)} columns, expected 2 (<sample>,<class>)", where)
        sid, text_cls = row[0].strip(), row[1].strip()
        if not sid:
            raise DataError(path, "empty sample id", where)
        if sid in first_line:
            raise DataError(path, f"sample {sid!r} already given on line {first_line[sid]}", where)
        try:
            c = int(text_cls)
        except ValueError:
            raise DataError(path, f"class {text_cls!r} is not an integer", where) from None
        if not 0 <= c < num_classes:
            raise DataError(path, f"class {c} is outside 0..{num_classes - 1}", where)
        first_line[sid] = n
        ids.append(sid)
        classes.append(c)
    if not ids:
        raise DataError(path, "no predictions in the submission", member)
    if expected_ids is not None:
        _check_expected(path, ids, list(expected_ids))
    return Submission(ids, np.asarray(classes, dtype=np.int64), style, member)


def _check_expected(path: Path, ids: list[str], expected: list[str]) -> None:
    got, want = set(ids), set(expected)
    missing = [s for s in expected if s not in got]
    extra = [s for s in ids if s not in want]
    if missing or extra:
        raise DataError(
            path,
            f"{len(missing)} expected samples missing (e.g. {missing[:3]}), "
            f"{len(extra)} unexpected samples (e.g. {extra[:3]})",
        )


def online_prediction_name(video_id: int) -> str:
    return f"{int(video_id):04d}_prediction.csv"


def online_prediction_text(
    segments: Iterable[tuple[int, int, int]], *, class_codes: str = "raw", num_classes: int = NUM_CLASSES
) -> str:
    """Rows `class,start,end` for (0-based class, start frame, end frame) segments, no header."""
    if class_codes not in CLASS_CODES:
        raise ValueError(f"class_codes {class_codes!r} is not one of {CLASS_CODES}")
    lines = []
    for i, seg in enumerate(segments):
        c, start, end = (int(v) for v in seg)
        if not 0 <= c < num_classes:
            raise ValueError(f"segment {i}: class {c} is outside 0..{num_classes - 1}")
        if not 0 <= start <= end:
            raise ValueError(f"segment {i}: frames {start}..{end} (need 0 <= start <= end)")
        code = raw_from_class_index(c) if class_codes == "raw" else c
        lines.append(f"{code},{start},{end}\n")
    return "".join(lines)


def write_online_predictions(
    folder: str | Path,
    video_id: int,
    segments: Iterable[tuple[int, int, int]],
    *,
    class_codes: str = "raw",
) -> Path:
    """Write `<folder>/<vid:04d>_prediction.csv` atomically; segments are (class, start, end)."""
    text = online_prediction_text(segments, class_codes=class_codes)
    path = Path(folder) / online_prediction_name(video_id)
    with atomic_open(path, "w", encoding="utf-8", newline="") as fh:
        fh.write(text)
    return path


def write_online_submission(
    path_zip: str | Path,
    predictions: Mapping[int, Iterable[tuple[int, int, int]]],
    *,
    class_codes: str = "raw",
) -> Path:
    """Zip one `<vid:04d>_prediction.csv` per video (at the zip's root), atomically."""
    members = {
        online_prediction_name(vid): online_prediction_text(segs, class_codes=class_codes)
        for vid, segs in sorted(predictions.items())
    }
    if not members:
        raise ValueError("no videos to submit")
    return _write_zip(path_zip, members)


def read_online_predictions(path: str | Path, *, class_codes: str = "raw") -> list[tuple[int, int, int]]:
    """Read a `<vid>_prediction.csv` back as (0-based class, start, end), validating every row."""
    path = Path(path)
    if class_codes not in CLASS_CODES:
        raise ValueError(f"class_codes {class_codes!r} is not one of {CLASS_CODES}")
    out = []
    with open(path, encoding="utf-8-sig", newline="") as fh:
        reader = csv.reader(fh)
        for row in reader:
            where = f"line {reader.line_num}"
            if not row:
                continue
            try:
                code, start, end = (int(v) for v in row)
                c = class_index_from_raw(code) if class_codes == "raw" else code
            except ValueError as exc:
                raise DataError(path, f"expected class,start,end integers: {exc}", where) from None
            if not 0 <= c < NUM_CLASSES or not 0 <= start <= end:
                raise DataError(path, f"class {code} frames {start}..{end} out of range", where)
            out.append((c, start, end))
    return out
