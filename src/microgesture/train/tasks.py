"""Tasks: what the model predicts, its loss and its validation metrics.

- `mg`: the clip's micro-gesture class (target `label`), cross-entropy with optional class
  weights and label smoothing; metrics over clips (top-1, top-5, macro-F1, mean class accuracy).
- `emotion`: the video's label, win (1) or lose (0) (target `emotion`, which every clip of a
  video carries), two-way cross-entropy per clip; metrics over videos: the clips' win
  probabilities are averaged per video (eval/metrics.py `video_level`), then accuracy, F1 and
  exact AUC. Clips without a label (-1) add nothing to a loss or a metric.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F

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
