"""Output paths checked before any work: a user learns at once that an --out cannot be written."""

from __future__ import annotations

from pathlib import Path

from microgesture.errors import DataError


def _blocked(path: Path, option: str, parents_only: bool) -> None:
    """DataError when `path` (or, with `parents_only`, one of its parents) is an existing regular file."""
    for place in path.parents if parents_only else [path, *path.parents]:
        if place.exists() and not place.is_dir():
            what = "is a file" if place == path else f"lies under {place}, which is a file, not a folder"
            raise DataError(path, f"{option}: {what}; choose another path")


def check_output_dir(path: str | Path, option: str = "--out", *, create: bool = True) -> Path:
    """`path` as a folder we can write into (created unless `create` is False); DataError when
    it or a parent is a file."""
    path = Path(path)
    _blocked(path, option, parents_only=False)
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path


def check_output_file(path: str | Path, option: str = "--out") -> Path:
    """`path` as a file we can write; DataError when it is a folder or a parent of it is a file."""
    path = Path(path)
    if path.is_dir():
        raise DataError(path, f"{option}: is a folder, expected a file name")
    _blocked(path, option, parents_only=True)
    return path
