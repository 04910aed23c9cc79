"""PNG figures: confusion matrix and training curves, rendered off-screen and saved atomically.

We draw on `matplotlib.figure.Figure` directly (the Agg renderer, no pyplot): no display is
needed, no global figure state leaks between calls, and threads do not share figures.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from microgesture.errors import DataError
from microgesture.utils.io import atomic_path

# Columns of Lightning's CSVLogger that are axes, not metrics.
_AXIS_COLUMNS = ("epoch", "step")


def save_figure(fig: Figure, path: str | Path, dpi: int = 120) -> Path:
    """Render a matplotlib Figure to a PNG atomically."""
    FigureCanvasAgg(fig)
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight")
    return Path(path)


def plot_confusion_matrix(
    cm: Any,
    class_names: Sequence[str] | None,
    path: str | Path,
    normalize: bool = True,
    title: str | None = None,
) -> Path:
    """Save the confusion matrix (rows true, columns predicted) as a PNG.

    With `normalize`, each row is divided by its number of true samples (so the diagonal is the
    per-class recall; rows without samples stay 0). The figure grows with the number of classes
    and long names get a small font and rotated column labels; cell values are printed only
    when there are at most 15 classes.
    """
    m = np.asarray(cm, dtype=np.float64)
    if m.ndim != 2 or m.shape[0] != m.shape[1] or m.shape[0] == 0:
        raise ValueError(f"confusion matrix must be square [K, K], got shape {m.shape}")
    k = m.shape[0]
    names = [str(i) for i in range(k)] if class_names is None else [str(n) for n in class_names]
    if len(names) != k:
        raise ValueError(f"{len(names)} class names for a {k}x{k} confusion matrix")
    counts = m.sum(axis=1, keepdims=True)
    shown = np.divide(m, counts, out=np.zeros_like(m), where=counts > 0) if normalize else m
    longest = max(len(n) for n in names)
    font = 9 if k <= 10 else 7 if k <= 20 else 5.5
    side = max(5.0, 0.28 * k + 0.06 * longest * font / 7 + 2.0)
    fig = Figure(figsize=(side + 1.2, side))
    ax = fig.add_subplot(1, 1, 1)
    image = ax.imshow(shown, cmap="Blues", vmin=0.0, vmax=1.0 if normalize else max(shown.max(), 1.0))
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.02)
    ax.set_xticks(range(k))
    ax.set_yticks(range(k))
    if longest <= 4:
        ax.set_xticklabels(names, fontsize=font)
    else:
        ax.set_xticklabels(names, rotation=60, ha="right", rotation_mode="anchor", fontsize=font)
    ax.set_yticklabels(names, fontsize=font)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title or ("confusion matrix (rows normalised)" if normalize else "confusion matrix"))
    if k <= 15:
        for i in range(k):
            for j in range(k):
                text = f"{shown[i, j]:.2f}" if normalize else f"{int(m[i, j])}"
                dark = shown[i, j] > 0.5 * (1.0 if normalize else shown.max())
                ax.text(j, i, text, ha="center", va="center", fontsize=font, color="white" if dark else "black")
    return save_figure(fig, path, dpi=150)


def read_training_log(path: str | Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per-epoch series from a Lightning CSVLogger `metrics.csv`: name -> (epochs, values).

    Rows interleave step-level and epoch-level metrics with empty cells; empty, NaN and
    non-numeric cells are skipped, and several values in one epoch (step-level logging) are
    averaged. A `<name>_step` column is dropped when `<name>_epoch` exists. Without an `epoch`
    column the x axis is `step`, else the row number.
    """
    path = Path(path)
    try:
        with open(path, encoding="utf-8", newline="") as fh:
            rows = list(csv.DictReader(fh))
    except FileNotFoundError:
        raise DataError(path, "training log not found") from None
    if not rows:
        raise DataError(path, "no rows in the training log")
    columns = [c for c in rows[0] if c is not None]
    x_name = "epoch" if "epoch" in columns else "step" if "step" in columns else None
    metrics = [c for c in columns if c not in _AXIS_COLUMNS]
    metrics = [c for c in metrics if not (c.endswith("_step") and f"{c[:-5]}_epoch" in metrics)]
    series: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for name in metrics:
        points: dict[float, list[float]] = {}
        for i, row in enumerate(rows):
            y = _number(row.get(name))
            x = float(i) if x_name is None else _number(row.get(x_name))
            if y is not None and x is not None:
                points.setdefault(x, []).append(y)
        if points:
            xs = np.array(sorted(points))
            series[name] = (xs, np.array([np.mean(points[x]) for x in xs]))
    return series


def _number(text: Any) -> float | None:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _as_series(data: Mapping[str, Any]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Dict input: name -> values per epoch (index = epoch), or name -> (epochs, values)."""
    out = {}
    for name, value in data.items():
        if isinstance(value, tuple) and len(value) == 2:
            xs, ys = (np.asarray(v, dtype=np.float64) for v in value)
        else:
            ys = np.asarray(value, dtype=np.float64)
            xs = np.arange(len(ys), dtype=np.float64)
        keep = np.isfinite(xs) & np.isfinite(ys)
        if keep.any():
            out[str(name)] = (xs[keep], ys[keep])
    return out


def plot_training_curves(log: str | Path | Mapping[str, Any], path: str | Path) -> Path:
    """Save loss (left) and the other metrics, e.g. accuracy/F1 (right), against epoch as a PNG.

    `log` is a Lightning `metrics.csv` (see `read_training_log`) or a dict of series. Missing
    metrics leave their panel with a note; a log with no numeric metric at all raises DataError.
    """
    series = _as_series(log) if isinstance(log, Mapping) else read_training_log(log)
    if not series:
        raise DataError(None if isinstance(log, Mapping) else log, "no numeric metric to plot")
    fig = Figure(figsize=(11, 4.2))
    panels = (
        (fig.add_subplot(1, 2, 1), [n for n in series if "loss" in n.lower()], "loss"),
        (fig.add_subplot(1, 2, 2), [n for n in series if "loss" not in n.lower()], "metric"),
    )
    for ax, names, label in panels:
        for name in sorted(names):
            xs, ys = series[name]
            ax.plot(xs, ys, marker="o" if len(xs) < 30 else None, markersize=3, label=name)
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        if names:
            ax.legend(fontsize=8)
        else:
            ax.text(0.5, 0.5, f"no {label} logged", ha="center", va="center", transform=ax.transAxes)
    return save_figure(fig, path, dpi=120)
