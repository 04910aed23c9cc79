"""Face tracks of real videos: detect, track, crop and write them (`microgesture extract-faces`).

For each video `<root>/<rel>/<name>.<ext>` it writes `<out>/<rel>/<name>_face.mp4` and
`<name>_face.csv` (data/formats/facetrack.py; `out` defaults to `root`, so a MiGA folder gets its
face tracks where the importer looks for them). One pass over the video: a decoder thread feeds
frames; the detector runs on every `stride`-th frame; `SubjectTracker` (track.py) follows the
subject in between and releases each frame's box once it is final, about `max_gap + smooth`
frames later; the frame is then cropped (crop.py) and encoded. Only those few frames are held.

`<out>/faces_manifest.json` records the settings (detector, model, stride, ...), and per video
its source (path, size, modification time), frame count, frames with a face and the warnings.
A video whose outputs exist and whose source is unchanged is skipped, so an interrupted run
resumes with the next video; each file is written atomically (a video cut short leaves nothing).
A folder made with other settings is refused unless `overwrite`.

At scale: `jobs` worker processes take one video each (each process makes its own detector;
the files are those of a serial run), and `shard="I/N"` takes every N-th of the sorted videos
from the I-th (0-based), for one task of a SLURM array. Shards may write into one folder at the
same time: each video's entry is merged into the manifest under a file lock
(`.faces_manifest.json.lock`), so no run overwrites another's entries.

Bad input never stops the run: no face, several faces, a face at the frame edge, tiny faces and
flickering detections each follow a policy (track.py, docs/faces.md) and give a warning naming
the video and the frames.
"""

from __future__ import annotations

import json
import os
import queue
import threading
import time
import warnings
from collections import deque
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from microgesture.data.faces.crop import aligned_crop, face_from_joints, face_joint_indices, outside_share
from microgesture.data.faces.detect import DETECTORS, MEDIAPIPE_MODELS, make_detector
from microgesture.data.faces.track import FrameBox, SubjectTracker, TrackSettings
from microgesture.data.formats.facetrack import FACE_SIZE, face_csv_path, is_face_video, write_face_csv
from microgesture.data.video import iter_frames, video_info, write_video
from microgesture.errors import ConfigError, DataError
from microgesture.utils.io import write_text
from microgesture.utils.parallel import Shard, check_jobs, parse_shard, run_jobs
from microgesture.utils.runlock import waiting_lock

FORMAT_NAME = "microgesture-face-tracks"
FORMAT_VERSION = 1
MANIFEST = "faces_manifest.json"
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v")
EDGE_SHARE = 0.25      # warn when more than this share of a crop lies outside the frame
BOXES = ("detector", "skeleton")


@dataclass(frozen=True)
class FaceSettings:
    """How faces are found, followed and cropped (docs/faces.md explains each)."""

    detector: str = "auto"      # auto | mediapipe | haar
    model: str = "full"         # MediaPipe: full (up to ~5 m) | short (within ~2 m)
    stride: int = 5             # detect on every stride-th frame, track in between
    min_score: float = 0.5
    min_face: float = 20.0      # faces with a smaller box side (pixels) are ignored
    margin: float = 1.3         # crop side / face box side
    max_gap_s: float = 0.5      # longest gap bridged between two detections (seconds)
    smooth: int = 2             # boxes averaged over +-smooth frames
    detect_size: int = 640      # longer side of the frame the detector sees
    track: bool = True          # template tracking between detections (else linear interpolation)
    boxes: str = "detector"     # detector | skeleton (face joints of <name>_light_hand.csv)

    def check(self) -> None:
        bad = []
        if self.detector not in DETECTORS:
            bad.append(f"detector {self.detector!r} (expected one of {', '.join(DETECTORS)})")
        if self.model not in MEDIAPIPE_MODELS:
            bad.append(f"model {self.model!r} (expected one of {', '.join(MEDIAPIPE_MODELS)})")
        if self.boxes not in BOXES:
            bad.append(f"boxes {self.boxes!r} (expected one of {', '.join(BOXES)})")
        for name, value, low in (("stride", self.stride, 1), ("detect_size", self.detect_size, 32),
                                 ("smooth", self.smooth, 0)):
            if int(value) != value or value < low:
                bad.append(f"{name} {value!r} (expected an integer >= {low})")
        for name, value, low, high in (("min_score", self.min_score, 0.0, 1.0), ("margin", self.margin, 1.0, 4.0),
                                       ("max_gap_s", self.max_gap_s, 0.0, 60.0), ("min_face", self.min_face, 0.0, 1e4)):
            if not low <= float(value) <= high:
                bad.append(f"{name} {value!r} (expected {low:g}..{high:g})")
        if bad:
            raise ConfigError("face extraction settings: " + "; ".join(bad))

    def track_settings(self, fps: float) -> TrackSettings:
        skeleton = self.boxes == "skeleton"
        return TrackSettings(stride=1 if skeleton else int(self.stride), max_gap=int(round(self.max_gap_s * fps)),
                             smooth=int(self.smooth), margin=float(self.margin), min_face=float(self.min_face),
                             template=self.track and not skeleton)


@dataclass
class FaceTrackResult:
    """What one video's extraction produced (also what the manifest keeps)."""

    video: str
    face_video: str
    frames: int
    fps: float
    with_face: int
    bridged: int
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0
    skipped: bool = False

    def describe(self) -> str:
        done = "already done" if self.skipped else f"{self.frames / max(self.seconds, 1e-9):.0f} frames/s"
        return (f"{self.video}: {self.frames} frames, {self.with_face} with a face ({self.bridged} bridged), "
                f"{self.frames - self.with_face} black -> {self.face_video} ({done})")


def frame_runs(frames: list[int] | np.ndarray, limit: int = 6) -> str:
    """'3-7, 12, 40-59 and 2 more runs' for sorted frame indices."""
    frames = sorted(int(f) for f in frames)
    runs: list[list[int]] = []
    for f in frames:
        if runs and f <= runs[-1][1] + 1:
            runs[-1][1] = f
        else:
            runs.append([f, f])
    text = ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in runs[:limit])
    return text + (f" and {len(runs) - limit} more runs" if len(runs) > limit else "")


def _prefetch(items: Iterator, depth: int = 8) -> Iterator:
    """Iterate `items` in a background thread (decoding overlaps the caller's work)."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    end = object()

    def put(x) -> bool:
        while not stop.is_set():
            try:
                q.put(x, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            for x in items:
                if not put(x):
                    return
            put(end)
        except BaseException as exc:  # handed to the caller
            put(_Failure(exc))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    try:
        while True:
            x = q.get()
            if x is end:
                return
            if isinstance(x, _Failure):
                raise x.exc
            yield x
    finally:
        stop.set()
        thread.join()


@dataclass
class _Failure:
    exc: BaseException


class _Observer:
    """The faces of frame i: the detector's on detection frames, or the skeleton's face joints."""

    def __init__(self, settings: FaceSettings, detector, skeleton: tuple[np.ndarray, np.ndarray] | None,
                 layout: str = "miga35"):
        self.detector, self.skeleton = detector, skeleton
        if skeleton is not None:
            self.index = face_joint_indices(layout)
            self.rows = {int(f): k for k, f in enumerate(skeleton[0])}

    def __call__(self, i: int, frame: np.ndarray, tracker: SubjectTracker):
        if self.skeleton is not None:
            k = self.rows.get(i)
            face = None if k is None else face_from_joints(self.skeleton[1][k, :, :2], self.skeleton[1][k, :, 2], self.index)
            return [] if face is None else [face]
        return self.detector.detect(frame) if tracker.is_detection_frame(i) else None


def extract_video(video: str | Path, out: str | Path, settings: FaceSettings = FaceSettings(), *, detector=None,
                  skeleton: tuple[np.ndarray, np.ndarray] | None = None, progress: bool = False,
                  warn: bool = True) -> FaceTrackResult:
    """Write the face track of one video to `out` (`<name>_face.mp4`) and its CSV beside it.

    `detector`: from `detect.make_detector` (made here from `settings` when None); `skeleton`:
    (frame indices, joints [T, 35, 3] in miga35) when `settings.boxes == "skeleton"`.
    """
    settings.check()
    video, out = Path(video), Path(out)
    info = video_info(video)
    if info.fps <= 0:
        raise DataError(video, "the video has no frame rate; cannot set the bridging limit or write the face track")
    own = detector is None and settings.boxes == "detector"
    if own:
        detector = make_detector(settings.detector, model=settings.model, min_score=settings.min_score,
                                 max_side=settings.detect_size)
    if settings.boxes == "skeleton" and skeleton is None:
        raise ConfigError(f"{video}: boxes from the skeleton need its joints (a <name>_light_hand.csv beside it)")
    try:
        return _extract(video, out, info, settings, _Observer(settings, detector, skeleton), progress, warn)
    finally:
        if own:
            detector.close()


def _extract(video: Path, out: Path, info, settings: FaceSettings, observe: _Observer, progress: bool,
             warn: bool) -> FaceTrackResult:
    n = info.num_frames
    tracker = SubjectTracker(n, (info.width, info.height), settings.track_settings(info.fps))
    rows: list[FrameBox] = []
    edge: list[int] = []
    bar = _bar(n, video.name, progress)
    start = time.perf_counter()

    def crop(frame: np.ndarray, fb: FrameBox) -> np.ndarray:
        rows.append(fb)
        bar.update(1)
        if not fb.has_box:
            return np.zeros((FACE_SIZE, FACE_SIZE, 3), np.uint8)
        if outside_share(fb.centre, fb.side, fb.angle, (info.width, info.height)) > EDGE_SHARE:
            edge.append(fb.index)
        return aligned_crop(frame, fb.centre, fb.side, fb.angle)

    def crops() -> Iterator[np.ndarray]:
        held: deque[np.ndarray] = deque()
        for i, frame in _prefetch(iter_frames(video)):
            if i >= n:
                raise DataError(video, f"decoded more frames than the {n} its packets announce")
            held.append(frame)
            tracker.push(i, frame, observe(i, frame, tracker))
            for fb in tracker.pop_ready():
                yield crop(held.popleft(), fb)
        if tracker.pushed != n:
            raise DataError(video, f"decoded {tracker.pushed} frames, but its packets announce {n}")
        for fb in tracker.pop_ready(final=True):
            yield crop(held.popleft(), fb)

    try:
        written = write_video(out, crops(), info.fps)
    finally:
        bar.close()
    if written != n:
        raise DataError(out, f"wrote {written} frames, expected {n}")
    boxes = np.stack([fb.box() for fb in rows])
    write_face_csv(face_csv_path(out), boxes, [fb.score for fb in rows], [fb.missing for fb in rows])
    has = np.array([fb.has_box for fb in rows])
    missing = np.array([fb.missing for fb in rows])
    notes = track_warnings(video, tracker, has, edge, settings)
    if warn:
        for text in notes:
            warnings.warn(text, UserWarning, stacklevel=2)
    return FaceTrackResult(str(video), str(out), n, float(info.fps), int(has.sum()), int((has & missing).sum()),
                           notes, time.perf_counter() - start)


def track_warnings(video: Path, tracker: SubjectTracker, has: np.ndarray, edge: list[int],
                   settings: FaceSettings) -> list[str]:
    """One line per policy that acted, naming the video and the frames."""
    r, n = tracker.report, len(has)
    out = []
    if not has.any():
        out.append(f"{video}: no face found in any of its {n} frames: the face track is black (all frames missing)")
    elif not has.all():
        out.append(f"{video}: no face in frames {frame_runs(np.flatnonzero(~has))}: black, missing")
    if r.several:
        out.append(f"{video}: several faces in frames {frame_runs(r.several)}: kept the tracked face (a track "
                   "starts at the largest, most central face)")
    if r.tiny:
        out.append(f"{video}: faces smaller than {settings.min_face:g} pixels ignored in frames {frame_runs(r.tiny)}")
    if r.bridged_failures:
        out.append(f"{video}: detections failed in frames {frame_runs(r.bridged_failures)} between detections "
                   f"at most {settings.max_gap_s:g} s apart: bridged (crops kept, missing = 1)")
    if r.restarts:
        out.append(f"{video}: the face track was lost and started again at frames {frame_runs(r.restarts)}: "
                   "the subject may have changed")
    if edge:
        out.append(f"{video}: the face is at the frame edge in frames {frame_runs(edge)}: more than "
                   f"{EDGE_SHARE:.0%} of the crop is outside the frame (black there)")
    return out


class _NoBar:
    def update(self, k: int) -> None:
        pass

    def close(self) -> None:
        pass


def _bar(total: int, name: str, progress: bool):
    if not progress:
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=total, desc=name, unit="frame", leave=False, dynamic_ncols=True)


# ----------------------------------------------------------------------------- folders and manifest


def find_videos(path: str | Path) -> tuple[Path, list[Path]]:
    """(root, videos): a video file, or every video under a folder (face tracks left out), sorted."""
    path = Path(path)
    if path.is_file():
        if path.suffix.lower() not in VIDEO_SUFFIXES:
            raise DataError(path, f"not a video file (expected one of {', '.join(VIDEO_SUFFIXES)})")
        return path.parent, [path]
    if not path.is_dir():
        raise DataError(path, "not found (expected a video file or a folder of videos)")
    videos = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES
                    and not is_face_video(p) and not p.name.startswith("."))
    if not videos:
        raise DataError(path, f"no video files ({', '.join(VIDEO_SUFFIXES)}) in this folder or below it")
    return path, videos


def _source_stamp(video: Path) -> dict[str, Any]:
    st = os.stat(video)
    return {"path": str(video.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _settings_record(settings: FaceSettings, detector_name: str | None) -> dict[str, Any]:
    record = asdict(settings)
    record["detector"] = detector_name or settings.detector
    if record["detector"] == "mediapipe":
        import mediapipe

        record["mediapipe_version"] = getattr(mediapipe, "__version__", "unknown")
    return record


class FaceManifest:
    """`faces_manifest.json` of an output folder (see module doc)."""

    def __init__(self, out: Path, settings: dict[str, Any], overwrite: bool):
        self.path = out / MANIFEST
        self.overwrite = overwrite
        self.mine: dict[str, Any] = {}  # the videos this run recorded
        self.data = {"format": FORMAT_NAME, "version": FORMAT_VERSION, "settings": settings, "videos": {}}
        if self.path.is_file() and not overwrite:
            old = self._read()
            self._check_settings(old)
            self.data["videos"] = old.get("videos", {})

    def _check_settings(self, old: dict[str, Any]) -> None:
        settings = self.data["settings"]
        if old.get("settings") != settings:
            changed = sorted(k for k in set(settings) | set(old.get("settings", {}))
                             if settings.get(k) != old.get("settings", {}).get(k))
            raise DataError(self.path, f"face tracks here were made with other settings ({', '.join(changed)} "
                                       "differ): use --overwrite to redo them, or choose another --out")

    def _read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise DataError(self.path, f"cannot read the face-track manifest ({exc}); delete it or use --overwrite") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT_NAME:
            raise DataError(self.path, f"not a {FORMAT_NAME} manifest; delete it or choose another --out")
        return data

    def done(self, rel: str, video: Path, target: Path) -> dict[str, Any] | None:
        entry = self.data["videos"].get(rel)
        if entry is None or entry.get("source") != _source_stamp(video):
            return None
        return entry if target.is_file() and face_csv_path(target).is_file() else None

    def record(self, rel: str, video: Path, result: FaceTrackResult) -> None:
        """Add one video's entry to the manifest on disk, merged under a file lock with what other
        runs (the other shards of the folder) recorded since this one started."""
        entry = asdict(result)
        entry.pop("skipped")
        entry["source"] = _source_stamp(video)
        self.mine[rel] = entry
        with waiting_lock(self.path.with_name(f".{MANIFEST}.lock"), "writing the face-track manifest"):
            videos: dict[str, Any] = {}
            if self.path.is_file():
                try:
                    disk = self._read()
                except DataError:
                    if not self.overwrite:
                        raise
                    disk = {}
                if disk.get("settings") == self.data["settings"]:
                    videos = disk.get("videos", {})
                elif not self.overwrite:
                    self._check_settings(disk)  # another run with other settings wrote here meanwhile
            videos.update(self.mine)
            self.data["videos"] = videos
            write_text(self.path, json.dumps(self.data, indent=2, sort_keys=True) + "\n")


def _skeleton_beside(video: Path) -> tuple[np.ndarray, np.ndarray]:
    from microgesture.data.formats.miga import read_skeleton

    path = video.with_name(f"{video.stem}_light_hand.csv")
    if not path.is_file():
        raise DataError(path, f"not found: --boxes skeleton needs the skeleton of {video.name} beside it")
    return read_skeleton(path)


_detector = None  # this process's detector: made once per process (a MediaPipe graph is never pickled)


def _open_detector(settings: FaceSettings) -> None:
    """Worker processes' initializer (--jobs): their own detector."""
    global _detector
    if settings.boxes == "detector":
        _detector = make_detector(settings.detector, model=settings.model, min_score=settings.min_score,
                                  max_side=settings.detect_size)


def _face_video(video: Path, target: Path, settings: FaceSettings, progress: bool) -> FaceTrackResult:
    """One video's face track, with this process's detector; warnings are the caller's to give."""
    skeleton = _skeleton_beside(video) if settings.boxes == "skeleton" else None
    return extract_video(video, target, settings, detector=_detector, skeleton=skeleton, progress=progress,
                         warn=False)


def extract_faces(path: str | Path, out: str | Path | None = None, settings: FaceSettings = FaceSettings(), *,
                  overwrite: bool = False, progress: bool = False, echo=None, jobs: int = 1,
                  shard: str | Shard | None = None) -> list[FaceTrackResult]:
    """Face tracks for a video or every video under a folder (see module doc); `echo(line)` per video.

    `jobs`: worker processes, one video each at a time (the same files as one process); `shard`:
    `"I/N"`, this run's share of the sorted videos (0-based, utils/parallel.py). A video that fails
    (a DataError) does not stop the others: they are finished and recorded, then a DataError names
    every failed video."""
    global _detector
    settings.check()
    jobs, shard = check_jobs(jobs), parse_shard(shard)
    root, videos = find_videos(path)
    mine = shard.select(videos) if shard is not None else videos
    out = Path(out) if out is not None else root
    detector = None
    if settings.boxes == "detector":
        detector = make_detector(settings.detector, model=settings.model, min_score=settings.min_score,
                                 max_side=settings.detect_size)
    manifest = FaceManifest(out, _settings_record(settings, detector.name if detector else None), overwrite)
    if echo is not None and shard is not None:
        echo(f"shard {shard}: {len(mine)} of the {len(videos)} videos")
    results: list[FaceTrackResult | None] = [None] * len(mine)
    todo, failed = [], []
    for k, video in enumerate(mine):
        rel = video.relative_to(root).as_posix()
        target = out / Path(rel).parent / f"{video.stem}_face.mp4"
        entry = None if overwrite else manifest.done(rel, video, target)
        if entry is None:
            todo.append((k, rel, video, target))
            continue
        results[k] = FaceTrackResult(**{f: entry[f] for f in FaceTrackResult.__dataclass_fields__ if f in entry},
                                     skipped=True)
        if echo is not None:
            echo(f"[{k + 1}/{len(mine)}] {results[k].describe()}")
    # Workers get the resolved detector name: "auto" is decided (and warned about) once, here.
    resolved = replace(settings, detector=detector.name) if detector is not None else settings
    tasks = [(video, target, resolved, progress and jobs == 1) for _, _, video, target in todo]
    _detector = detector
    try:
        for j, result in run_jobs(_face_video, tasks, jobs, initializer=_open_detector, initargs=(resolved,)):
            k, rel, video, _ = todo[j]
            if isinstance(result, DataError):
                failed.append((k, str(result)))
                if echo is not None:
                    echo(f"[{k + 1}/{len(mine)}] {result}")
                continue
            for text in result.warnings:
                warnings.warn(text, UserWarning, stacklevel=2)
            manifest.record(rel, video, result)
            results[k] = result
            if echo is not None:
                echo(f"[{k + 1}/{len(mine)}] {result.describe()}")
    finally:
        _detector = None
        if detector is not None:
            detector.close()
    if failed:
        lines = "; ".join(text for _, text in sorted(failed))
        raise DataError(None, f"{len(failed)} of {len(mine)} videos failed (the others are done and recorded in "
                              f"{manifest.path}): {lines}")
    return [r for r in results if r is not None]
