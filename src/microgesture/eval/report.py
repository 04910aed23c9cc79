"""Readable result tables, and score-file fusion as the `fuse` command runs it."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from microgesture.errors import DataError
from microgesture.eval.calibration import expected_calibration_error, plot_reliability
from microgesture.eval.fuse import fuse, fusion_report
from microgesture.eval.longtail import long_tail_metrics
from microgesture.eval.metrics import binary_metrics, classification_metrics, confusion_matrix, video_level
from microgesture.eval.plots import plot_confusion_matrix
from microgesture.eval.scores import ScoreTable, read_scores, write_scores
from microgesture.utils.io import write_text

COLUMNS = (("top1", "top-1"), ("top5", "top-5"), ("macro_f1", "macro F1"), ("mean_class_accuracy", "mean class acc"))


def format_metrics(rows: dict[str, dict[str, Any]]) -> str:
    """One line per named result, the field's four headline metrics in percent."""
    width = max([len(name) for name in rows] + [6])
    head = f"{'model':<{width}}" + "".join(f"{title:>16}" for _, title in COLUMNS)
    lines = [head, "-" * len(head)]
    for name, m in rows.items():
        lines.append(f"{name:<{width}}" + "".join(f"{100 * float(m[key]):>15.2f}%" for key, _ in COLUMNS))
    return "\n".join(lines)


def fusion_metrics(paths: Sequence[str | Path], *, weights=None, mode: str = "score", temperature=1.0,
                   class_names=None, scores_out: str | Path | None = None) -> dict[str, Any]:
    """Fuse score files; the fused metrics at the top level (as `evaluate` writes them) plus per-stream ones."""
    tables = [read_scores(p) for p in paths]
    fused = fuse(tables, weights=weights, mode=mode, temperature=temperature)
    report = fusion_report(tables, fused, class_names)
    if scores_out is not None:
        write_scores(scores_out, fused)
    return {
        **report["fused"],
        "streams": report["streams"],
        "gain_over_best_top1": report["gain_over_best_top1"],
        "fusion": {"inputs": [str(p) for p in paths], "weights": weights, "mode": mode, "temperature": temperature},
    }


def fuse_files(paths: Sequence[str | Path], *, weights=None, mode: str = "score", temperature=1.0,
               out: str | Path | None = None, scores_out: str | Path | None = None) -> str:
    """The `fuse` command: returns the table to print; writes metrics JSON and fused scores when asked."""
    metrics = fusion_metrics(paths, weights=weights, mode=mode, temperature=temperature, scores_out=scores_out)
    if out is not None:
        write_text(out, json.dumps(metrics, indent=2))
    rows = dict(metrics["streams"])
    rows["fused"] = metrics
    text = format_metrics(rows)
    if metrics["gain_over_best_top1"] < 0:
        text += ("\nnote: the fusion is below its best stream; check the weights, or try --mode softmax "
                 "when the streams' scores have different scales")
    return text


AGGREGATIONS = ("mean_prob", "mean_logit", "vote")


def format_emotion(metrics: dict[str, Any]) -> str:
    """One line of video-level emotion results (as `emotion_metrics` returns them)."""
    auc = "n/a" if metrics.get("auc") is None else f"{metrics['auc']:.3f}"
    return (f"emotion (video level, {metrics['num_samples']} videos): accuracy {100 * metrics['accuracy']:.2f}%, "
            f"F1 {metrics['f1']:.3f}, ROC-AUC {auc}, ECE {metrics.get('ece', float('nan')):.3f}")


def video_probabilities(logits: np.ndarray, video_ids: list, how: str = "mean_prob") -> np.ndarray:
    """Each clip's video's win probability from clip logits [N, 2] (lose, win), per clip row.

    "mean_prob": the mean of the clips' win probabilities; "mean_logit": the softmax of the mean
    logits (a geometric vote); "vote": the share of clips predicted win (majority vote; a tie is
    0.5, which the 0.5 threshold calls lose). The caller groups rows by video (`video_level`).
    """
    if how not in AGGREGATIONS:
        raise ValueError(f"aggregation must be one of {AGGREGATIONS}, got {how!r}")
    z = np.asarray(logits, dtype=np.float64)
    if how == "vote":
        return (z[:, 1] > z[:, 0]).astype(np.float64)
    if how == "mean_logit":
        means = video_level(z, video_ids).scores
        index = {v: i for i, v in enumerate(dict.fromkeys(video_ids))}
        z = means[[index[v] for v in video_ids]]
    p = np.exp(z - z.max(1, keepdims=True))
    return (p / p.sum(1, keepdims=True))[:, 1]


def emotion_metrics(table: ScoreTable, video_of: dict[str, int]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Video-level emotion metrics from clip logits [N, 2] (lose, win): the clips' win
    probabilities averaged per video, plus the other aggregations (`aggregations`: accuracy, F1,
    AUC by mean logit and by majority vote) and the expected calibration error of the video
    probabilities (`ece`, 10 bins). Returns (metrics, {"video_id", "prob_win", "label", "num_clips"})."""
    ids = [video_of[s] for s in table.sample_ids]
    videos = video_level(video_probabilities(table.scores, ids), ids, table.labels)
    per_video = {"video_id": videos.video_ids, "prob_win": videos.scores.tolist(), "label": videos.labels.tolist(),
                 "num_clips": videos.num_clips.tolist()}
    known = videos.labels >= 0
    if not known.any():
        return {}, per_video
    metrics = binary_metrics(videos.scores[known], videos.labels[known])
    metrics["num_clips"] = int((table.labels >= 0).sum())
    metrics["aggregation"] = "mean_prob"
    metrics["aggregations"] = {}
    for how in AGGREGATIONS[1:]:
        other = video_level(video_probabilities(table.scores, ids, how), ids, table.labels)
        m = binary_metrics(other.scores[known], other.labels[known])
        metrics["aggregations"][how] = {k: m[k] for k in ("accuracy", "f1", "auc")}
    probs = _two_class(videos.scores[known])
    metrics["ece"] = expected_calibration_error(probs, videos.labels[known], bins=10)
    return metrics, per_video


def _two_class(prob_win: np.ndarray) -> np.ndarray:
    return np.stack([1.0 - prob_win, prob_win], 1)


def write_evaluation(tables: dict[str, ScoreTable], out_dir: Path, class_names: list[str], video_of: dict[str, int],
                     extra: dict | None = None, train_counts: Any = None) -> dict[str, Any]:
    """Per-task evaluation files in `out_dir` and the metrics (MG ones at the top level, emotion under "emotion").

    MG: scores.csv (for `fuse`), confusion_matrix.png; with `train_counts` (training clips per
    class) also `long_tail`: per-class F1 and head / medium / tail metrics (eval/longtail.py).
    Emotion: emotion_scores.csv (clip logits),
    emotion_videos.csv (one row per video: video_id, prob_win, label, num_clips) and
    emotion_reliability.png (the calibration of the video probabilities).
    """
    if not any((t.labels >= 0).any() for t in tables.values()):
        raise DataError(out_dir, "no labelled samples in this split: nothing to evaluate (use `predict`)")
    metrics: dict[str, Any] = {}
    out_dir.mkdir(parents=True, exist_ok=True)
    if "mg" in tables:
        table = tables["mg"]
        write_scores(out_dir / "scores.csv", table)
        labelled = table.labels >= 0
        if labelled.any():
            metrics.update(classification_metrics(table.scores[labelled], table.labels[labelled],
                                                  class_names=class_names))
            if train_counts is not None:
                metrics["long_tail"] = long_tail_metrics(table.scores[labelled], table.labels[labelled],
                                                         train_counts, class_names)
            cm = confusion_matrix(table.labels[labelled], table.scores[labelled].argmax(1), len(class_names))
            plot_confusion_matrix(cm, class_names, out_dir / "confusion_matrix.png")
    if "emotion" in tables:
        write_scores(out_dir / "emotion_scores.csv", tables["emotion"])
        metrics["emotion"], per_video = emotion_metrics(tables["emotion"], video_of)
        rows = ["video_id,prob_win,label,num_clips"] + [
            f"{v},{p:.6f},{y},{n}" for v, p, y, n in zip(*per_video.values())]
        write_text(out_dir / "emotion_videos.csv", "\n".join(rows) + "\n")
        labels = np.asarray(per_video["label"])
        if (labels >= 0).any():
            probs = _two_class(np.asarray(per_video["prob_win"])[labels >= 0])
            plot_reliability({"videos": (probs, labels[labels >= 0])}, out_dir / "emotion_reliability.png",
                             bins=10, title="emotion (video level): reliability")
    metrics.update(extra or {})
    write_text(out_dir / "metrics.json", json.dumps(metrics, indent=2))
    return metrics
