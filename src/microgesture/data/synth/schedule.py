"""The plan of a synthetic dataset: its videos, their subjects, emotions and class sequences.

Class frequencies follow iMiGUE's long tail, tempered so that rare classes still occur:

1. base share p_c = sqrt(s_c), s_c from `classes.IMIGUE_CLASS_SHARES`, normalised; then every
   p_c is floored at 1.2 % and renormalised. Illustrative comes out at about 12.7 %, shaking
   shoulders 9 %, pressing lips 6.6 %, and the rarest classes (biting nails, arms akimbo,
   putting arms behind body, ...) at 1.15 %.
2. the video's emotion reweights the classes by their `Motion.kind` (`EMOTION_WEIGHTS`):
   losing favours adaptors (self-touching) and closed postures, winning favours open,
   expansive ones; then renormalise.
3. each video draws its sequence i.i.d. from its distribution (its own seeded generator).
4. coverage repair: while some class has fewer than `min_count = clip(total // 100, 1, 4)`
   instances (only when the dataset has at least 32 instances), an instance of the currently
   most frequent class is relabelled, preferably in a subject that lacks the rare class.

Emotions: round(n * 101 / 359) of the n videos are "lose" (iMiGUE's 258:101 win:lose), and at
least one of each when n >= 2; which videos lose is drawn at random.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from microgesture.domain.classes import IMIGUE_CLASS_SHARES, NUM_CLASSES
from microgesture.data.synth.motions import MOTIONS

TEMPER = 0.5
FLOOR = 0.012
LOSE_FRACTION = 101 / 359
EMOTION_WEIGHTS = {  # kind -> (weight when losing, weight when winning)
    "adaptor": (1.5, 0.85),
    "closed": (1.3, 0.85),
    "open": (0.6, 1.35),
    "neutral": (1.0, 1.0),
}
MEAN_CYCLE_S = 2.75  # average instance plus idle gap, used to size a video's sequence

# Tags that keep the random streams of the plan, subjects and videos apart.
PLAN, SUBJECT, LOOK, VIDEO, DETECTOR = 1, 2, 3, 4, 5


def rng_for(seed: int, *keys: int) -> np.random.Generator:
    """An independent generator for (seed, keys): results never depend on iteration order."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), *map(int, keys)]))


def base_distribution() -> np.ndarray:
    p = np.asarray(IMIGUE_CLASS_SHARES, dtype=float) ** TEMPER
    p = p / p.sum()
    p = np.maximum(p, FLOOR)
    return p / p.sum()


def class_distribution(emotion: int) -> np.ndarray:
    """Class probabilities for a video with this emotion (1 win, 0 lose)."""
    weights = np.array([EMOTION_WEIGHTS[m.kind][1 if emotion == 1 else 0] for m in MOTIONS])
    p = base_distribution() * weights
    return p / p.sum()


@dataclass
class VideoPlan:
    video_id: int
    subject_id: int
    emotion: int  # 1 win, 0 lose
    classes: list[int] = field(default_factory=list)


def plan_dataset(seed: int, subjects: int, videos_per_subject: int, seconds: float) -> list[VideoPlan]:
    """Every video's subject, emotion and class sequence, deterministically from `seed`."""
    rng = rng_for(seed, PLAN)
    plans = [
        VideoPlan(video_id=(s - 1) * videos_per_subject + k + 1, subject_id=s, emotion=1)
        for s in range(1, subjects + 1)
        for k in range(videos_per_subject)
    ]
    n = len(plans)
    n_lose = int(round(n * LOSE_FRACTION))
    if n >= 2:
        n_lose = min(max(n_lose, 1), n - 1)
    for i in rng.choice(n, size=n_lose, replace=False):
        plans[int(i)].emotion = 0
    for plan in plans:
        vrng = rng_for(seed, PLAN, plan.video_id)
        count = max(1, int(round(seconds / MEAN_CYCLE_S * vrng.uniform(0.9, 1.1))))
        plan.classes = [int(c) for c in vrng.choice(NUM_CLASSES, size=count, p=class_distribution(plan.emotion))]
    _repair_coverage(plans, rng)
    return plans


def _repair_coverage(plans: list[VideoPlan], rng: np.random.Generator) -> None:
    total = sum(len(p.classes) for p in plans)
    if total < NUM_CLASSES:
        return
    min_count = int(np.clip(total // 100, 1, 4))
    counts = np.bincount([c for p in plans for c in p.classes], minlength=NUM_CLASSES)
    for rare in np.argsort(counts, kind="stable"):
        while counts[rare] < min_count:
            donor = int(np.argmax(counts))
            slots = [(v, i) for v, p in enumerate(plans) for i, c in enumerate(p.classes) if c == donor]
            have = {p.subject_id for p in plans if rare in p.classes}
            fresh = [(v, i) for v, i in slots if plans[v].subject_id not in have]
            pool = fresh or slots
            v, i = pool[int(rng.integers(len(pool)))]
            plans[v].classes[i] = int(rare)
            counts[donor] -= 1
            counts[rare] += 1
