"""Sample names: MiGA's `<video:04d>_<row>`, the id every file format and submission shares."""

from __future__ import annotations

import re

_SAMPLE_RE = re.compile(r"(\d{4,})_(\d+)")


def sample_name(video_id: int, row: int) -> str:
    """MiGA's sample name `<video:04d>_<row>`, e.g. (187, 3) -> '0187_3'."""
    if video_id < 0 or row < 0:
        raise ValueError(f"video id and row must be >= 0, got ({video_id}, {row})")
    return f"{int(video_id):04d}_{int(row)}"


def parse_sample_name(name: str) -> tuple[int, int]:
    """'0187_3' -> (187, 3); ValueError for anything `sample_name` would not produce."""
    m = _SAMPLE_RE.fullmatch(name)
    if m is None or sample_name(int(m[1]), int(m[2])) != name:
        raise ValueError(f"{name!r} is not a MiGA sample name '<video:04d>_<row>'")
    return int(m[1]), int(m[2])
