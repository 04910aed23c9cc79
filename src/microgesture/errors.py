"""Errors the user is meant to read: each names the file, the place in it and what was expected."""

from __future__ import annotations

from pathlib import Path


class MicrogestureError(Exception):
    """Base class for every error this toolkit raises on purpose."""


class DataError(MicrogestureError, ValueError):
    """A data file (annotations, CSV, JSON, video, checkpoint) is missing or malformed."""

    def __init__(self, path: str | Path | None, message: str, where: str | None = None):
        self.path = None if path is None else Path(path)
        self.where = where
        self.detail = message
        prefix = "" if path is None else f"{path}"
        if where:
            prefix = f"{prefix}: {where}" if prefix else where
        super().__init__(f"{prefix}: {message}" if prefix else message)


class ConfigError(MicrogestureError, ValueError):
    """A configuration key is unknown, mistyped or out of range."""
