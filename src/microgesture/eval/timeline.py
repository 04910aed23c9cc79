"""The timeline figure of an analysed video: which micro-gestures, when, how sure (PNG, off-screen).

Top: the per-frame gesture strength the decoder thresholds (1 - p(no gesture), or the best class
probability for a model without a background class) with the threshold as a dashed line, and
the stretches where nobody was seen shaded grey. Below: one row per class that was detected,
a bar per segment, its opacity and label giving the segment's score. Ground-truth segments, when
given, are drawn as outlines on the same rows (the benchmark's figures).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.figure import Figure

from microgesture.eval.plots import save_figure
from microgesture.eval.segments import Segment


def _spans(mask: np.ndarray) -> list[tuple[int, int]]:
    """(start, end) of each run of True."""
    out, start = [], None
    for t, v in enumerate(list(mask) + [False]):
        if v and start is None:
            start = t
        elif not v and start is not None:
            out.append((start, t - 1))
            start = None
    return out


def plot_timeline(
    path: str | Path,
    segments: Sequence[Segment],
    class_names: Sequence[str],
    *,
    fps: float,
    num_frames: int,
    strength: np.ndarray | None = None,
    threshold: float | None = None,
    no_person: np.ndarray | None = None,
    truths: Sequence[Segment] = (),
    title: str | None = None,
) -> Path:
    """Draw the timeline (module doc) and save it as a PNG."""
    rows = sorted({s.label for s in segments} | {t.label for t in truths})
    fig = Figure(figsize=(11, 1.6 + 0.32 * max(len(rows), 1)))
    grid = fig.add_gridspec(2, 1, height_ratios=[1.2, max(len(rows), 1) * 0.45], hspace=0.08)
    top, bottom = fig.add_subplot(grid[0]), fig.add_subplot(grid[1])
    seconds = num_frames / fps if fps else num_frames
    scale = 1.0 / fps if fps else 1.0
    for ax in (top, bottom):
        ax.set_xlim(0, seconds)
        if no_person is not None:
            for s, e in _spans(np.asarray(no_person, dtype=bool)):
                ax.axvspan(s * scale, (e + 1) * scale, color="0.85", lw=0)
    if strength is not None:
        t = np.arange(len(strength)) * scale
        top.plot(t, np.nan_to_num(strength), color="tab:purple", lw=1)
    if threshold is not None:
        top.axhline(threshold, color="0.3", ls="--", lw=0.8)
    top.set_ylim(0, 1.02)
    top.set_ylabel("gesture", fontsize=8)
    top.tick_params(labelbottom=False, labelsize=7)
    if title:
        top.set_title(title, fontsize=9)
    row_of = {c: k for k, c in enumerate(rows)}
    cmap = matplotlib.colormaps["tab20"]
    for seg in segments:
        y = row_of[seg.label]
        colour = _colour(seg.label, cmap)
        bottom.barh(y, seg.length * scale, left=seg.start * scale, height=0.6, color=colour,
                    alpha=0.35 + 0.65 * float(np.clip(seg.score, 0, 1)))
        bottom.text((seg.start + seg.length / 2) * scale, y, f"{seg.score:.2f}", ha="center", va="center", fontsize=6)
    for seg in truths:
        bottom.barh(row_of[seg.label], seg.length * scale, left=seg.start * scale, height=0.85, fill=False,
                    edgecolor="black", lw=0.8)
    bottom.set_yticks(range(len(rows)), [_short(class_names, c) for c in rows], fontsize=7)
    bottom.set_ylim(-0.6, max(len(rows), 1) - 0.4)
    bottom.invert_yaxis()
    bottom.set_xlabel("time (s)", fontsize=8)
    bottom.tick_params(labelsize=7)
    if not rows:
        bottom.text(0.5, 0.5, "no micro-gesture detected", transform=bottom.transAxes, ha="center", va="center")
    return save_figure(fig, path)


def _colour(label: int, cmap) -> tuple:
    return cmap(label % 20)


def _short(names: Sequence[str], label: int, width: int = 34) -> str:
    name = names[label] if 0 <= label < len(names) else str(label)
    return name if len(name) <= width else name[: width - 1] + "…"
