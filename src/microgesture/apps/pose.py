"""`microgesture extract-pose`: a video, or a folder of videos, to the MiGA per-video layout.

Each video gets an id (kept in `sources.csv`, data/formats/mediapipe.py) and its files are
written atomically, the manifest last; a video already extracted from the same file with the same
options is skipped, so an interrupted run resumes with the next unfinished video (a video cut off
half-way is redone from its start). A video that cannot be read is reported and the others go on.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from microgesture.data.formats.mediapipe import assign_ids, is_extracted, write_extraction
from microgesture.data.pose.extract import ExtractOptions, extract_video
from microgesture.errors import DataError
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
                 video_id: int | None = None, progress: bool = True,
                 log: Callable[[str], None] | None = None) -> ExtractReport:
    """Extract every video of `source` into `out_dir` (module doc); `video_id` only for a single file."""
    options.check()
    videos = find_videos(source)
    if video_id is not None and len(videos) != 1:
        raise DataError(source, "--video-id names one video; this is a folder of several")
    out_dir = check_output_dir(out_dir)
    ids = {videos[0]: video_id} if video_id is not None else assign_ids(out_dir, videos)
    say = log or (lambda msg: print(msg, file=sys.stderr))
    report = ExtractReport()
    for k, video in enumerate(videos, 1):
        vid = ids[video]
        if is_extracted(out_dir, vid, video, options):
            report.skipped.append((video, vid))
            continue
        try:
            extraction = extract_video(video, options, progress=progress)
        except DataError as exc:
            report.failed.append((video, str(exc)))
            say(f"[{k}/{len(videos)}] {video.name}: {exc}")
            continue
        write_extraction(out_dir, vid, extraction, video)
        found = int(extraction.person_found().sum())
        say(f"[{k}/{len(videos)}] {video.name} -> {vid:04d}/: {extraction.num_frames} frames, "
            f"a person in {found}")
        report.written.append((video, vid))
    return report
