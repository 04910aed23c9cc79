"""Segments of an untrimmed video: per-window scores decoded into (class, start, end, score), and
the MiGA online-recognition metric, segment F1. Numpy only.

Frames are integer indices; a segment [start, end] includes both ends (as the MiGA label and
prediction CSVs do).

Decoding (`frame_probabilities`, then `decode`):
- each frame's class probabilities are the mean of the windows that contain it, weighted by a
  tent that peaks at the window's centre (a window says most about its middle); a frame no
  window with a person covers has none (NaN) and is background;
- with a background ("no gesture") class, a frame is a gesture when 1 - p(background) >=
  `threshold`, of the gesture class with the highest probability; without one, when the highest
  class probability >= `threshold`;
- runs of frames with the same class are segments; runs of one class separated by at most
  `merge_gap` background frames are merged; segments shorter than `min_length` frames are
  dropped (and the merge is done once more); a segment's score is the mean probability of its
  class over its frames.

The metric follows the matching rule published by the challenge's organisers in their
online-recognition start kit (github.com/mikecheninoulu/SMG, `online recognition/SMG/THDutils.py`,
function `tester_SMG`; the SMG paper: Chen et al., "SMG: A Micro-Gesture Dataset Towards
Spontaneous Body Gestures for Emotional Stress State Analysis", IJCV 2023). The MiGA server's
own code is not public; this is the organisers' published code:
- overlap of a prediction p and a ground-truth segment g:
  alpha = (min(e_p, e_g) - max(s_p, s_g)) / (max(e_p, e_g) - min(s_p, s_g)), the segment ends
  taken as points on a line (no +1). It is 0 for segments that only touch and negative when a
  gap separates them (no match); two one-frame segments on the same frame (0 / 0 in the kit, a
  division by zero) count as alpha = 1 here;
- a ground-truth segment is found when a prediction of the same class has alpha > 0.3
  (`threshold`, strictly greater);
- ground-truth segments are visited in file order, each taking the first matching prediction in
  file order (ties cannot arise). `rule="kit"` reproduces the kit exactly: a matched prediction
  is not removed (its `numpy.delete` result is discarded), so one prediction may find several
  ground-truth segments and precision may exceed 1. `rule="one_to_one"` removes it, the usual
  detection convention; we report both (docs/analyze.md);
- counts are pooled over all videos: recall = found / ground-truth segments, precision = found /
  predicted segments, F1 = 2PR / (P + R), 0 when P + R = 0 (the kit adds 1e-7 to the
  denominator, which moves F1 by less than 1e-6). Classes are compared as given (0-based
  indices here; the kit compares the CSV codes, the same mapping on both sides).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from microgesture.errors import DataError

RULES = ("kit", "one_to_one")
MIGA_ALPHA = 0.3


@dataclass(frozen=True)
class Segment:
    """One detected (or labelled) micro-gesture: class index, first and last frame, score."""

    label: int
    start: int
    end: int
    score: float = 1.0

    @property
    def length(self) -> int:
        return self.end - self.start + 1


@dataclass(frozen=True)
class DecodeOptions:
    """See the module doc. Frame counts are at the video's own frame rate."""

    threshold: float = 0.5
    min_length: int = 10
    merge_gap: int = 6
    background: int | None = None  # index of the "no gesture" class, if the model has one

    def check(self) -> None:
        if not 0 <= self.threshold <= 1:
            raise DataError(None, f"decoding threshold must be in [0, 1], got {self.threshold}")
        if self.min_length < 1 or self.merge_gap < 0:
            raise DataError(None, f"min_length must be >= 1 and merge_gap >= 0, got {self.min_length}, "
                                  f"{self.merge_gap}")


# ----------------------------------------------------------------------------- decoding


def frame_probabilities(window_probs: np.ndarray, starts: Sequence[int], length: int, total: int) -> np.ndarray:
    """[total, K] per-frame probabilities from windows `starts` of `length` frames (module doc).

    Rows of `window_probs` that are NaN (a window without a person) are left out; a frame
    covered by no window is NaN.
    """
    probs = np.asarray(window_probs, dtype=np.float64)
    out = np.zeros((total, probs.shape[1]))
    weight = np.zeros(total)
    offsets = np.arange(length)
    tent = 1.0 - np.abs(offsets - (length - 1) / 2) / (length / 2 + 1)
    for start, row in zip(starts, probs):
        if not np.all(np.isfinite(row)):
            continue
        idx = start + offsets
        keep = (idx >= 0) & (idx < total)
        out[idx[keep]] += tent[keep, None] * row
        weight[idx[keep]] += tent[keep]
    with np.errstate(invalid="ignore", divide="ignore"):
        out /= weight[:, None]
    out[weight == 0] = np.nan
    return out


def frame_labels(frame_probs: np.ndarray, options: DecodeOptions) -> tuple[np.ndarray, np.ndarray]:
    """Per frame: the gesture class (-1 background) and that class's probability (module doc)."""
    probs = np.asarray(frame_probs, dtype=np.float64)
    valid = np.all(np.isfinite(probs), axis=1)
    filled = np.where(valid[:, None], probs, 0.0)
    gestures = filled.copy()
    bg = options.background
    if bg is not None:
        gestures[:, bg] = -np.inf
        gesture_mass = 1.0 - filled[:, bg]
    label = np.argmax(gestures, axis=1)
    score = filled[np.arange(len(filled)), label]
    strength = gesture_mass if bg is not None else score
    is_gesture = valid & (strength >= options.threshold)
    return np.where(is_gesture, label, -1), np.where(is_gesture, score, 0.0)


def _runs(labels: np.ndarray) -> list[tuple[int, int, int]]:
    """(label, start, end) of every run of equal non-background labels."""
    runs = []
    start = 0
    for t in range(1, len(labels) + 1):
        if t == len(labels) or labels[t] != labels[start]:
            if labels[start] >= 0:
                runs.append((int(labels[start]), start, t - 1))
            start = t
    return runs


def _merge(runs: list[tuple[int, int, int]], labels: np.ndarray, gap: int) -> list[tuple[int, int, int]]:
    """Join runs of one class separated by at most `gap` background frames."""
    out: list[tuple[int, int, int]] = []
    for run in runs:
        if out and out[-1][0] == run[0]:
            between = labels[out[-1][2] + 1:run[1]]
            if len(between) <= gap and np.all(between < 0):
                out[-1] = (run[0], out[-1][1], run[2])
                continue
        out.append(run)
    return out


def decode(frame_probs: np.ndarray, options: DecodeOptions = DecodeOptions()) -> list[Segment]:
    """Segments from per-frame probabilities [T, K] (module doc), in time order."""
    options.check()
    labels, scores = frame_labels(frame_probs, options)
    runs = _merge(_runs(labels), labels, options.merge_gap)
    kept = [r for r in runs if r[2] - r[1] + 1 >= options.min_length]
    cleaned = np.full_like(labels, -1)
    for c, s, e in kept:
        cleaned[s:e + 1] = np.where(labels[s:e + 1] >= 0, c, -1)
    runs = _merge([r for r in kept], cleaned, options.merge_gap)
    probs = np.nan_to_num(np.asarray(frame_probs, dtype=np.float64))
    return [Segment(c, s, e, float(probs[s:e + 1, c].mean())) for c, s, e in runs]


# ----------------------------------------------------------------------------- the metric


def overlap(pred: Segment | tuple, truth: Segment | tuple) -> float:
    """The start kit's alpha (module doc): intersection over union of [start, end] as a line."""
    ps, pe = _ends(pred)
    gs, ge = _ends(truth)
    union = max(pe, ge) - min(ps, gs)
    if union == 0:
        return 1.0
    return (min(pe, ge) - max(ps, gs)) / union


def _ends(seg: Segment | tuple) -> tuple[int, int]:
    return (seg.start, seg.end) if isinstance(seg, Segment) else (int(seg[1]), int(seg[2]))


def _label(seg: Segment | tuple) -> int:
    return seg.label if isinstance(seg, Segment) else int(seg[0])


def match_video(predictions: Sequence[Segment | tuple], truths: Sequence[Segment | tuple], *,
                alpha: float = MIGA_ALPHA, rule: str = "kit") -> int:
    """How many ground-truth segments of one video the predictions find (module doc)."""
    if rule not in RULES:
        raise ValueError(f"rule {rule!r} is not one of {RULES}")
    free = list(range(len(predictions)))
    found = 0
    for truth in truths:
        for k in free:
            pred = predictions[k]
            if _label(pred) == _label(truth) and overlap(pred, truth) > alpha:
                found += 1
                if rule == "one_to_one":
                    free.remove(k)
                break
    return found


@dataclass(frozen=True)
class SegmentScores:
    found: int
    predicted: int
    truths: int

    @property
    def precision(self) -> float:
        return self.found / self.predicted if self.predicted else 0.0

    @property
    def recall(self) -> float:
        return self.found / self.truths if self.truths else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r > 0 else 0.0

    def as_dict(self) -> dict[str, float]:
        return {"f1": self.f1, "precision": self.precision, "recall": self.recall, "found": self.found,
                "predicted": self.predicted, "truths": self.truths}


def segment_f1(predictions: Mapping[int, Iterable[Segment | tuple]], truths: Mapping[int, Iterable[Segment | tuple]],
               *, alpha: float = MIGA_ALPHA, rule: str = "kit") -> SegmentScores:
    """Pooled F1 over videos (module doc). Keys are video ids; a video missing from
    `predictions` has no predictions, one missing from `truths` has no ground truth."""
    found = predicted = total = 0
    for vid in sorted(set(predictions) | set(truths)):
        preds, gts = list(predictions.get(vid, ())), list(truths.get(vid, ()))
        found += match_video(preds, gts, alpha=alpha, rule=rule)
        predicted += len(preds)
        total += len(gts)
    return SegmentScores(found, predicted, total)
