"""Results split by head / medium / tail classes, the groups defined by training-set counts.

Groups (stated once, used everywhere): with n_c the training clips of class c and
n_mean = (training clips) / (classes), a class is
- head   when n_c >= HEAD_RATIO * n_mean (2: at least twice the mean),
- tail   when n_c <= TAIL_RATIO * n_mean (0.5: at most half the mean),
- medium otherwise.
The thresholds scale with the dataset, so they mean the same on iMiGUE (13,936 training clips:
head >= 871, tail <= 217 clips: 4 head, 8 medium, 20 tail classes) and on the small synthetic set
(298 training clips: head >= 19, tail <= 4: 3 head, 20 medium, 9 tail classes). A class with no
training clip is tail.

Per group, over the predictions of the full K-way classifier: `top1` (accuracy on the samples whose
true class is in the group), `macro_f1` (the mean per-class F1 of the group's classes present in
the labels or the predictions, as eval/metrics.py's macro F1), `mean_class_accuracy` (the mean
recall of the group's classes present in the labels), `num_samples`, `classes`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from microgesture.errors import DataError

HEAD_RATIO = 2.0
TAIL_RATIO = 0.5
GROUPS = ("head", "medium", "tail")


def class_groups(train_counts: Sequence[int], head_ratio: float = HEAD_RATIO,
                 tail_ratio: float = TAIL_RATIO) -> dict[str, list[int]]:
    """{group: class indices} from the training counts (see the module doc)."""
    n = np.asarray(train_counts, dtype=np.float64)
    if n.ndim != 1 or not len(n) or n.sum() <= 0:
        raise DataError(None, "class groups need the training counts of every class (at least one clip)")
    mean = n.sum() / len(n)
    head = n >= head_ratio * mean
    tail = (n <= tail_ratio * mean) & ~head
    return {"head": np.flatnonzero(head).tolist(), "medium": np.flatnonzero(~head & ~tail).tolist(),
            "tail": np.flatnonzero(tail).tolist()}


def per_class_f1(labels: np.ndarray, preds: np.ndarray, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-class F1 = 2TP / (true + predicted) and whether the class occurs in labels or predictions."""
    true = np.bincount(labels, minlength=num_classes).astype(np.float64)
    predicted = np.bincount(preds, minlength=num_classes).astype(np.float64)
    tp = np.bincount(labels[labels == preds], minlength=num_classes).astype(np.float64)
    denom = true + predicted
    return np.divide(2 * tp, denom, out=np.zeros(num_classes), where=denom > 0), denom > 0


def long_tail_metrics(scores: np.ndarray, labels: np.ndarray, train_counts: Sequence[int],
                      class_names: Sequence[str] | None = None) -> dict[str, Any]:
    """Per-class F1 and head / medium / tail metrics of scores [N, K] against labels [N] (all known)."""
    s, y = np.asarray(scores), np.asarray(labels, dtype=np.int64)
    k = s.shape[1]
    if len(train_counts) != k:
        raise DataError(None, f"{len(train_counts)} training counts for {k} classes")
    if not len(y) or y.min() < 0:
        raise DataError(None, "long-tail metrics need labelled samples (no -1)")
    names = list(class_names) if class_names is not None else [str(c) for c in range(k)]
    preds = s.argmax(1)
    f1, seen = per_class_f1(y, preds, k)
    true = np.bincount(y, minlength=k)
    recall = np.divide(np.bincount(y[y == preds], minlength=k), true, out=np.zeros(k), where=true > 0)
    groups = class_groups(train_counts)
    out: dict[str, Any] = {"per_class_f1": {names[c]: float(f1[c]) for c in np.flatnonzero(seen)}, "groups": {}}
    mean = float(np.sum(train_counts)) / k
    for group, members in groups.items():
        idx = np.asarray(members, dtype=np.int64)
        in_group = np.isin(y, idx)
        f1_idx, acc_idx = idx[seen[idx]], idx[true[idx] > 0]
        out["groups"][group] = {
            "classes": [names[c] for c in idx],
            "num_samples": int(in_group.sum()),
            "top1": float(np.mean(preds[in_group] == y[in_group])) if in_group.any() else None,
            "macro_f1": float(f1[f1_idx].mean()) if len(f1_idx) else None,
            "mean_class_accuracy": float(recall[acc_idx].mean()) if len(acc_idx) else None,
        }
    out["thresholds"] = {"head_min_train_clips": HEAD_RATIO * mean, "tail_max_train_clips": TAIL_RATIO * mean,
                         "rule": "head: n_c >= 2 x mean, tail: n_c <= mean / 2 (training clips per class)"}
    return out


def format_long_tail(rows: Mapping[str, Mapping[str, Any]]) -> str:
    """A table of macro F1 / top-1 per group, one line per named result (metrics with `long_tail`
    as `evaluate` writes them, or `long_tail_metrics` output itself)."""
    width = max([len(name) for name in rows] + [6])
    head = f"{'model':<{width}}" + "".join(f"{g + ' F1':>12}{g + ' top-1':>14}" for g in GROUPS)
    lines = [head, "-" * len(head)]
    for name, m in rows.items():
        groups = (m.get("long_tail") or m)["groups"]
        cells = []
        for g in GROUPS:
            for key, w in (("macro_f1", 12), ("top1", 14)):
                v = groups[g][key]
                cells.append(f"{'-':>{w}}" if v is None else f"{100 * v:>{w - 1}.2f}%")
        lines.append(f"{name:<{width}}" + "".join(cells))
    counts = next(iter(rows.values()), {})
    groups = (counts.get("long_tail") or counts).get("groups", {}) if counts else {}
    if groups:
        lines.append("classes: " + ", ".join(f"{g} {len(groups[g]['classes'])}" for g in GROUPS)
                     + " (by training clips: head >= 2x the mean, tail <= half the mean)")
    return "\n".join(lines)


def long_tail_table(score_files: Mapping[str, Any], annotations: Any, train_split: str = "train") -> str:
    """The head / medium / tail table of named score files (e.g. the demo's streams and fusion),
    groups from the annotation file's training split. For `apps/demo.py`:

        print(long_tail_table({"joint": out / "joint/eval/scores.csv", "joint+bone": out / "scores_fused.csv"}, ann))
    """
    from microgesture.data.formats.annotations import load_annotations
    from microgesture.eval.scores import read_scores

    data = load_annotations(annotations)
    names = list(data["meta"].get("classes") or [])
    by_name = {c["frame_dir"]: c["label"] for c in data["annotations"]}
    labels = np.array([by_name[i] for i in data["split"].get(train_split, [])], dtype=np.int64)
    rows = {}
    for name, path in score_files.items():
        table = read_scores(path)
        known = table.labels >= 0
        counts = np.bincount(labels[labels >= 0], minlength=table.num_classes)
        rows[name] = long_tail_metrics(table.scores[known], table.labels[known], counts,
                                       names if len(names) == table.num_classes else None)
    return format_long_tail(rows)
