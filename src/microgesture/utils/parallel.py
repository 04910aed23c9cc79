"""A folder of videos spread over processes (`--jobs N`) and machines (`--shard I/N`).

`Shard(index, count)`: of a folder's videos in sorted order, every `count`-th starting at
`index`, 0-based (`0/4`, `1/4`, `2/4`, `3/4`, as a SLURM array `--array=0-3` numbers its tasks): the
shares are disjoint, together they are the whole folder, and every machine computes the same ones.

`run_jobs(work, tasks, jobs)` calls `work(*task)` for each task: in this process, in order, when
`jobs` is 1; else in `jobs` spawned worker processes, which import what they need and build their
own models (a MediaPipe graph is never pickled or inherited through fork). It yields
`(position, result)` as each task finishes; a DataError the task raised is its result, so one bad
video does not stop the others. When the caller stops early (an error, Ctrl-C), the videos already
running are finished before it returns: their results are written, not lost. A script that calls
this with `jobs` > 1 needs the usual `if __name__ == "__main__":` guard (a spawned worker imports it).
"""

from __future__ import annotations

import multiprocessing
import re
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

from microgesture.errors import ConfigError, DataError

_SHARD = re.compile(r"\s*(\d+)\s*/\s*(\d+)\s*")


@dataclass(frozen=True)
class Shard:
    index: int  # 0-based
    count: int

    def select(self, items: list) -> list:
        """This shard's share of `items` (already in their sorted order)."""
        return list(items)[self.index::self.count]

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def parse_shard(value: str | Shard | None) -> Shard | None:
    """`"I/N"` (0 <= I < N) as a Shard; None stays None; ConfigError naming --shard otherwise."""
    if value is None:
        return None
    if isinstance(value, Shard):
        index, count, text = value.index, value.count, str(value)
    else:
        text = str(value)
        match = _SHARD.fullmatch(text)
        if match is None:
            raise ConfigError(f"--shard {text!r}: expected I/N, two whole numbers with 0 <= I < N "
                              "(0-based: 0/4, 1/4, 2/4, 3/4)")
        index, count = int(match[1]), int(match[2])
    if count < 1:
        raise ConfigError(f"--shard {text!r}: N (the number of shards) must be at least 1")
    if not 0 <= index < count:
        raise ConfigError(f"--shard {text!r}: I must be 0 to {count - 1} (shards are 0-based: 0/{count} "
                          f"to {count - 1}/{count})")
    return Shard(index, count)


def check_jobs(jobs: int) -> int:
    """`jobs` as a number of worker processes; ConfigError naming --jobs when it is not a whole number >= 1."""
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ConfigError(f"--jobs {jobs!r}: expected a whole number of processes, at least 1")
    return jobs


def _call(work: Callable, task: tuple) -> Any:
    try:
        return work(*task)
    except DataError as exc:
        return exc


def run_jobs(work: Callable, tasks: list[tuple], jobs: int = 1, *, initializer: Callable | None = None,
             initargs: tuple = ()) -> Iterator[tuple[int, Any]]:
    """(position in `tasks`, `work(*task)` or the DataError it raised), as each finishes (module doc).

    `initializer(*initargs)` runs once in each worker process, never in this one: the tasks run here
    (`jobs` 1, or a single task) use what the caller has set up."""
    check_jobs(jobs)
    if jobs == 1 or len(tasks) <= 1:
        for k, task in enumerate(tasks):
            yield k, _call(work, task)
        return
    pool = ProcessPoolExecutor(max_workers=min(jobs, len(tasks)), mp_context=multiprocessing.get_context("spawn"),
                               initializer=initializer, initargs=initargs)
    try:
        futures = {pool.submit(_call, work, task): k for k, task in enumerate(tasks)}
        for future in as_completed(futures):
            try:
                result = future.result()
            except BrokenProcessPool:
                raise DataError(None, "--jobs: a worker process died (killed, out of memory, a crash in native "
                                      "code, or a Python script calling this without `if __name__ == "
                                      "'__main__':`); the videos finished so far are kept: run again to "
                                      "resume") from None
            yield futures[future], result
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
