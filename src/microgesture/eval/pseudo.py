"""How good CMPL's pseudo-labels were, measured after adaptation from the true labels.

A separate step on purpose: adaptation (train/adapt.py) never reads target labels; this reads the
finished rounds' `pseudo_labels.csv` and the original annotation file. Per round:
`num_pseudo` (pseudo-labelled clips), `coverage` (their share of the target clips), `precision`
(the share whose pseudo-label is the true label), `tail_precision` / `tail_num` (the same on clips
pseudo-labelled as a tail class, groups from the source training counts, eval/longtail.py), and
`per_class` (class -> [pseudo-labelled, correct]).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from microgesture.errors import DataError
from microgesture.eval.longtail import class_groups


MANIFEST = "manifest.json"  # an adaptation folder's record of its rounds (train/adapt.py writes it)


def read_pseudo_labels(path: str | Path) -> dict[str, Any]:
    """A pseudo_labels.csv as columns (sample_id as a list, pseudo_label and confidence as arrays)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "pseudo-label file not found")
    rows = [line.split(",") for line in path.read_text().splitlines()]
    if not rows or rows[0][:3] != ["sample_id", "pseudo_label", "round"] or len(rows[0]) < 5:
        found = ",".join(rows[0][:5]) if rows else "an empty file"
        raise DataError(path, f"expected a header sample_id,pseudo_label,round,... (5 columns); got {found}")
    ids, labels, confidences = [], [], []
    for line, row in enumerate(rows[1:], 2):
        try:
            labels.append(int(row[1]))
            confidences.append(float(row[4]))
        except (IndexError, ValueError):
            raise DataError(path, "expected an integer pseudo_label and a number in column 5", f"line {line}") from None
        ids.append(row[0])
    return {"sample_id": ids, "pseudo_label": np.array(labels, dtype=np.int64),
            "confidence": np.array(confidences, dtype=float)}


def pseudo_label_quality(adapt_dir: str | Path, data: dict[str, Any], target: str,
                         train_split: str = "train") -> dict[str, dict[str, Any]]:
    """{round: quality} for an adaptation folder, against the labelled annotation object `data`."""
    adapt_dir = Path(adapt_dir)
    manifest = json.loads((adapt_dir / MANIFEST).read_text())
    by_name = {c["frame_dir"]: c for c in data["annotations"]}
    target_ids = data["split"][target]
    k = len(data["meta"].get("classes") or []) or 32
    counts = np.bincount([by_name[i]["label"] for i in data["split"][train_split]], minlength=k)
    tail = set(class_groups(counts)["tail"])
    out = {}
    for record in manifest["rounds"]:
        pseudo = read_pseudo_labels(adapt_dir / f"round_{record['round']}" / "pseudo_labels.csv")
        missing = [i for i in pseudo["sample_id"] if i not in by_name]
        if missing:
            raise DataError(adapt_dir, f"pseudo-labels for clips not in the annotation file, e.g. {missing[0]!r}")
        truth = np.array([by_name[i]["label"] for i in pseudo["sample_id"]], dtype=np.int64)
        guess = pseudo["pseudo_label"]
        right = guess == truth
        in_tail = np.isin(guess, list(tail))
        out[str(record["round"])] = {
            "num_pseudo": int(len(guess)), "target_clips": len(target_ids),
            "coverage": len(guess) / len(target_ids),
            "precision": float(right.mean()) if len(guess) else None,
            "tail_num": int(in_tail.sum()),
            "tail_precision": float(right[in_tail].mean()) if in_tail.any() else None,
            "per_class": {int(c): [int((guess == c).sum()), int(right[guess == c].sum())] for c in np.unique(guess)},
        }
    return out
