"""Late fusion of score files (multi-stream ensembles).

Two modes:
- `score`: the weighted sum of the raw scores, MMAction2's `report_accuracy.py` convention
  (without `--apply-softmax`). Meaningful when the streams' scores share a scale (e.g. all are
  softmax probabilities, as in MMAction2's dumps).
- `softmax`: temperature-scaled soft voting (arXiv 2606.13030): each stream's scores become probabilities
  `softmax(logits / T)` and the weighted sum of those is the fused score. A stream whose file
  already holds probabilities (every row in [0, 1] summing to 1, detected per stream unless
  `probabilities` says otherwise) is turned back into logits with `log p` first, so that T = 1
  keeps its probabilities unchanged instead of squashing them a second time.

Weights are normalised to sum to 1 (MMAction2 does not normalise). Scaling all weights by one
positive constant changes no arg-max or ranking, so every accuracy equals MMAction2's; the
fused scores of the softmax mode stay probabilities, which video-level averaging needs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from microgesture.errors import ConfigError, DataError
from microgesture.eval.metrics import classification_metrics
from microgesture.eval.scores import ScoreTable

MODES = ("score", "softmax")


def softmax(scores: Any, temperature: float = 1.0) -> np.ndarray:
    """Row-wise softmax of `scores / temperature`, in float64, stable for large logits."""
    z = np.asarray(scores, dtype=np.float64) / float(temperature)
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def looks_like_probabilities(scores: Any, atol: float = 1e-3) -> bool:
    """True when every row lies in [0, 1] and sums to 1 within `atol`."""
    s = np.asarray(scores, dtype=np.float64)
    return bool(s.size) and bool(np.all(s >= 0) and np.all(s <= 1 + atol)) and bool(
        np.all(np.abs(s.sum(axis=-1) - 1.0) <= atol)
    )


def align_tables(tables: Sequence[ScoreTable]) -> tuple[list[ScoreTable], np.ndarray]:
    """Reorder every table to the first one's sample order and merge their labels.

    Raises DataError naming the files when the sample sets or class counts differ, or when two
    files give different known labels to one sample. A label unknown (-1) in one file is taken
    from another file that knows it. Returns the aligned tables and the merged labels.
    """
    if not tables:
        raise ConfigError("fusion needs at least one score table")
    ref = tables[0]
    labels = ref.labels.copy()
    aligned = [ref]
    for other in tables[1:]:
        if other.num_classes != ref.num_classes:
            raise DataError(other.source, f"{other.num_classes} classes, but {ref.name} has {ref.num_classes}")
        index = {sid: i for i, sid in enumerate(other.sample_ids)}
        if len(index) != len(ref) or any(sid not in index for sid in ref.sample_ids):
            raise DataError(other.source, _difference_message(ref, other))
        order = np.array([index[sid] for sid in ref.sample_ids], dtype=np.int64)
        moved = ScoreTable(ref.sample_ids, other.labels[order], other.scores[order], other.source)
        clash = np.flatnonzero((labels >= 0) & (moved.labels >= 0) & (labels != moved.labels))
        if len(clash):
            i = clash[0]
            raise DataError(
                other.source,
                f"sample {ref.sample_ids[i]!r} has label {moved.labels[i]}, but {labels[i]} in "
                f"{ref.name} ({len(clash)} samples disagree)",
            )
        labels = np.where(labels >= 0, labels, moved.labels)
        aligned.append(moved)
    return aligned, labels


def _difference_message(ref: ScoreTable, other: ScoreTable) -> str:
    a, b = set(ref.sample_ids), set(other.sample_ids)
    only_ref = [s for s in ref.sample_ids if s not in b]
    only_other = [s for s in other.sample_ids if s not in a]
    msg = (
        f"holds different samples from {ref.name}: {len(only_other)} only here (e.g. "
        f"{only_other[:3]}), {len(only_ref)} only in {ref.name} (e.g. {only_ref[:3]})"
    )
    if any(s.startswith("#") for s in ref.sample_ids + other.sample_ids):
        msg += "; ids '#<n>' are positions in a pickle without sample names"
    return msg


def _per_table(value: float | Sequence[float] | None, n: int, what: str, default: float) -> np.ndarray:
    if value is None:
        arr = np.full(n, default, dtype=np.float64)
    elif np.ndim(value) == 0:
        arr = np.full(n, float(value), dtype=np.float64)
    else:
        arr = np.asarray(value, dtype=np.float64).ravel()
    if len(arr) != n:
        raise ConfigError(f"{len(arr)} {what} for {n} score files; give one per file")
    if not np.all(np.isfinite(arr)):
        raise ConfigError(f"{what} must be finite numbers, got {arr.tolist()}")
    return arr


def fuse(
    tables: Sequence[ScoreTable],
    weights: Sequence[float] | None = None,
    mode: str = "score",
    temperature: float | Sequence[float] = 1.0,
    probabilities: bool | None = None,
) -> ScoreTable:
    """Fuse score tables sample by sample (aligned by sample id; see the module docstring).

    `weights` (default all equal) must be >= 0 with a positive sum; they are normalised to sum
    to 1. `temperature` (> 0; one value, or one per table) applies to mode `softmax` only.
    `probabilities` says whether the files hold probabilities (None: detect per table).
    The result has the first table's sample order, the merged labels and `source=None`.
    """
    if mode not in MODES:
        raise ConfigError(f"fusion mode {mode!r} is not one of {MODES}")
    aligned, labels = align_tables(tables)
    w = _per_table(weights, len(aligned), "weights", 1.0)
    if np.any(w < 0) or w.sum() <= 0:
        raise ConfigError(f"weights must be >= 0 with a positive sum, got {w.tolist()}")
    w = w / w.sum()
    temps = _per_table(temperature, len(aligned), "temperatures", 1.0)
    if np.any(temps <= 0):
        raise ConfigError(f"temperatures must be > 0, got {temps.tolist()}")
    if mode == "score" and np.any(temps != 1.0):
        raise ConfigError("a temperature applies to mode 'softmax' only; mode 'score' sums raw scores")
    fused = np.zeros(aligned[0].scores.shape, dtype=np.float64)
    for table, weight, temp in zip(aligned, w, temps):
        s = table.scores.astype(np.float64)
        if mode == "softmax":
            is_prob = looks_like_probabilities(s) if probabilities is None else probabilities
            s = softmax(np.log(np.clip(s, 1e-12, None)) if is_prob else s, temp)
        fused += weight * s
    return ScoreTable(aligned[0].sample_ids, labels, fused.astype(np.float32), None)


def fusion_report(
    tables: Sequence[ScoreTable], fused: ScoreTable, class_names: Sequence[str] | None = None
) -> dict[str, Any]:
    """Metrics of every input stream and of the fusion, on the fused (merged) labels.

    Keys: `streams` (file name -> metrics), `fused` (metrics), `best_stream_top1` and
    `gain_over_best_top1` (negative when the fusion is worse than its best stream, a sign of
    badly scaled scores or weights).
    """
    if not fused.has_labels:
        raise DataError(None, "cannot evaluate the fusion: some samples have no label (-1)")
    aligned, _ = align_tables([fused, *tables])
    streams: dict[str, Any] = {}
    for i, t in enumerate(aligned[1:]):
        key = t.name if t.name not in streams else f"{t.name} [{i}]"
        streams[key] = classification_metrics(t.scores, fused.labels, class_names)
    result = classification_metrics(fused.scores, fused.labels, class_names)
    best = max(m["top1"] for m in streams.values())
    return {
        "streams": streams,
        "fused": result,
        "best_stream_top1": best,
        "gain_over_best_top1": result["top1"] - best,
    }
