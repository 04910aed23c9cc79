"""Calibration of classifier scores: temperature scaling, expected calibration error, reliability.

Conventions, stated once:
- Scores are logits [N, K] (any real numbers); probabilities are softmax(logits / T).
- ECE is the top-label expected calibration error (Guo et al., "On Calibration of Modern Neural
  Networks", 2017): predictions are binned by their confidence (the top probability) into
  `bins` equal-width bins over [0, 1] (a confidence of exactly 1 goes in the last bin); ECE is
  the mean over samples of |accuracy of the bin - mean confidence of the bin|, i.e. each bin
  weighted by its share of samples. Empty bins add nothing.
- `fit_temperature` minimises the mean negative log-likelihood over T in [0.05, 20] by a golden
  section search on log T (the NLL is unimodal in T for fixed logits); labels < 0 are ignored.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from microgesture.errors import DataError

T_RANGE = (0.05, 20.0)


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64) / float(temperature)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _labelled(logits, labels) -> tuple[np.ndarray, np.ndarray]:
    s, y = np.asarray(logits, dtype=np.float64), np.asarray(labels, dtype=np.int64).ravel()
    if s.ndim != 2 or len(s) != len(y):
        raise DataError(None, f"scores of shape {s.shape} for {len(y)} labels; expected [N, K] and [N]")
    keep = y >= 0
    if not keep.any():
        raise DataError(None, "no labelled samples to calibrate on")
    if y[keep].max() >= s.shape[1]:
        raise DataError(None, f"label {int(y[keep].max())} is outside the {s.shape[1]} classes of the scores")
    return s[keep], y[keep]


def nll(logits, labels, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood of the labels under softmax(logits / T)."""
    s, y = _labelled(logits, labels)
    z = s / temperature
    z = z - z.max(axis=1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return float(-log_p[np.arange(len(y)), y].mean())


def fit_temperature(logits, labels, *, iters: int = 60) -> float:
    """The temperature T minimising the NLL on labelled validation scores (see module doc)."""
    s, y = _labelled(logits, labels)
    lo, hi = math.log(T_RANGE[0]), math.log(T_RANGE[1])
    ratio = (math.sqrt(5) - 1) / 2
    a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    fa, fb = nll(s, y, math.exp(a)), nll(s, y, math.exp(b))
    for _ in range(iters):
        if fa < fb:
            hi, b, fb = b, a, fa
            a = hi - ratio * (hi - lo)
            fa = nll(s, y, math.exp(a))
        else:
            lo, a, fa = a, b, fb
            b = lo + ratio * (hi - lo)
            fb = nll(s, y, math.exp(b))
    return float(math.exp((lo + hi) / 2))


def reliability(probs, labels, bins: int = 15) -> dict[str, np.ndarray]:
    """Per confidence bin: `confidence` (mean top probability), `accuracy`, `count` (see module doc)."""
    p, y = np.asarray(probs, dtype=np.float64), np.asarray(labels, dtype=np.int64).ravel()
    if p.ndim != 2 or len(p) != len(y):
        raise DataError(None, f"probabilities of shape {p.shape} for {len(y)} labels")
    keep = y >= 0
    p, y = p[keep], y[keep]
    conf, pred = p.max(axis=1), p.argmax(axis=1)
    which = np.minimum((conf * bins).astype(np.int64), bins - 1)
    count = np.bincount(which, minlength=bins).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        confidence = np.bincount(which, weights=conf, minlength=bins) / count
        accuracy = np.bincount(which, weights=(pred == y).astype(np.float64), minlength=bins) / count
    return {"confidence": confidence, "accuracy": accuracy, "count": count.astype(np.int64),
            "edges": np.linspace(0.0, 1.0, bins + 1)}


def expected_calibration_error(probs, labels, bins: int = 15) -> float:
    r = reliability(probs, labels, bins)
    n = r["count"].sum()
    if n == 0:
        raise DataError(None, "no labelled samples to measure calibration on")
    used = r["count"] > 0
    gaps = np.abs(r["accuracy"][used] - r["confidence"][used])
    return float((gaps * r["count"][used]).sum() / n)


def plot_reliability(curves: Mapping[str, tuple[np.ndarray, np.ndarray]], path: str | Path, bins: int = 15,
                     title: str = "reliability") -> Path:
    """Accuracy against confidence per bin for each named (probabilities, labels), with their ECE."""
    from matplotlib.figure import Figure

    from microgesture.eval.plots import save_figure

    fig = Figure(figsize=(5, 5))
    ax = fig.add_subplot(1, 1, 1)
    ax.plot([0, 1], [0, 1], color="0.6", linestyle="--", linewidth=1, label="perfect calibration")
    for name, (probs, labels) in curves.items():
        r = reliability(probs, labels, bins)
        used = r["count"] > 0
        ece = expected_calibration_error(probs, labels, bins)
        ax.plot(r["confidence"][used], r["accuracy"][used], marker="o", markersize=3,
                label=f"{name} (ECE {100 * ece:.1f}%)")
    ax.set_xlabel("confidence")
    ax.set_ylabel("accuracy")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    return save_figure(fig, path)
