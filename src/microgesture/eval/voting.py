"""Calibrated soft voting (arXiv 2606.13030's temperature-scaled late fusion), fit on validation scores.

    microgesture fuse TEST_SCORES... --calibrate VAL_SCORES...

The i-th validation file and the i-th test file are the same stream scored on two splits.
1. Per stream, a temperature T_s fit by NLL on its validation scores (eval/calibration.py).
2. Weights w on a grid over the simplex (steps of 1/`grid`), chosen on validation only by
   `objective`: "nll" (default: the fused probabilities' negative log-likelihood, smooth and hard
   to overfit on a few validation subjects), "macro_f1" or "top1"; ties go to the weights closest
   to equal.
3. The test scores fused as sum_s w_s softmax(logits_s / T_s) (eval/fuse.py, mode softmax).
Reported before (T = 1, equal weights) and after, on validation and (where labelled) on test: ECE,
NLL, top-1 and macro F1, and reliability diagrams. Score files holding probabilities are turned
back into logits (log p) first, as `fuse` does.

Validation and test files that cover different streams are refused (`StreamMismatch`): a different
number of files, a different class count, or, when `evaluate` wrote a metrics.json beside both
score files, different checkpoints' runs. Everything is computed before anything is written.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from microgesture.errors import ConfigError, DataError
from microgesture.eval.calibration import expected_calibration_error, fit_temperature, plot_reliability
from microgesture.eval.fuse import align_tables, fuse, looks_like_probabilities, softmax
from microgesture.eval.metrics import classification_metrics
from microgesture.eval.scores import ScoreTable, read_scores, write_scores
from microgesture.utils.io import write_text

OBJECTIVES = ("nll", "macro_f1", "top1")


class StreamMismatch(DataError):
    """Validation and test score files that do not cover the same streams."""


@dataclass
class VotingResult:
    temperatures: list[float]
    weights: list[float]
    fused: ScoreTable  # the calibrated fusion of the test files
    report: dict[str, Any]


def stream_of(path: Path) -> str | None:
    """The run a score file came from: the checkpoint's run folder named in the metrics.json that
    `evaluate` writes beside scores.csv (None when there is none)."""
    meta = path.parent / "metrics.json"
    try:
        checkpoint = json.loads(meta.read_text()).get("checkpoint")
    except (OSError, ValueError, AttributeError):
        return None
    return None if not checkpoint else str(Path(checkpoint).resolve().parent.parent)


def check_streams(val: Sequence[ScoreTable], test: Sequence[ScoreTable]) -> None:
    if len(val) != len(test):
        raise StreamMismatch(test[0].source if test else None,
                             f"{len(val)} validation score files for {len(test)} test files; give one validation "
                             "file per test file, stream by stream in the same order")
    for v, t in zip(val, test):
        if v.num_classes != t.num_classes:
            raise StreamMismatch(t.source, f"{t.num_classes} classes, but its validation file {v.name} has "
                                           f"{v.num_classes}: not the same stream")
        a, b = (stream_of(Path(x.source)) if x.source is not None else None for x in (v, t))
        if a is not None and b is not None and a != b:
            raise StreamMismatch(t.source, f"scored by the run {b}, but its validation file {v.name} by {a}: "
                                           "give the files of each stream in the same order")


def _logits(table: ScoreTable) -> np.ndarray:
    s = table.scores.astype(np.float64)
    return np.log(np.clip(s, 1e-12, None)) if looks_like_probabilities(s) else s


def simplex_grid(streams: int, grid: int) -> np.ndarray:
    """Every weight vector with entries in {0, 1/grid, ..., 1} summing to 1."""
    points = [c for c in itertools.product(range(grid + 1), repeat=streams) if sum(c) == grid]
    return np.asarray(points, dtype=np.float64) / grid


def _score(probs: np.ndarray, labels: np.ndarray, objective: str) -> float:
    """Higher is better."""
    if objective == "nll":
        return float(np.log(np.clip(probs[np.arange(len(labels)), labels], 1e-12, None)).mean())
    m = classification_metrics(probs, labels)
    return float(m[objective])


def search_weights(probs: Sequence[np.ndarray], labels: np.ndarray, objective: str = "nll", grid: int = 10) -> np.ndarray:
    """The grid weights with the best validation objective; ties to the most nearly equal weights."""
    if objective not in OBJECTIVES:
        raise ConfigError(f"--objective {objective!r}: expected one of {', '.join(OBJECTIVES)}")
    stacked = np.stack(probs)  # [S, N, K]
    equal = np.full(len(probs), 1.0 / len(probs))
    best, best_key = equal, None
    for w in simplex_grid(len(probs), grid):
        key = (round(_score(np.tensordot(w, stacked, 1), labels, objective), 12), -float(np.abs(w - equal).sum()))
        if best_key is None or key > best_key:
            best, best_key = w, key
    return best


def _quality(probs: np.ndarray, labels: np.ndarray, bins: int) -> dict[str, float]:
    m = classification_metrics(probs, labels)
    return {"ece": expected_calibration_error(probs, labels, bins), "nll": -_score(probs, labels, "nll"),
            "top1": m["top1"], "macro_f1": m["macro_f1"]}


def calibrated_voting(val_paths: Sequence[str | Path], test_paths: Sequence[str | Path], *, objective: str = "nll",
                      grid: int = 10, bins: int = 15, out: str | Path | None = None) -> VotingResult:
    """Fit on the validation files, apply to the test files (module doc); `out`: a folder for
    calibration.json, scores_fused.csv and reliability_{val,test}.png."""
    if objective not in OBJECTIVES:
        raise ConfigError(f"--objective {objective!r}: expected one of {', '.join(OBJECTIVES)}")
    val_raw, test_raw = [read_scores(p) for p in val_paths], [read_scores(p) for p in test_paths]
    check_streams(val_raw, test_raw)
    val, val_labels = align_tables(val_raw)
    test, test_labels = align_tables(test_raw)
    if not np.all(val_labels >= 0):
        raise DataError(val_raw[0].source, "calibration needs labelled validation scores; some samples have label -1")
    val_logits, test_logits = [_logits(t) for t in val], [_logits(t) for t in test]
    temps = [fit_temperature(s, val_labels) for s in val_logits]
    val_probs = [softmax(s, t) for s, t in zip(val_logits, temps)]
    weights = search_weights(val_probs, val_labels, objective, grid)
    as_logits = [ScoreTable(t.sample_ids, t.labels, s) for t, s in zip(test, test_logits)]
    fused = fuse(as_logits, weights=weights.tolist(), mode="softmax", temperature=temps, probabilities=False)
    names = [str(p) for p in test_paths]
    report = {"objective": objective, "grid": grid, "bins": bins, "streams": names,
              "validation": [str(p) for p in val_paths],
              "temperatures": temps, "weights": weights.tolist()}
    curves: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = {}
    for split, logits, labels in (("val", val_logits, val_labels), ("test", test_logits, test_labels)):
        known = labels >= 0
        if not known.any():
            continue
        y = labels[known]
        before_streams = [softmax(s[known]) for s in logits]
        after_streams = [softmax(s[known], t) for s, t in zip(logits, temps)]
        before = np.mean(before_streams, axis=0)
        after = np.tensordot(weights, np.stack(after_streams), 1)
        report[split] = {
            "streams": {n: {"before": _quality(b, y, bins), "after": _quality(a, y, bins)}
                        for n, b, a in zip(names, before_streams, after_streams)},
            "fused": {"before": _quality(before, y, bins), "after": _quality(after, y, bins)},
        }
        curves[split] = {"fused, T=1, equal weights": (before, y), "fused, calibrated": (after, y)}
    if out is not None:
        out = Path(out)
        for split, curve in curves.items():
            plot_reliability(curve, out / f"reliability_{split}.png", bins, title=f"soft voting, {split} split")
        write_scores(out / "scores_fused.csv", fused)
        write_text(out / "calibration.json", json.dumps(report, indent=2))
    return VotingResult(temps, weights.tolist(), fused, report)


def format_voting(result: VotingResult) -> str:
    """Temperatures, weights and the before/after table, for the command line."""
    r = result.report
    lines = ["stream                                   T       weight"]
    for name, t, w in zip(r["streams"], result.temperatures, result.weights):
        lines.append(f"{name[-40:]:<40} {t:6.3f}  {w:6.2f}")
    for split in ("val", "test"):
        if split not in r:
            continue
        lines.append(f"\n{split}: fused          ECE      NLL    top-1  macro F1")
        for when in ("before", "after"):
            q = r[split]["fused"][when]
            lines.append(f"  {when:<14}{100 * q['ece']:6.2f}% {q['nll']:7.3f} {100 * q['top1']:7.2f}% "
                         f"{100 * q['macro_f1']:7.2f}%")
    return "\n".join(lines)
