"""Online recognition (the MiGA online track): a trained model slid over a whole skeleton sequence.

`OnlineModel` wraps a checkpoint: its windows are `window` frames at 25 frames/s (the frame rate
of iMiGUE and of our synthetic videos; default: the model's `data.num_frames`, so a model trained
on `data/windows.py` windows of that length sees every frame), scaled to the video's own frame
rate. Every window in which a person is seen gets the task head's class probabilities; windows
without a person get none. `recognise` decodes them into segments (eval/segments.py); a
model trained with the "no gesture" class uses it as background, any other MG model relies on
the threshold alone. `evaluate_online` runs over every video of a split of an annotation file and
scores the segments with the MiGA rule; `tune_threshold` picks the decoding threshold on another
split (validation: never the test split).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from microgesture.data.datasets import ClipDataset
from microgesture.data.formats.annotations import load_annotations
from microgesture.data.formats.sequences import Sequence, video_sequence
from microgesture.data.transforms.pipelines import build_pipeline
from microgesture.data.windows import BACKGROUND, sequence_windows
from microgesture.domain.modalities import MODALITIES
from microgesture.errors import ConfigError, DataError
from microgesture.eval.segments import DecodeOptions, Segment, decode, frame_probabilities, segment_f1
from microgesture.eval.submission import write_online_predictions
from microgesture.utils.io import write_text

TRAIN_FPS = 25.0


@dataclass
class OnlineModel:
    module: Any  # train.module.Classifier
    task: str
    window: int  # frames at TRAIN_FPS
    device: torch.device
    batch_size: int = 64
    # One CPU thread: the network is small, and on a busy machine a second OpenMP thread spent
    # 7x the CPU time waiting for its peer (docs/analyze.md, measured).
    cpu_threads: int | None = 1

    @property
    def class_names(self) -> list[str]:
        return list(self.module.class_names) if self.task == "mg" else ["lose", "win"]

    @property
    def background(self) -> int | None:
        names = self.class_names
        return names.index(BACKGROUND) if self.task == "mg" and BACKGROUND in names else None

    @property
    def layout(self) -> str:
        return self.module.cfg.data.layout

    def frames_at(self, fps: float | None, frames: int) -> int:
        """`frames` at 25 frames/s in frames of a video at `fps`."""
        return max(1, int(round(frames * (fps or TRAIN_FPS) / TRAIN_FPS)))


def load_online_model(checkpoint: str | Path, *, task: str = "mg", window: int | None = None,
                      device: str | None = None) -> OnlineModel:
    """A checkpoint ready to slide over sequences; ConfigError when it lacks `task` or reads a
    modality a skeleton sequence cannot give."""
    from microgesture.train.run import load_module, resolve_device

    module = load_module(checkpoint)
    tasks = [t.name for t in module.tasks]
    if task not in tasks:
        raise ConfigError(f"{checkpoint}: the model predicts {' and '.join(tasks)}, not {task}")
    unfed = [m for m in module.model.input_keys if MODALITIES.get(m) != "skeleton"]
    if unfed:
        raise ConfigError(f"{checkpoint}: the model reads {', '.join(unfed)}; recognition over a video's "
                          "extracted skeleton feeds skeleton streams only (joint, bone, joint_motion, bone_motion)")
    if window is not None and window < 1:
        raise ConfigError(f"window must be >= 1 frame, got {window}")
    dev = resolve_device(device)
    return OnlineModel(module.to(dev).eval(), task, window or module.cfg.data.num_frames, dev)


def untrained_online_model(config: str | Path, class_names: list[str], device: str = "cpu") -> OnlineModel:
    """A model of a config's architecture with initial weights: for speed measurements and for
    tests that only need the plumbing (its outputs mean nothing)."""
    from microgesture.train.config import load_config
    from microgesture.train.module import Classifier
    from microgesture.typed_config import to_dict

    cfg = load_config(config)
    module = Classifier(to_dict(cfg), num_classes=len(class_names), class_names=class_names, layout=cfg.data.layout)
    return OnlineModel(module.eval(), "mg", cfg.data.num_frames, torch.device(device))


@torch.no_grad()
def window_scores(model: OnlineModel, seq: Sequence, *, fps: float | None = None, stride: int = 4
                  ) -> tuple[np.ndarray, int, np.ndarray]:
    """(window starts, window length in frames, probabilities [N, K]; NaN rows: no person)."""
    length = model.frames_at(fps or seq.fps, model.window)
    step = model.frames_at(fps or seq.fps, stride)
    starts, clips = sequence_windows(replace(seq, joints=_model_layout(seq, model.layout)), length, step)
    probs = np.full((len(starts), len(model.class_names)), np.nan)
    kept = [k for k, c in enumerate(clips) if c is not None]
    if kept:
        with _cpu_threads(model.cpu_threads if model.device.type == "cpu" else None):
            probs[kept] = _scores(model, [clips[k] for k in kept])
    return starts, length, probs


@contextlib.contextmanager
def _cpu_threads(count: int | None) -> Iterator[None]:
    before = torch.get_num_threads()
    if count is not None:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@torch.no_grad()
def _scores(model: OnlineModel, clips: list[dict]) -> np.ndarray:
    """Task probabilities [N, K] of window clips."""
    cfg = model.module.cfg
    modalities = list(model.module.model.input_keys)
    pipeline = build_pipeline(modalities, layout=cfg.data.layout, num_frames=cfg.data.num_frames, train=False)
    loader = DataLoader(ClipDataset(clips, pipeline, modalities), batch_size=model.batch_size)
    out = []
    for batch in loader:
        inputs = {m: batch[m].to(model.device) for m in modalities}
        out.append(torch.softmax(model.module(inputs)[model.task].float(), dim=1).cpu())
    return torch.cat(out).numpy()


def _model_layout(seq: Sequence, layout: str) -> np.ndarray:
    if seq.layout == layout:
        return seq.joints
    from microgesture.domain.layouts import convert_rows, get_layout

    return convert_rows(seq.joints, get_layout(seq.layout), get_layout(layout))


@dataclass
class OnlineResult:
    starts: np.ndarray
    length: int
    window_probs: np.ndarray
    frame_probs: np.ndarray
    segments: list[Segment]


def decode_options(model: OnlineModel, fps: float | None, *, threshold: float = 0.5, min_seconds: float = 0.4,
                   merge_seconds: float = 0.24) -> DecodeOptions:
    """Decoding settings in the video's frames: minimum length and merge gap given in seconds."""
    rate = fps or TRAIN_FPS
    return DecodeOptions(threshold=threshold, min_length=max(1, int(round(min_seconds * rate))),
                         merge_gap=int(round(merge_seconds * rate)), background=model.background)


def recognise(model: OnlineModel, seq: Sequence, options: DecodeOptions, *, fps: float | None = None,
              stride: int = 4) -> OnlineResult:
    starts, length, probs = window_scores(model, seq, fps=fps, stride=stride)
    frames = frame_probabilities(probs, starts, length, seq.num_frames)
    return OnlineResult(starts, length, probs, frames, decode(frames, options))


# ----------------------------------------------------------------------------- evaluation


def _truths(data: dict, videos: set[int]) -> dict[int, list[tuple[int, int, int]]]:
    out: dict[int, list[tuple[int, int, int]]] = {v: [] for v in videos}
    for clip in sorted(data["annotations"], key=lambda c: (c["video_id"], c["start_frame"])):
        if int(clip["video_id"]) in out:
            out[int(clip["video_id"])].append((int(clip["label"]), int(clip["start_frame"]), int(clip["end_frame"])))
    return out


def split_videos(data: dict, split: str) -> list[dict]:
    """The video records whose clips are in `split`."""
    if split not in data["split"]:
        raise DataError(data["meta"].get("path"), f"split {split!r} not found; available: {sorted(data['split'])}")
    names = set(data["split"][split])
    ids = {int(c["video_id"]) for c in data["annotations"] if c["frame_dir"] in names}
    return [v for v in data["videos"] if int(v["video_id"]) in ids]


def split_frame_probs(model: OnlineModel, data: dict, split: str, *, stride: int = 4
                      ) -> dict[int, tuple[np.ndarray, float | None]]:
    """video id -> (per-frame probabilities, fps) for every video of `split`."""
    out = {}
    for video in split_videos(data, split):
        seq = video_sequence(data, video, model.layout)
        starts, length, probs = window_scores(model, seq, stride=stride)
        out[int(video["video_id"])] = (frame_probabilities(probs, starts, length, seq.num_frames), seq.fps)
    return out


def score_split(model: OnlineModel, data: dict, frame_probs: dict, threshold: float, rule: str = "kit",
                **seconds: float) -> tuple[dict[str, float], dict[int, list[Segment]]]:
    preds = {vid: decode(p, decode_options(model, fps, threshold=threshold, **seconds))
             for vid, (p, fps) in frame_probs.items()}
    truths = _truths(data, set(frame_probs))
    return segment_f1(preds, truths, rule=rule).as_dict(), preds


THRESHOLDS = tuple(np.round(np.arange(0.2, 0.95, 0.05), 2))


def tune_threshold(model: OnlineModel, data: dict, split: str, *, stride: int = 4,
                   thresholds=THRESHOLDS) -> tuple[float, list[tuple[float, float]]]:
    """The decoding threshold with the best segment F1 on `split` (and the whole curve)."""
    probs = split_frame_probs(model, data, split, stride=stride)
    curve = [(float(t), score_split(model, data, probs, float(t))[0]["f1"]) for t in thresholds]
    best = max(curve, key=lambda tc: (tc[1], -abs(tc[0] - 0.5)))[0]
    return best, curve


def evaluate_online(checkpoint: str | Path, annotations: str | Path, out_dir: str | Path, *, split: str = "test",
                    threshold: float | None = None, tune_split: str | None = "val", stride: int = 4,
                    device: str | None = None) -> dict[str, Any]:
    """Segment F1 of a checkpoint on every video of `split`; writes `<vid>_prediction.csv` files and
    metrics.json to `out_dir`. Without `threshold` it is tuned on `tune_split`."""
    out_dir = Path(out_dir)
    model = load_online_model(checkpoint, device=device)
    data = load_annotations(annotations)
    curve = None
    if threshold is None:
        if tune_split is None or tune_split == split:
            raise ConfigError("give a threshold, or a tuning split other than the evaluated one")
        threshold, curve = tune_threshold(model, data, tune_split, stride=stride)
    probs = split_frame_probs(model, data, split, stride=stride)
    metrics, preds = score_split(model, data, probs, threshold)
    strict, _ = score_split(model, data, probs, threshold, rule="one_to_one")
    for vid, segs in preds.items():
        write_online_predictions(out_dir, vid, [(s.label, s.start, s.end) for s in segs])
    result = {"split": split, "videos": len(probs), "threshold": threshold, "tuned_on": None if curve is None else
              tune_split, "tuning_curve": curve, "kit_rule": metrics, "one_to_one": strict,
              "checkpoint": str(checkpoint), "annotations": str(annotations), "window": model.window, "stride": stride}
    write_text(out_dir / "metrics.json", json.dumps(result, indent=2))
    return result
