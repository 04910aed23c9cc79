"""Output paths checked before any work: a user learns at once that an --out cannot be written."""

from __future__ import annotations

from pathlib import Path

from microgesture.errors import DataError


def check_output_dir(path: str | Path, option: str = "--out") -> Path:
    """`path` as a folder we can write into (created); DataError when it or a parent is a file."""
    path = Path(path)
    for parent in [path, *path.parents]:
        if parent.exists() and not parent.is_dir():
            what = "is a file" if parent == path else f"lies under {parent}, which is a file"
            raise DataError(path, f"{option}: {what}, not a folder")
    path.mkdir(parents=True, exist_ok=True)
    return path


def check_output_file(path: str | Path, option: str = "--out") -> Path:
    """`path` as a file we can write (its folder created); DataError when a parent is a file or it is a folder."""
    path = Path(path)
    if path.is_dir():
        raise DataError(path, f"{option}: is a folder, expected a file name")
    check_output_dir(path.parent, option)
    return path
