"""Choosing cross-modal pseudo-labels (CMPL, arXiv 2606.13030) from the streams' predictions. Numpy only.

Given each stream's class probabilities on the same unlabelled target clips:
1. Agreement: a clip is a candidate when every stream predicts the same class c.
2. Confidence: the streams' mean probability of c (the soft vote of the agreed class).
3. Per-class adaptive threshold, after FlexMatch (Zhang et al. 2021, "FlexMatch: Boosting
   Semi-Supervised Learning with Curriculum Pseudo Labeling"): sigma_c counts the candidates of
   class c above the base threshold tau; beta_c = sigma_c / max(max_c sigma_c, clips not counted),
   and class c's threshold is max(min_threshold, tau * beta_c / (2 - beta_c)). Classes the models
   are rarely confident about (the tail, the hard ones) get lower thresholds, so they are not
   starved of pseudo-labels; the floor keeps out guesses.
4. Cap per class: a class keeps at most ceil(cap * kept / classes kept) pseudo-labels, the most
   confident first (ties: clip order), so the head classes cannot swamp the tail.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np


@dataclass
class PseudoLabels:
    """The chosen clips (positions into the target clips), their classes and confidences."""

    index: np.ndarray
    label: np.ndarray
    confidence: np.ndarray
    stream_confidence: dict[str, np.ndarray]  # each stream's probability of the pseudo-label
    thresholds: np.ndarray  # [K] the per-class thresholds used
    candidates: int  # clips on which the streams agreed


def class_thresholds(pred: np.ndarray, conf: np.ndarray, num_classes: int, threshold: float,
                     min_threshold: float) -> np.ndarray:
    """FlexMatch-style per-class thresholds from the candidates' predictions and confidences."""
    sigma = np.bincount(pred[conf >= threshold], minlength=num_classes).astype(np.float64)
    unused = len(pred) - sigma.sum()
    beta = sigma / max(sigma.max(), unused, 1.0)
    return np.maximum(min_threshold, threshold * beta / (2.0 - beta))


def select_pseudo_labels(probs: Mapping[str, np.ndarray], *, threshold: float, min_threshold: float,
                         cap: float) -> PseudoLabels:
    """Pseudo-labels from {stream: probabilities [N, K]} (see the module doc)."""
    names = list(probs)
    stacked = np.stack([np.asarray(probs[m], dtype=np.float64) for m in names])  # [S, N, K]
    _, n, k = stacked.shape
    preds = stacked.argmax(2)
    agree = np.all(preds == preds[0], axis=0)
    label = preds[0]
    conf = stacked.mean(0)[np.arange(n), label]
    cand = np.flatnonzero(agree)
    thresholds = class_thresholds(label[cand], conf[cand], k, threshold, min_threshold)
    passed = cand[conf[cand] >= thresholds[label[cand]]]
    kept = _cap(passed, label, conf, cap)
    return PseudoLabels(
        index=kept, label=label[kept], confidence=conf[kept],
        stream_confidence={m: stacked[i, kept, label[kept]] for i, m in enumerate(names)},
        thresholds=thresholds, candidates=int(agree.sum()))


def _cap(chosen: np.ndarray, label: np.ndarray, conf: np.ndarray, cap: float) -> np.ndarray:
    if not len(chosen):
        return chosen
    classes = np.unique(label[chosen])
    limit = math.ceil(cap * len(chosen) / len(classes))
    keep = []
    for c in classes:
        members = chosen[label[chosen] == c]
        order = np.lexsort((members, -conf[members]))  # most confident first, then clip order
        keep.extend(members[order[:limit]].tolist())
    return np.sort(np.asarray(keep, dtype=np.int64))
