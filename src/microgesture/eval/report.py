"""Readable result tables, and score-file fusion as the `fuse` command runs it."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from microgesture.eval.fuse import fuse, fusion_report
from microgesture.eval.scores import read_scores, write_scores
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
    rows = {Path(name).name: m for name, m in metrics["streams"].items()}
    rows["fused"] = metrics
    text = format_metrics(rows)
    if metrics["gain_over_best_top1"] < 0:
        text += ("\nnote: the fusion is below its best stream; check the weights, or try --mode softmax "
                 "when the streams' scores have different scales")
    return text
