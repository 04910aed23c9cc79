"""Reading text tables: every CSV reader here shares these helpers and their error conventions.

`parse_*` functions collect every problem as `(where, message)` pairs (for `data validate`);
`read_*` functions raise a DataError naming the first one (`raise_first`).
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

from microgesture.errors import DataError

Issue = tuple[str, str]
MAX_ISSUES = 50


def read_lines(path: Path, issues: list[Issue]) -> list[str] | None:
    """The file's lines (UTF-8, a BOM allowed), or None with the reason added to `issues`."""
    try:
        return path.read_text(encoding="utf-8-sig").splitlines()
    except FileNotFoundError:
        issues.append(("", "file not found"))
    except IsADirectoryError:
        issues.append(("", "is a folder, expected a CSV file"))
    except UnicodeDecodeError as exc:
        issues.append(("", f"cannot be read as UTF-8 text ({exc.reason} at byte {exc.start}); "
                           "save it as UTF-8 (Excel: 'CSV UTF-8')"))
    except OSError as exc:
        issues.append(("", f"cannot be read ({type(exc).__name__}: {exc})"))
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


def is_number(text: str) -> bool:
    """Whether float() reads `text` (for saying which value of a row is not a number)."""
    try:
        float(text)
        return True
    except ValueError:
        return False


def raise_first(path: str | Path, issues: list[Issue]) -> None:
    """Raise a DataError for the first issue (and say how many more there are)."""
    if not issues:
        return
    where, message = issues[0]
    if len(issues) > 1:
        message += f" (and {len(issues) - 1} more problem(s) in this file)"
    raise DataError(path, message, where or None)


def csv_records(path: Path, issues: list[Issue]) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    """(header, [(line number, {column: stripped value})]) of a CSV file with a header row.

    Rows with more cells than the header are reported and dropped; blank rows are skipped.
    """
    lines = read_lines(path, issues)
    if lines is None:
        return [], []
    reader = csv.DictReader(lines)
    header = [h.strip() for h in reader.fieldnames or []]
    records = []
    for line_no, record in enumerate(reader, 2):
        if None in record:
            issues.append((f"line {line_no}", f"{len(header) + len(record[None])} columns, header has {len(header)}"))
            continue
        rec = {str(k).strip(): (v or "").strip() for k, v in record.items()}
        if any(rec.values()):
            records.append((line_no, rec))
    return header, records
