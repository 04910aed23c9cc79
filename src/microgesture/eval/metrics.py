"""Classification and emotion metrics, numpy only (the field's metrics: docs/training.md).

Conventions, stated once:
- top-k: a sample counts as correct when its label is among the k highest scores; ties are broken
  towards the lower class index (a stable sort), so top-1 agrees with `argmax`.
- mean class accuracy: the mean of per-class recall over the classes present in the labels
  (MMAction2's definition). Classes absent from the labels have no accuracy.
- macro F1: the mean of per-class F1 over the classes present in the labels OR the predictions
  (scikit-learn's `f1_score(average="macro")` with its default `labels=None`); a class that is
  predicted but never true counts with F1 = 0, and precision/recall with an empty denominator
  are 0 (scikit-learn's `zero_division=0`).
- AUC: the exact Mann-Whitney statistic with average ranks for ties (a tie between a positive
  and a negative counts one half), equal to the area under the ROC curve.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from microgesture.errors import DataError


def _labels_array(labels: Any, num_classes: int | None, what: str = "labels") -> np.ndarray:
    arr = np.asarray(labels)
    if arr.ndim != 1:
        raise DataError(None, f"{what} must be a 1-D sequence of class indices, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        if not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)):
            raise DataError(None, f"{what} must be integer class indices")
    arr = arr.astype(np.int64)
    if arr.size and arr.min() < 0:
        raise DataError(None, f"{what} contain {int(arr.min())}: unknown labels (-1) cannot be scored")
    if num_classes is not None and arr.size and arr.max() >= num_classes:
        raise DataError(None, f"{what} contain class {int(arr.max())} but there are {num_classes} classes")
    return arr


def _scores_array(scores: Any, n: int) -> np.ndarray:
    arr = np.asarray(scores, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[0] != n or arr.shape[1] < 1:
        raise DataError(None, f"scores must be [N={n}, K>=1], got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise DataError(None, "scores contain NaN or infinite values")
    return arr


def top_k_accuracy(scores: Any, labels: Any, k: int) -> float:
    """Share of samples whose label is among the `k` highest scores (ties: lower index first)."""
    y = _labels_array(labels, None)
    s = _scores_array(scores, len(y))
    if len(y) == 0:
        raise DataError(None, "no samples to score")
    _labels_array(y, s.shape[1])
    k = max(1, min(int(k), s.shape[1]))
    top = np.argsort(-s, axis=1, kind="stable")[:, :k]
    return float(np.mean(np.any(top == y[:, None], axis=1)))


def confusion_matrix(labels: Any, preds: Any, num_classes: int | None = None) -> list[list[int]]:
    """Counts [K][K] as nested lists: row = true class, column = predicted class."""
    y = _labels_array(labels, num_classes)
    p = _labels_array(preds, num_classes, "predictions")
    if len(y) != len(p):
        raise DataError(None, f"{len(y)} labels but {len(p)} predictions")
    if num_classes is None:
        num_classes = int(max(y.max(initial=-1), p.max(initial=-1))) + 1
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(cm, (y, p), 1)
    return cm.tolist()


def classification_metrics(
    scores: Any,
    labels: Any,
    class_names: Sequence[str] | None = None,
    *,
    preds: Any = None,
    num_classes: int | None = None,
) -> dict[str, Any]:
    """Metrics for single-label classification, as a JSON-ready dict.

    Give either `scores` [N, K] (predictions are the arg-max) or `scores=None` and `preds` [N]
    (then `top5` is None: it needs scores). K comes from the scores, else `num_classes`, else
    `class_names`, else the largest index seen + 1.

    Keys: `num_samples`, `top1`, `top5` (top-k with k = min(5, K), reported in `top5_k`),
    `macro_f1`, `mean_class_accuracy`, `per_class_accuracy` (class name -> accuracy, only the
    classes present in the labels, in class order), `absent_classes` (names of the classes with
    no true sample: they have no accuracy and do not enter the mean class accuracy),
    `per_class_count` (class name -> number of true samples, present classes only).
    Names are `class_names[i]`, or `str(i)` without names. See the module docstring for the
    exact definitions. The confusion matrix is `confusion_matrix(labels, preds)`.
    """
    y = _labels_array(labels, None)
    if len(y) == 0:
        raise DataError(None, "no samples to score")
    if scores is not None:
        s = _scores_array(scores, len(y))
        k_total = s.shape[1]
        if num_classes is not None and num_classes != k_total:
            raise DataError(None, f"scores have {k_total} classes, expected {num_classes}")
        p = np.argmax(s, axis=1)
    elif preds is not None:
        s = None
        p = _labels_array(preds, None, "predictions")
        if len(p) != len(y):
            raise DataError(None, f"{len(y)} labels but {len(p)} predictions")
        k_total = num_classes or (len(class_names) if class_names else int(max(y.max(), p.max())) + 1)
    else:
        raise DataError(None, "classification_metrics needs scores or preds")
    if class_names is not None and len(class_names) != k_total:
        raise DataError(None, f"{len(class_names)} class names for {k_total} classes")
    _labels_array(y, k_total)
    _labels_array(p, k_total, "predictions")
    names = list(class_names) if class_names is not None else [str(i) for i in range(k_total)]

    cm = np.asarray(confusion_matrix(y, p, k_total), dtype=np.float64)
    true_count = cm.sum(axis=1)
    pred_count = cm.sum(axis=0)
    tp = np.diag(cm)
    present = true_count > 0
    recall = np.divide(tp, true_count, out=np.zeros(k_total), where=present)
    # F1 = 2TP / (2TP + FP + FN) = 2TP / (true + predicted): equal to 2PR/(P+R), and 0 when TP = 0.
    denom = true_count + pred_count
    f1 = np.divide(2 * tp, denom, out=np.zeros(k_total), where=denom > 0)
    top5_k = min(5, k_total)
    return {
        "num_samples": int(len(y)),
        "top1": float(np.mean(p == y)),
        "top5": None if s is None else top_k_accuracy(s, y, top5_k),
        "top5_k": top5_k,
        "macro_f1": float(f1[denom > 0].mean()),
        "mean_class_accuracy": float(recall[present].mean()),
        "per_class_accuracy": {names[c]: float(recall[c]) for c in np.flatnonzero(present)},
        "per_class_count": {names[c]: int(true_count[c]) for c in np.flatnonzero(present)},
        "absent_classes": [names[c] for c in np.flatnonzero(~present)],
    }


def average_ranks(values: Any) -> np.ndarray:
    """1-based ranks of `values` in ascending order; tied values share the mean of their ranks."""
    v = np.asarray(values, dtype=np.float64).ravel()
    _, inverse, counts = np.unique(v, return_inverse=True, return_counts=True)
    first = np.cumsum(counts) - counts  # 0-based rank of each distinct value's first copy
    return (first + (counts + 1) / 2.0)[inverse]


def roc_auc(prob_positive: Any, labels: Any) -> float | None:
    """Exact ROC AUC (Mann-Whitney U / (n_pos * n_neg)); None when only one class is present."""
    s = np.asarray(prob_positive, dtype=np.float64).ravel()
    if not np.all(np.isfinite(s)):
        raise DataError(None, "scores contain NaN or infinite values")
    y = _binary_labels(labels, len(s))
    n_pos = int(y.sum())
    n_neg = len(y) - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    rank_sum = average_ranks(s)[y == 1].sum()
    return float((rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def _binary_labels(labels: Any, n: int) -> np.ndarray:
    y = np.asarray(labels).ravel()
    if len(y) != n:
        raise DataError(None, f"{n} scores but {len(y)} labels")
    if not np.all(np.isin(y, (0, 1))):
        raise DataError(None, "binary labels must be 0 or 1 (unknown labels cannot be scored)")
    return y.astype(np.int64)


def binary_metrics(prob_positive: Any, labels: Any, threshold: float = 0.5) -> dict[str, Any]:
    """Binary metrics (emotion: 1 = win = positive) from positive-class probabilities.

    A sample is predicted positive when `prob > threshold` (strictly: at 0.5 this agrees with the
    arg-max of [1 - p, p], whose ties go to class 0). Keys: `num_samples`, `num_positive`,
    `num_negative`, `threshold`, `accuracy`, `precision`, `recall`, `f1` (of the positive
    class; 0 with an empty denominator), `balanced_accuracy` (mean recall of both classes,
    None unless both are present) and `auc` (exact, rank based; None unless both are present).
    """
    s = np.asarray(prob_positive, dtype=np.float64).ravel()
    if len(s) == 0:
        raise DataError(None, "no samples to score")
    if not np.all(np.isfinite(s)):
        raise DataError(None, "probabilities contain NaN or infinite values")
    y = _binary_labels(labels, len(s))
    pred = (s > threshold).astype(np.int64)
    tp = int(np.sum((pred == 1) & (y == 1)))
    fp = int(np.sum((pred == 1) & (y == 0)))
    fn = int(np.sum((pred == 0) & (y == 1)))
    tn = int(np.sum((pred == 0) & (y == 0)))
    n_pos, n_neg = tp + fn, tn + fp
    both = n_pos > 0 and n_neg > 0
    return {
        "num_samples": int(len(y)),
        "num_positive": n_pos,
        "num_negative": n_neg,
        "threshold": float(threshold),
        "accuracy": (tp + tn) / len(y),
        "precision": tp / (tp + fp) if tp + fp else 0.0,
        "recall": tp / n_pos if n_pos else 0.0,
        "f1": 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0,
        "balanced_accuracy": (tp / n_pos + tn / n_neg) / 2 if both else None,
        "auc": roc_auc(s, y),
    }


@dataclass
class VideoScores:
    """Per-video aggregates: ids in order of first appearance, mean scores, labels (-1 unknown)."""

    video_ids: list
    scores: np.ndarray
    labels: np.ndarray | None
    num_clips: np.ndarray


def video_level(clip_scores: Any, video_ids: Sequence[Any], labels: Any = None) -> VideoScores:
    """Mean of the clip scores of each video (the video-level emotion protocol).

    `clip_scores` is [N] (positive-class probabilities) or [N, K] (class probabilities); pass
    probabilities, not logits: the mean of logits is a different (geometric) vote. `labels`
    [N] (optional, -1 unknown) must agree among the clips of a video; the video's label is
    that common value.
    """
    s = np.asarray(clip_scores, dtype=np.float64)
    ids = list(video_ids)
    if s.ndim not in (1, 2) or len(s) != len(ids):
        raise DataError(None, f"clip scores of shape {s.shape} for {len(ids)} video ids")
    index: dict[Any, int] = {}
    group = np.array([index.setdefault(v, len(index)) for v in ids], dtype=np.int64)
    counts = np.bincount(group, minlength=len(index))
    sums = np.zeros((len(index),) + s.shape[1:])
    np.add.at(sums, group, s)
    means = sums / (counts if s.ndim == 1 else counts[:, None])
    out_labels = None
    if labels is not None:
        y = np.asarray(labels, dtype=np.int64).ravel()
        if len(y) != len(ids):
            raise DataError(None, f"{len(y)} labels for {len(ids)} clips")
        out_labels = np.full(len(index), -1, dtype=np.int64)
        out_labels[group] = y
        bad = np.flatnonzero(out_labels[group] != y)
        if len(bad):
            raise DataError(None, f"video {ids[bad[0]]!r} has clips with different labels")
    return VideoScores(video_ids=list(index), scores=means, labels=out_labels, num_clips=counts)
