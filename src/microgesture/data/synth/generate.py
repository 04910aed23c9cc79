"""Untrimmed synthetic videos and writing them in the MiGA per-video layout.

One video: idle lead-in, then micro-gesture instances separated by idle gaps, then an idle
tail. The skeleton CSV is what a detector would report (noise, dropout, occluded joints with
low confidence or missed); the RGB frames are drawn from the true pose, and so is the face
track beside them (`<vid>_face.mp4` and `<vid>_face.csv`, see face.py). The whole dataset is
generated into a hidden sibling folder that is renamed to `out_dir` at the end.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from microgesture.data.formats import miga
from microgesture.domain.classes import NUM_CLASSES, raw_from_class_index
from microgesture.domain.layouts import BODY25_LOWER
from microgesture.data.synth import body, face, motions, render
from microgesture.data.synth.schedule import DETECTOR, LOOK, SUBJECT, VIDEO, VideoPlan, plan_dataset, rng_for
from microgesture.errors import ConfigError, DataError
from microgesture.utils.io import write_text

FPS = 25
DEFAULT_SIZE = (192, 144)
DEFAULT_SUBJECTS = 12
DEFAULT_VIDEOS_PER_SUBJECT = 3
DEFAULT_SECONDS = 45.0
GENERATOR = "microgesture-synth"
VERSION = 2  # 2: with a face-track video per video (face.py)

_FACE_JOINTS = (0, 15, 16, 17, 18)


@dataclass
class SynthSummary:
    """What `generate_dataset` wrote."""

    out_dir: Path
    videos: int
    subjects: int
    clips: int
    frames: int
    clips_per_class: list[int]
    win_videos: int = 0
    lose_videos: int = 0

    def describe(self) -> str:
        rare = min(self.clips_per_class) if self.clips_per_class else 0
        return (f"{self.out_dir}: {self.subjects} subjects, {self.videos} videos "
                f"({self.win_videos} win / {self.lose_videos} lose), {self.clips} clips, "
                f"{self.frames} frames; clips per class {rare}..{max(self.clips_per_class, default=0)}")


@dataclass
class SynthVideo:
    """One generated video: its plan, subject, labelled segments and true geometry."""

    plan: VideoPlan
    subject: body.Subject
    look: render.Look
    segments: list[tuple[int, int, int]]   # (class index, start, end), frames inclusive
    geometry: body.Geometry
    size: tuple[int, int]
    fps: int = FPS
    seed: int = 0
    extra: dict = field(default_factory=dict)

    @property
    def num_frames(self) -> int:
        return len(self.geometry.joints)

    def label_rows(self) -> list[tuple[int, int, int]]:
        return [(raw_from_class_index(c), s, e) for c, s, e in self.segments]

    def frames(self) -> Iterator[np.ndarray]:
        return render.render_frames(self.geometry, self.subject, self.look, self.size, self.subject.handed)

    def detections(self) -> np.ndarray:
        return observe(self.geometry, self.subject, rng_for(self.seed, DETECTOR, self.plan.video_id), self.size)


def make_subject(seed: int, subject_id: int, size: tuple[int, int]) -> tuple[body.Subject, render.Look]:
    subject = body.make_subject(rng_for(seed, SUBJECT, subject_id), subject_id, size)
    return subject, render.make_look(rng_for(seed, LOOK, subject_id))


def synth_video(plan: VideoPlan, seed: int, size: tuple[int, int]) -> SynthVideo:
    """Lay out the plan's instances in time and build the true pose of every frame."""
    subject, look = make_subject(seed, plan.subject_id, size)
    rng = rng_for(seed, VIDEO, plan.video_id)
    lengths = []
    for c in plan.classes:
        lo, hi = motions.MOTIONS[c].duration
        seconds = np.clip(rng.uniform(lo, hi) / np.sqrt(subject.tempo), 1.0, 4.0)
        lengths.append(int(round(seconds * FPS)))
    gaps = [int(round(rng.uniform(0.25, 1.0) * FPS)) for _ in plan.classes[1:]]
    lead, tail = (int(round(rng.uniform(0.5, 1.5) * FPS)) for _ in range(2))
    segments, frame = [], lead
    for k, (c, n) in enumerate(zip(plan.classes, lengths)):
        segments.append((c, frame, frame + n - 1))
        frame += n + (gaps[k] if k < len(gaps) else 0)
    total = frame + tail
    track = body.rest_track(total, subject)
    motions.idle(track, subject, rng, FPS, plan.emotion)
    for c, start, end in segments:
        motions.apply(c, track, start, end, subject, rng, FPS)
    geometry = body.pose(track, subject)
    return SynthVideo(plan, subject, look, segments, geometry, size, FPS, seed)


def observe(geom: body.Geometry, subject: body.Subject, rng: np.random.Generator,
            size: tuple[int, int]) -> np.ndarray:
    """Detector output [T, 35, 3]: noisy x, y and confidence; missed joints are all zero."""
    n, v = geom.joints.shape[:2]
    tips = list(body.FINGER_TIPS["r"] + body.FINGER_TIPS["l"])
    sigma = np.full(v, subject.noise_px)
    sigma[tips] *= 2.0
    sigma[list(_FACE_JOINTS)] *= 0.7
    xy = geom.joints + rng.standard_normal((n, v, 2)) * sigma[None, :, None]
    base = np.full(v, subject.conf_body)
    base[tips] = subject.conf_hand
    conf = np.clip(base + rng.normal(0, 0.06, (n, v)), 0.05, 0.99)
    rate = np.full(v, subject.dropout)
    rate[tips] *= 3.0
    missed = _bursts(rng, n, rate)
    # A face joint under a hand is poorly seen; the turned-away ear often missed.
    u = geom.scale
    for k, side in enumerate(body.SIDES):
        hand = 0.5 * (geom.joints[:, body.J[f"{side}_wrist"]] + geom.knuckles[:, k, 2])
        near = np.linalg.norm(geom.joints[:, _FACE_JOINTS] - hand[:, None], axis=-1) < 0.45 * u
        near &= ~geom.behind[:, k, None]
        conf[:, _FACE_JOINTS] = np.where(near, conf[:, _FACE_JOINTS] * 0.45, conf[:, _FACE_JOINTS])
        missed[:, _FACE_JOINTS] |= near & (rng.random(near.shape) < 0.3)
        hidden = geom.behind[:, k]
        missed[:, list(body.FINGER_TIPS[side])] |= hidden[:, None]
        missed[:, body.J[f"{side}_wrist"]] |= hidden & (rng.random(n) < 0.8)
    yaw = geom.track["yaw"]
    for ear, away in ((body.J["l_ear"], yaw > 0.45), (body.J["r_ear"], yaw < -0.45)):
        conf[:, ear] = np.where(away, conf[:, ear] * 0.5, conf[:, ear])
        missed[:, ear] |= away & (rng.random(n) < 0.4)
    width, height = size
    outside = (xy[..., 0] < 0) | (xy[..., 0] > width - 1) | (xy[..., 1] < 0) | (xy[..., 1] > height - 1)
    missed |= outside
    missed[:, list(BODY25_LOWER)] = True
    out = np.concatenate([xy, conf[..., None]], axis=-1)
    out[missed] = 0.0
    return out


def _bursts(rng: np.random.Generator, n: int, rate: np.ndarray, mean_len: float = 3.0) -> np.ndarray:
    """Missed detections in runs of frames: a rate per joint, runs of about `mean_len` frames."""
    missed = np.zeros((n, len(rate)), dtype=bool)
    starts = rng.random((n, len(rate))) < rate[None, :] / mean_len
    for t, j in zip(*np.nonzero(starts)):
        missed[t:t + int(rng.geometric(1.0 / mean_len)), j] = True
    return missed


def write_video_files(sv: SynthVideo, root: Path, video: bool) -> None:
    vid = sv.plan.video_id
    miga.video_folder(root, vid).mkdir(parents=True, exist_ok=True)
    miga.write_labels(miga.label_path(root, vid), sv.label_rows())
    miga.write_skeleton(miga.skeleton_path(root, vid), np.arange(sv.num_frames), sv.detections())
    if video:
        from microgesture.data.video import write_video

        written = write_video(miga.rgb_path(root, vid), sv.frames(), sv.fps)
        if written != sv.num_frames:
            raise DataError(miga.rgb_path(root, vid), f"wrote {written} frames, expected {sv.num_frames}")
        face.write_face_track(sv, miga.rgb_path(root, vid))


def _check_args(subjects, videos_per_subject, size, seconds) -> tuple[int, int]:
    if int(subjects) < 1 or int(videos_per_subject) < 1:
        raise ConfigError(f"subjects and videos_per_subject must be >= 1, got {subjects} and {videos_per_subject}")
    if seconds <= 0:
        raise ConfigError(f"seconds must be > 0, got {seconds}")
    try:
        width, height = (int(v) for v in size)
    except (TypeError, ValueError):
        raise ConfigError(f"size must be (width, height), got {size!r}") from None
    if width < 64 or height < 48 or width % 2 or height % 2:
        raise ConfigError(f"size must be even and at least 64x48 (width x height), got {width}x{height}")
    return width, height


def _prepare_out(out_dir: Path, overwrite: bool) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise DataError(out_dir, "exists and is not a folder")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not overwrite:
        raise DataError(out_dir, "output folder is not empty; choose an empty or new folder, or pass --overwrite "
                                 "(overwrite=True) to replace it")


def _install(tmp: Path, out_dir: Path) -> None:
    """Move the finished dataset into place; an old folder is only removed once it is replaced."""
    if out_dir.is_dir() and not any(out_dir.iterdir()):
        out_dir.rmdir()
    if out_dir.exists():
        trash = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old-", dir=out_dir.parent))
        trash.rmdir()
        out_dir.rename(trash)
        tmp.rename(out_dir)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        tmp.rename(out_dir)


def generate_dataset(
    out_dir: Path,
    *,
    subjects: int = DEFAULT_SUBJECTS,
    videos_per_subject: int = DEFAULT_VIDEOS_PER_SUBJECT,
    seed: int = 0,
    size: tuple[int, int] = DEFAULT_SIZE,
    video: bool = True,
    overwrite: bool = False,
    progress: bool = False,
    seconds: float = DEFAULT_SECONDS,
) -> SynthSummary:
    """Write a synthetic iMiGUE-like dataset in the MiGA per-video layout under `out_dir`.

    `size` is (width, height) in pixels; `seconds` is the target length of each video.
    Raises DataError if `out_dir` is not empty (unless `overwrite`), ConfigError on bad values.
    """
    out_dir = Path(out_dir)
    width, height = _check_args(subjects, videos_per_subject, size, seconds)
    _prepare_out(out_dir, overwrite)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    plans = plan_dataset(seed, int(subjects), int(videos_per_subject), float(seconds))
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.synth-", dir=out_dir.parent))
    os.chmod(tmp, 0o755)  # mkdtemp makes it private; the dataset is an ordinary folder
    try:
        per_class = np.zeros(NUM_CLASSES, dtype=int)
        frames = 0
        for k, plan in enumerate(plans):
            sv = synth_video(plan, seed, (width, height))
            write_video_files(sv, tmp, video)
            per_class += np.bincount([c for c, _, _ in sv.segments], minlength=NUM_CLASSES)
            frames += sv.num_frames
            if progress:
                print(f"synth: video {k + 1}/{len(plans)} ({plan.video_id:04d}, subject {plan.subject_id}): "
                      f"{sv.num_frames} frames, {len(sv.segments)} clips", file=sys.stderr, flush=True)
        rows = ["video_id,subject_id,emotion"] + [
            f"{p.video_id},{p.subject_id},{'win' if p.emotion == 1 else 'lose'}" for p in plans
        ]
        write_text(tmp / "videos.csv", "\n".join(rows) + "\n")
        meta = {
            "generator": GENERATOR, "version": VERSION, "seed": int(seed), "width": width, "height": height,
            "fps": FPS, "subjects": int(subjects), "videos_per_subject": int(videos_per_subject),
            "video": bool(video), "face_track": bool(video), "seconds": float(seconds), "num_videos": len(plans),
            "num_clips": int(per_class.sum()), "num_frames": int(frames),
        }
        write_text(tmp / "synth.json", json.dumps(meta, indent=2) + "\n")
        _prepare_out(out_dir, overwrite)  # someone may have filled it meanwhile
        _install(tmp, out_dir)
    except BaseException:
        with contextlib.suppress(OSError):
            shutil.rmtree(tmp)
        raise
    wins = sum(p.emotion == 1 for p in plans)
    return SynthSummary(out_dir, len(plans), int(subjects), int(per_class.sum()), int(frames),
                        per_class.tolist(), wins, len(plans) - wins)
