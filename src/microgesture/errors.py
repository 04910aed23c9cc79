"""Errors the user is meant to read: each names the file, the place in it and what was expected."""

from __future__ import annotations

from pathlib import Path


_WORKER = "in DataLoader worker process"


def _unwrap(text: str, cls: type) -> str:
    """The original message of an error raised in a DataLoader worker process. torch re-raises it
    in the main process by calling the class with one string: its own header, then the worker's
    whole traceback, whose last entry is `module.Class: original message`."""
    marker = f"{cls.__module__}.{cls.__qualname__}: "
    if _WORKER in text.split("\n", 1)[0] and marker in text:
        return text.rsplit(marker, 1)[1].rstrip()
    return text


class MicrogestureError(Exception):
    """Base class for every error this toolkit raises on purpose."""

    def __init__(self, *args):
        if len(args) == 1 and isinstance(args[0], str):
            args = (_unwrap(args[0], type(self)),)
        super().__init__(*args)


class DataError(MicrogestureError, ValueError):
    """A data file (annotations, CSV, JSON, video, checkpoint) is missing or malformed."""

    def __init__(self, path: str | Path | None, message: str | None = None, where: str | None = None):
        if message is None:  # one string: torch re-raising the error of a worker process
            path, message = None, _unwrap(str(path), type(self))
        self.path = None if path is None else Path(path)
        self.where = where
        self.detail = message
        prefix = "" if path is None else f"{path}"
        if where:
            prefix = f"{prefix}: {where}" if prefix else where
        super().__init__(f"{prefix}: {message}" if prefix else message)


class ConfigError(MicrogestureError, ValueError):
    """A configuration key is unknown, mistyped or out of range."""
