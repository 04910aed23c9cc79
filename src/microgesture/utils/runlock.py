"""One writer per run folder: a lock file naming the process that writes there.

`RunLock(run_dir)` creates `run_dir/.lock` (holding the host and process id) atomically; a second
run into the same folder gets a DataError naming the folder and the running process. A lock left
by a process that no longer exists (killed, crashed) is taken over with a warning. Only the main
process of a distributed run takes the lock (its other ranks write nothing of their own there).

`waiting_lock(path, what)` is the other kind: shared data made once by whoever comes first (the
synthetic dataset), where a second process waits for the first instead of failing.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import warnings
from contextlib import contextmanager
from pathlib import Path

from microgesture.errors import DataError

LOCK_NAME = ".lock"


def _is_main_rank() -> bool:
    return all(os.environ.get(var, "0") == "0" for var in ("RANK", "LOCAL_RANK", "NODE_RANK"))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _remove_litter(run_dir: Path) -> None:
    """Temporary files of atomic writes cut short (a kill -9 mid-save); safe to delete under the lock."""
    for tmp in [*run_dir.glob(".*.tmp"), *run_dir.glob("*/.*.tmp")]:
        tmp.unlink(missing_ok=True)


class RunLock:
    def __init__(self, run_dir: str | Path):
        self.path = Path(run_dir) / LOCK_NAME
        self.held = False
        self.created = False

    def __enter__(self) -> RunLock:
        if not _is_main_rank():
            return self
        run_dir = self.path.parent
        if run_dir.exists() and not run_dir.is_dir():
            raise DataError(run_dir, "is a file, not a run folder: choose another --out")
        self.created = not run_dir.exists()
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise DataError(run_dir, "cannot create the run folder: a parent of it is a file") from None
        me = {"host": socket.gethostname(), "pid": os.getpid()}
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                self._take_over_if_stale(me)
                continue
            with os.fdopen(fd, "w") as fh:
                json.dump(me, fh)
            self.held = True
            _remove_litter(run_dir)
            return self
        raise DataError(run_dir, "could not lock the run folder")

    def _take_over_if_stale(self, me: dict) -> None:
        try:
            owner = json.loads(self.path.read_text())
            host, pid = owner["host"], int(owner["pid"])
        except (OSError, ValueError, KeyError, TypeError):
            host, pid = me["host"], -1  # unreadable: a writer died mid-write
        if host != me["host"]:
            raise DataError(self.path.parent, f"in use by process {pid} on host {host} (if that run is gone, "
                                              f"delete {self.path})")
        if pid > 0 and _alive(pid):
            raise DataError(self.path.parent, f"in use by a run still going (process {pid}); wait for it, "
                                              "or choose another --out")
        warnings.warn(f"{self.path.parent}: taking over the lock of process {pid}, which is gone", stacklevel=3)
        self.path.unlink(missing_ok=True)

    def __exit__(self, exc_type, exc, tb) -> None:
        if self.held:
            self.path.unlink(missing_ok=True)
            self.held = False
            # A run that failed before writing anything leaves no empty folder behind.
            if exc_type is not None and self.created and not any(self.path.parent.iterdir()):
                self.path.parent.rmdir()


@contextmanager
def waiting_lock(path: str | Path, what: str):
    """Hold an exclusive lock on the file `path` (created if missing), waiting for another process that
    holds it; says once on stderr what it waits for. Where `fcntl` is missing (Windows) it does not lock."""
    try:
        import fcntl
    except ImportError:  # no advisory locks: as before, concurrent writers are the user's to avoid
        yield
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"waiting for another process {what} ({path})", file=sys.stderr, flush=True)
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
