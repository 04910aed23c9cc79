"""`microgesture extract-pose`: a video, or a folder of videos, to the MiGA per-video layout.

Each video gets an id (kept in `sources.csv`, data/formats/mediapipe.py) and its files are
written atomically, the manifest last; a video already extracted from the same file with the same
options is skipped, so an interrupted run resumes with the next unfinished video (a video cut off
half-way is redone from its start). A video that cannot be read is reported and the others go on.

At scale: `jobs` worker processes extract one video each (the same files as a serial run), and
`shard="I/N"` takes every N-th video of the sorted folder from the I-th (0-based), for one task of
a SLURM array. Ids are assigned over the whole folder under a file lock on `sources.csv`, so
shards writing into one output folder at the same time agree on every video's id.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from microgesture.data.formats.mediapipe import assign_ids, is_extracted, write_extraction
from microgesture.data.pose.extract import ExtractOptions, extract_video
from microgesture.errors import DataError
from microgesture.utils.parallel import Shard, check_jobs, parse_shard, run_jobs
from microgesture.utils.paths import check_output_dir

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv")


@dataclass
class ExtractReport:
    written: list[tuple[Path, int]] = field(default_factory=list)
    skipped: list[tuple[Path, int]] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)

    def describe(self) -> str:
        lines = [f"extracted {len(self.written)}, already done {len(self.skipped)}, failed {len(self.failed)}"]
        lines += [f"  failed: {msg}" for _, msg in self.failed]
        return "\n".join(lines)


def find_videos(source: str | Path) -> list[Path]:
    """`source` itself when it is a file, else the video files directly inside the folder (sorted)."""
    source = Path(source)
    if source.is_file():
        return [source]
    if not source.is_dir():
        raise DataError(source, "not found (expected a video file or a folder of videos)")
    videos = sorted(p for p in source.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)
    if not videos:
        raise DataError(source, f"no video files ({', '.join(VIDEO_SUFFIXES)}) in this folder")
    return videos


def extract_pose(source: str | Path, out_dir: str | Path, options: ExtractOptions = ExtractOptions(), *,
                 video_id: int | None = None, progress: bool = True, log: Callable[[str], None] | None = None,
                 jobs: int = 1, shard: str | Shard | None = None) -> ExtractReport:
    """Extract every video of `source` into `out_dir` (module doc); `video_id` only for a single file.

    `jobs`: worker processes, one video each at a time; `shard`: `"I/N"`, this run's share of the
    folder (0-based, utils/parallel.py). Ids always come from the whole folder's sorted listing."""
    options.check()
    jobs, shard = check_jobs(jobs), parse_shard(shard)
    videos = find_videos(source)
    if video_id is not None and len(videos) != 1:
        raise DataError(source, "--video-id names one video; this is a folder of several")
    out_dir = check_output_dir(out_dir)
    ids = {videos[0]: video_id} if video_id is not None else assign_ids(out_dir, videos)
    say = log or (lambda msg: print(msg, file=sys.stderr))
    mine = shard.select(videos) if shard is not None else videos
    if shard is not None:
        say(f"shard {shard}: {len(mine)} of the {len(videos)} videos")
    todo, skipped = [], {}
    for k, video in enumerate(mine, 1):
        if is_extracted(out_dir, ids[video], video, options):
            skipped[video] = ids[video]
            say(f"[{k}/{len(mine)}] {video.name} -> {ids[video]:04d}/: already done, skipped")
        else:
            todo.append((k, video))
    tasks = [(video, out_dir, ids[video], options, progress and jobs == 1) for _, video in todo]
    outcome: dict[Path, object] = {}
    for j, result in run_jobs(_extract_one, tasks, jobs):
        k, video = todo[j]
        outcome[video] = result
        if isinstance(result, DataError):
            say(f"[{k}/{len(mine)}] {video.name}: {result}")
        else:
            say(f"[{k}/{len(mine)}] {video.name} -> {ids[video]:04d}/: {result[0]} frames, a person in {result[1]}")
    report = ExtractReport()
    for video in mine:  # in the folder's order, however the workers finished
        if video in skipped:
            report.skipped.append((video, ids[video]))
        elif isinstance(outcome[video], DataError):
            report.failed.append((video, str(outcome[video])))
        else:
            report.written.append((video, ids[video]))
    return report


def _extract_one(video: Path, out_dir: Path, video_id: int, options: ExtractOptions,
                 progress: bool) -> tuple[int, int]:
    """One video's files (in a worker process with --jobs): frames and frames with a person."""
    extraction = extract_video(video, options, progress=progress)
    write_extraction(out_dir, video_id, extraction, video)
    return extraction.num_frames, int(extraction.person_found().sum())
