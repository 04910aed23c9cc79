"""`microgesture analyze`: your own video in, which micro-gestures when, and the behaviour's emotion, out.

1. pose, hands and face (data/pose, MediaPipe); the skeleton is kept under `OUT/pose/` in the
   MiGA layout, and reused when the same video is analysed again with the same settings;
2. online recognition (apps/online.py): the MG model slid over the sequence, decoded into
   segments (eval/segments.py);
3. with an emotion model (any checkpoint whose task includes `emotion` and whose streams are
   skeleton streams), the video's estimate: the windows' win probabilities averaged over the
   windows where the person is seen (iMiGUE's label: the player won (1) or lost (0) the match;
   a proxy for a positive or negative state, not a measured emotion);
4. `OUT/analysis.json`, `OUT/segments.csv` (MiGA style: `class,start,end` rows without a header,
   frames inclusive, iMiGUE's class codes 1..31 and 99 when the model has iMiGUE's classes),
   `OUT/timeline.png` and `OUT/report.html` (self-contained: images embedded as base64).

A video in which nobody is found gives an empty timeline and says so; an unreadable file gives a
DataError naming it. The seconds spent in each stage are in analysis.json (`timings`).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from microgesture.apps.online import OnlineModel, decode_options, load_online_model, recognise, window_scores
from microgesture.data.formats.mediapipe import is_extracted, read_faces, read_manifest, write_extraction
from microgesture.data.formats.miga import read_skeleton, skeleton_path
from microgesture.data.formats.sequences import Sequence
from microgesture.data.pose.extract import ExtractOptions, extract_video
from microgesture.domain.classes import IMIGUE_CLASSES, raw_from_class_index
from microgesture.domain.layouts import MIGA35
from microgesture.eval.segments import Segment
from microgesture.utils.io import write_text
from microgesture.utils.paths import check_output_dir

POSE_DIR = "pose"
VIDEO_ID = 1


@dataclass(frozen=True)
class AnalyzeOptions:
    """Settings of one analysis; decoding lengths in seconds, windows in frames at 25 frames/s."""

    extract: ExtractOptions = field(default_factory=ExtractOptions)
    threshold: float = 0.5
    min_seconds: float = 0.4
    merge_seconds: float = 0.24
    stride: int = 8  # 0.32 s between windows: half the recognition cost of 4 (docs/analyze.md)
    window: int | None = None
    max_key_frames: int = 24
    device: str | None = None


@dataclass
class Analysis:
    """What `analyze_video` found and wrote."""

    out_dir: Path
    segments: list[Segment]
    class_names: list[str]
    fps: float
    num_frames: int
    person_frames: int
    emotion: dict[str, Any] | None
    notes: list[str]
    timings: dict[str, float]  # wall-clock seconds per stage
    cpu_timings: dict[str, float]  # CPU seconds per stage (all threads of the process)
    files: dict[str, str]

    def describe(self) -> str:
        lines = [f"{self.num_frames} frames at {self.fps:.2f} frames/s, a person in {self.person_frames}; "
                 f"{len(self.segments)} micro-gesture segment(s)"]
        for s in self.segments[:10]:
            lines.append(f"  {s.start / self.fps:7.2f}-{(s.end + 1) / self.fps:7.2f} s  "
                         f"{self.class_names[s.label]} ({s.score:.2f})")
        if len(self.segments) > 10:
            lines.append(f"  ... and {len(self.segments) - 10} more")
        if self.emotion:
            lines.append(f"emotion estimate: {self.emotion['label']} (confidence {self.emotion['confidence']:.2f})")
        lines += [f"note: {n}" for n in self.notes]
        total, cpu = sum(self.timings.values()), sum(self.cpu_timings.values())
        lines.append("time: " + ", ".join(f"{k} {v:.1f} s" for k, v in self.timings.items())
                     + f" (total {total:.1f} s, {self.num_frames / max(total, 1e-9):.1f} frames/s; "
                       f"CPU {cpu:.1f} s)")
        lines.append(f"report: {self.files['report']}")
        return "\n".join(lines)


# ----------------------------------------------------------------------------- the stages


def _pose(video: Path, out_dir: Path, options: ExtractOptions, progress: bool) -> tuple[dict, np.ndarray, np.ndarray]:
    """(manifest, miga35 joints [T, 35, 3], face boxes [T, 5]); extracted now or read back."""
    root = out_dir / POSE_DIR
    if not is_extracted(root, VIDEO_ID, video, options):
        extraction = extract_video(video, options, progress=progress)
        write_extraction(root, VIDEO_ID, extraction, video)
        return read_manifest(root, VIDEO_ID), extraction.joints("miga35"), extraction.face_boxes
    _, joints = read_skeleton(skeleton_path(root, VIDEO_ID))
    faces = read_faces(root / f"{VIDEO_ID:04d}" / f"{VIDEO_ID:04d}_face.csv")
    manifest = read_manifest(root, VIDEO_ID)
    for key in ("timings", "cpu_timings"):  # nothing was spent on them this time
        manifest[key] = {k: 0.0 for k in manifest.get(key, {})}
    return manifest, joints.astype(np.float32), faces


def _sequence(joints: np.ndarray, manifest: dict) -> Sequence:
    return Sequence(VIDEO_ID, np.arange(len(joints), dtype=np.int64), joints, "miga35", float(manifest["fps"]),
                    (int(manifest["height"]), int(manifest["width"])))


def video_emotion(model: OnlineModel, seq: Sequence, *, stride: int = 8) -> dict[str, Any] | None:
    """The video's win probability: the mean over windows with a person (None when there are none)."""
    _, _, probs = window_scores(model, seq, stride=stride)
    seen = np.all(np.isfinite(probs), axis=1)
    if not seen.any():
        return None
    p_win = float(probs[seen, 1].mean())
    return {"label": "win" if p_win >= 0.5 else "lose", "prob_win": p_win, "confidence": max(p_win, 1 - p_win),
            "windows": int(seen.sum())}


def _strength(frame_probs: np.ndarray, background: int | None) -> np.ndarray:
    if background is not None:
        return 1.0 - frame_probs[:, background]
    return np.nanmax(frame_probs, axis=1) if np.isfinite(frame_probs).any() else np.full(len(frame_probs), np.nan)


def _iMiGUE_codes(names: list[str]) -> bool:
    return list(names[: len(IMIGUE_CLASSES)]) == list(IMIGUE_CLASSES)


def segments_csv(segments: list[Segment], names: list[str]) -> str:
    """`class,start,end` rows (module doc)."""
    raw = _iMiGUE_codes(names)
    return "".join(f"{raw_from_class_index(s.label) if raw else s.label},{s.start},{s.end}\n" for s in segments)


def _segment_rows(segments: list[Segment], names: list[str], fps: float) -> list[dict[str, Any]]:
    return [{"class": s.label, "name": names[s.label], "start": s.start, "end": s.end,
             "start_s": round(s.start / fps, 3), "end_s": round((s.end + 1) / fps, 3), "score": round(s.score, 4)}
            for s in segments]


# ----------------------------------------------------------------------------- the workflow


def analyze_video(video: str | Path, checkpoint: str | Path | OnlineModel, out_dir: str | Path, *,
                  emotion_checkpoint: str | Path | OnlineModel | None = None,
                  options: AnalyzeOptions = AnalyzeOptions(), progress: bool = True) -> Analysis:
    """Analyse `video` with an MG checkpoint (and optionally an emotion one) into `out_dir` (module doc).

    Either model may also be given already loaded (`OnlineModel`), as the benchmark does."""
    from microgesture.apps.report_html import key_frames, write_report
    from microgesture.eval.timeline import plot_timeline

    video, out_dir = Path(video), check_output_dir(out_dir)
    options.extract.check()
    model = checkpoint if isinstance(checkpoint, OnlineModel) else load_online_model(
        checkpoint, task="mg", window=options.window, device=options.device)
    emotion_model = emotion_checkpoint if isinstance(emotion_checkpoint, OnlineModel) or emotion_checkpoint is None \
        else load_online_model(emotion_checkpoint, task="emotion", device=options.device)
    manifest, joints, faces = _pose(video, out_dir, options.extract, progress)
    timings, cpu_timings = (_extraction_stages(manifest.get(key, {})) for key in ("timings", "cpu_timings"))
    seq = _sequence(joints, manifest)
    fps = seq.fps or 25.0
    found = (joints[..., 2] > 0).any(axis=-1)
    notes = _notes(model, found, emotion_model)
    t = _now()
    decoding = decode_options(model, fps, threshold=options.threshold, min_seconds=options.min_seconds,
                              merge_seconds=options.merge_seconds)
    result = recognise(model, seq, decoding, stride=options.stride)
    emotion = None
    if emotion_model is not None:
        emotion = video_emotion(emotion_model, seq)
        if emotion is not None:
            emotion["checkpoint"] = _name(emotion_checkpoint)
    t = _stage(timings, cpu_timings, "recognition", t)
    names = model.class_names
    strength = _strength(result.frame_probs, model.background)
    title = f"{video.name}: {len(result.segments)} segment(s)"
    plot_timeline(out_dir / "timeline.png", result.segments, names, fps=fps, num_frames=seq.num_frames,
                  strength=strength, threshold=options.threshold, no_person=~found, title=title)
    write_text(out_dir / "segments.csv", segments_csv(result.segments, names))
    frames = key_frames(video, result.segments[: options.max_key_frames], joints, faces, MIGA35)
    summary = {
        "video": {"path": str(video.resolve()), "frames": seq.num_frames, "fps": fps,
                  "width": manifest["width"], "height": manifest["height"]},
        "person_frames": int(found.sum()),
        "extraction": {k: manifest[k] for k in ("extractor", "options", "frames_with_person", "processed_frames")},
        "model": {"checkpoint": _name(checkpoint), "classes": names, "window_frames_at_25fps": model.window,
                  "background_class": None if model.background is None else names[model.background],
                  "window_stride_at_25fps": options.stride},
        "decoding": asdict(decoding),
        "segments": _segment_rows(result.segments, names, fps),
        "emotion": emotion,
        "notes": notes,
    }
    write_report(out_dir / "report.html", summary, out_dir / "timeline.png", frames)
    _stage(timings, cpu_timings, "report", t)
    summary["timings"] = {k: round(v, 3) for k, v in timings.items()}
    summary["cpu_timings"] = {k: round(v, 3) for k, v in cpu_timings.items()}
    write_text(out_dir / "analysis.json", json.dumps(summary, indent=2))
    files = {name: str(out_dir / name) for name in ("analysis.json", "segments.csv", "timeline.png")}
    files["report"] = str(out_dir / "report.html")
    return Analysis(out_dir, result.segments, names, fps, seq.num_frames, int(found.sum()), emotion, notes,
                    timings, cpu_timings, files)


def _now() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def _stage(wall: dict, cpu: dict, name: str, since: tuple[float, float]) -> tuple[float, float]:
    now = _now()
    wall[name], cpu[name] = now[0] - since[0], now[1] - since[1]
    return now


def _extraction_stages(seconds: dict[str, float]) -> dict[str, float]:
    return {"decode": seconds.get("decode", 0.0), "pose": seconds.get("pose", 0.0),
            "hands/face": seconds.get("hands", 0.0) + seconds.get("faces", 0.0)}


def _name(model: str | Path | OnlineModel) -> str:
    return "a model loaded by the caller" if isinstance(model, OnlineModel) else str(model)


def _notes(model: OnlineModel, found: np.ndarray, emotion_model: OnlineModel | None) -> list[str]:
    notes = []
    if not found.any():
        notes.append("no person was found in the video: nothing to recognise (empty timeline)")
    elif not found.all():
        gone = int((~found).sum())
        notes.append(f"no person in {gone} of {len(found)} frames (grey on the timeline): no segment there")
    if model.background is None:
        notes.append("the MG model has no 'no gesture' class (it was trained on trimmed clips): segments are where "
                     "its best class passes the threshold, so expect gestures almost everywhere")
    if emotion_model is not None and not found.any():
        notes.append("no emotion estimate: nobody was seen")
    return notes


# ----------------------------------------------------------------------------- for the demo


def analyze_demo_video(demo_out: str | Path, checkpoint: str | Path | None = None, *,
                       split: str = "test", progress: bool = False) -> Path:
    """Analyse one held-out synthetic video of a finished `microgesture demo` run; returns report.html.

    The video is the first of `split` in the demo's synthetic data (a drawn person, so MediaPipe
    runs on it as on any recording); the model is the demo's joint stream (default
    `demo_out/joint/checkpoints/best.ckpt`), a classifier of trimmed clips without a "no
    gesture" class, so the timeline shows its best guesses over time. Writes `demo_out/analysis/`.
    """
    from microgesture.apps.online import split_videos
    from microgesture.data.formats.annotations import load_annotations, resolve_video_path

    demo_out = Path(demo_out)
    annotations = sorted(demo_out.glob("data/*/annotations_*.pkl"))
    if not annotations:
        from microgesture.errors import DataError

        raise DataError(demo_out, "no demo data here (run `microgesture demo` first)")
    data = load_annotations(annotations[0])
    video = next(resolve_video_path(data, v) for v in split_videos(data, split) if v.get("video_path"))
    checkpoint = checkpoint or demo_out / "joint" / "checkpoints" / "best.ckpt"
    analysis = analyze_video(video, checkpoint, demo_out / "analysis", progress=progress)
    return Path(analysis.files["report"])
