"""Tasks: what the model predicts, its loss and its validation metrics.

- `mg`: the clip's micro-gesture class (target `label`), cross-entropy with optional class
  weights and label smoothing; metrics over clips (top-1, top-5, macro-F1, mean class accuracy).
- `emotion`: the video's label, win (1) or lose (0) (target `emotion`, which every clip of a
  video carries), two-way cross-entropy per clip; metrics over videos: the clips' win
  probabilities are averaged per video (eval/metrics.py `video_level`), then accuracy, F1 and
  exact AUC. Clips without a label (-1) add nothing to a loss or a metric. A video-level model
  (`task.video_pool: attention`) gives one output per video, which stands for each of its clips.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from microgesture.errors import DataError
from microgesture.eval.metrics import binary_metrics, classification_metrics, video_level
from microgesture.train.config import TaskConfig


@dataclass(frozen=True)
class Task:
    name: str
    target: str  # the batch key holding the labels
    num_outputs: int
    weight: float = 1.0


def tasks_for(cfg: TaskConfig, num_classes: int) -> list[Task]:
    """The tasks of a config, in order (the first one is served by a single encoder's own head)."""
    out = []
    for kind in cfg.kind.split("+"):
        if kind == "mg":
            out.append(Task("mg", "label", num_classes))
        else:
            out.append(Task("emotion", "emotion", 2, cfg.emotion_weight if cfg.kind != "emotion" else 1.0))
    return out


def task_loss(task: Task, logits: torch.Tensor, targets: torch.Tensor, *, class_weight: torch.Tensor | None = None,
              label_smoothing: float = 0.0) -> torch.Tensor:
    """The task's loss over the labelled samples of a batch (0 with a gradient when there are none)."""
    if not bool((targets >= 0).any()):
        return logits.sum() * 0.0
    weight = class_weight if task.name == "mg" else None
    return F.cross_entropy(logits.float(), targets, weight=weight, label_smoothing=label_smoothing, ignore_index=-1)


def task_metrics(task: Task, scores: np.ndarray, targets: np.ndarray, video_ids: np.ndarray,
                 class_names: list[str] | None = None) -> dict:
    """The task's metrics over the labelled samples (see module doc); {} when there are none."""
    labelled = targets >= 0
    if not labelled.any():
        return {}
    if task.name == "mg":
        return classification_metrics(scores[labelled], targets[labelled], class_names=class_names)
    probs = torch.softmax(torch.from_numpy(scores[labelled]).float(), dim=1)[:, 1].numpy()
    videos = video_level(probs, video_ids[labelled].tolist(), targets[labelled])
    metrics = binary_metrics(videos.scores, videos.labels)
    metrics["num_clips"] = int(labelled.sum())
    return metrics


def logged_metrics(task: Task, metrics: dict) -> dict[str, float]:
    """The scalars logged during validation (their names are the monitors of train/config.py)."""
    if not metrics:
        return {}
    if task.name == "mg":
        return {"val_top1": metrics["top1"], "val_top5": metrics["top5"], "val_macro_f1": metrics["macro_f1"],
                "val_mean_class_accuracy": metrics["mean_class_accuracy"]}
    out = {"val_emotion_accuracy": metrics["accuracy"], "val_emotion_f1": metrics["f1"]}
    if metrics["auc"] is not None:
        out["val_emotion_auc"] = metrics["auc"]
    return out


def check_emotion_labels(kind: str, dm: Any, splits: tuple[str, str]) -> None:
    """Before training: every clip needs its video id, and a video without an emotion label cannot
    enter emotion training. `emotion`: such videos in the training split are an error naming them;
    `mg+emotion`: they train the MG head only (a warning names them); in validation they are left
    out of the emotion metrics (a warning names them)."""
    if "emotion" not in kind.split("+"):
        return
    train, _ = splits
    for split in splits:
        if not dm.has_split(split):
            continue
        clips = dm.clips(split)
        no_video = [c["frame_dir"] for c in clips if int(c.get("video_id", -1)) < 0]
        if no_video:
            raise DataError(dm.annotation_path, f"split {split!r}: {len(no_video)} clip(s) have no video id "
                                                f"(e.g. {no_video[0]!r}); emotion is a video-level label")
        videos = sorted({int(c["video_id"]) for c in clips if int(c.get("emotion", -1)) < 0})
        if not videos:
            continue
        shown = ", ".join(map(str, videos[:20])) + (f" and {len(videos) - 20} more" if len(videos) > 20 else "")
        what = f"split {split!r}: {len(videos)} video(s) have no emotion label (win/lose): {shown}"
        if split == train and kind == "emotion":
            raise DataError(dm.annotation_path, f"{what}; they cannot enter emotion training: give their labels "
                                                "(the emotion column of videos.csv, or the iMiGUE label table) or "
                                                "leave them out of the split")
        use = "train the MG head only" if split == train else "are left out of the emotion metrics"
        warnings.warn(f"{dm.annotation_path}: {what}; their clips {use}", stacklevel=2)
