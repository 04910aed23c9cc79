"""A readable summary of an annotation file: clips per class and split, subjects, videos, frames."""

from __future__ import annotations

from typing import Any

from microgesture.data.formats.annotations import select, summarize
from microgesture.domain.classes import IMIGUE_CLASSES


def format_summary(data: dict[str, Any]) -> str:
    classes = list(data.get("meta", {}).get("classes") or IMIGUE_CLASSES)
    splits = [s for s in ("train", "val", "test") if s in data["split"]]
    splits += [s for s in data["split"] if s not in splits]
    per_split = {s: select(data, s) for s in splits}
    lines = [f"{'split':<8}{'clips':>8}{'videos':>8}{'subjects':>10}{'frames':>10}"]
    for name, clips in per_split.items():
        s = summarize(clips)
        lines.append(f"{name:<8}{s['clips']:>8}{s['videos']:>8}{s['subjects']:>10}{s['frames']:>10}")
    s = summarize(data["annotations"])
    lines.append(f"{'all':<8}{s['clips']:>8}{s['videos']:>8}{s['subjects']:>10}{s['frames']:>10}")
    lines.append("")
    lines.append(f"{'class':<52}" + "".join(f"{n:>7}" for n in splits))
    for k, name in enumerate(classes):
        counts = [sum(1 for c in clips if c["label"] == k) for clips in per_split.values()]
        lines.append(f"{k:>2} {name[:48]:<49}" + "".join(f"{n:>7}" for n in counts))
    unlabelled = [sum(1 for c in clips if c["label"] < 0) for clips in per_split.values()]
    if any(unlabelled):
        lines.append(f"{'-1 (no label)':<52}" + "".join(f"{n:>7}" for n in unlabelled))
    return "\n".join(lines)
