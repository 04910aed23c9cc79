"""Train / val / test protocols (iMiGUE's published protocols; docs/data.md).

- `imigue-xsub`: MG classification, cross-subject; the 37 training subjects of the iMiGUE paper
  train, every other subject is test.
- `imigue-emotion`: video-level emotion; the paper's 102 training and 100 test videos. Clips
  of any other video are in no split.
- `smg-xsub`: SMG's MG classification protocol (the authors' released code): participants 36-40
  are test, 1-35 train.
- `synthetic-xsub`: subject-disjoint for data with no official protocol: subjects sorted by
  id, the last third (at least one) is test, the rest train.
- `none`: everything in `test` (unlabelled data, or data only to be scored).

`val` is always carved from the training side only, by whole subject (whole video for
emotion), deterministically from `seed`, so test clips never reach training or model
selection. A split key is present only when it is non-empty: with `val_fraction=0` there is
no `val`, and `none` has only `test`, so asking for a missing split fails loudly.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from microgesture.errors import ConfigError, DataError

PROTOCOLS: tuple[str, ...] = ("imigue-xsub", "imigue-emotion", "smg-xsub", "synthetic-xsub", "none")

IMIGUE_TRAIN_SUBJECTS = frozenset({
    2, 4, 5, 6, 9, 10, 12, 13, 14, 15, 17, 18, 20, 21, 22, 23, 25, 28, 29, 30, 31, 35, 36, 38,
    39, 41, 42, 43, 44, 46, 47, 48, 52, 53, 59, 61, 62,
})
IMIGUE_EMOTION_TRAIN_VIDEOS = frozenset({
    1, 7, 8, 11, 26, 27, 46, 47, 48, 53, 55, 57, 63, 66, 67, 74, 77, 84, 85, 86, 91, 96, 102,
    103, 104, 105, 106, 108, 109, 112, 114, 117, 124, 132, 134, 140, 148, 157, 161, 162, 163,
    164, 167, 169, 170, 172, 176, 186, 196, 216, 233, 236, 237, 239, 240, 241, 242, 243, 249,
    252, 266, 290, 297, 300, 306, 310, 314, 318, 319, 320, 324, 334, 339, 359, 360, 365, 369,
    377, 381, 385, 392, 402, 407, 410, 411, 413, 414, 415, 420, 429, 433, 435, 436, 440, 441,
    445, 448, 449, 450, 451, 452, 453,
})
IMIGUE_EMOTION_TEST_VIDEOS = frozenset({
    9, 10, 12, 16, 28, 35, 43, 49, 50, 51, 52, 54, 56, 60, 71, 72, 83, 89, 95, 100, 107, 110,
    111, 121, 131, 136, 144, 145, 165, 166, 168, 171, 174, 179, 185, 191, 193, 212, 220, 223,
    230, 231, 232, 234, 235, 238, 244, 246, 254, 258, 262, 263, 268, 270, 276, 280, 282, 303,
    304, 311, 312, 313, 315, 316, 317, 322, 323, 325, 327, 328, 329, 333, 337, 341, 343, 344,
    363, 374, 400, 401, 403, 404, 405, 406, 408, 416, 417, 419, 421, 428, 430, 431, 437, 438,
    439, 442, 443, 444, 446, 447,
})
SMG_TEST_SUBJECTS = frozenset(range(36, 41))
SYNTHETIC_TEST_FRACTION = 1 / 3


def check_protocol(protocol: str) -> str:
    if protocol not in PROTOCOLS:
        raise ConfigError(f"unknown split protocol {protocol!r}; known: {', '.join(PROTOCOLS)}")
    return protocol


def make_split(
    clips: Sequence[dict[str, Any]], protocol: str, *, val_fraction: float = 0.1, seed: int = 0
) -> dict[str, list[str]]:
    """Frame_dir lists per split (in clip order). Raises DataError when a needed split is empty."""
    check_protocol(protocol)
    if not 0.0 <= float(val_fraction) < 1.0:
        raise ConfigError(f"val_fraction must be in [0, 1), got {val_fraction}")
    if not clips:
        raise DataError(None, f"protocol {protocol}: there are no clips to split")
    if protocol == "none":
        return {"test": [c["frame_dir"] for c in clips]}
    key = "video_id" if protocol == "imigue-emotion" else "subject_id"
    unit = "video" if key == "video_id" else "subject"
    groups = _group_ids(clips, key, protocol)
    train, test = _partition(sorted(set(groups)), protocol)
    _require(train, "train", protocol, unit, groups)
    _require(test, "test", protocol, unit, groups)
    strata = _video_emotions(clips) if protocol == "imigue-emotion" else None
    val = carve_val(sorted(train), val_fraction, seed, strata=strata, unit=unit, protocol=protocol)
    split: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    for clip, group in zip(clips, groups):
        part = "val" if group in val else "train" if group in train else "test" if group in test else None
        if part is not None:
            split[part].append(clip["frame_dir"])
    return {k: v for k, v in split.items() if v}


def _group_ids(clips: Sequence[dict[str, Any]], key: str, protocol: str) -> list[int]:
    ids = [int(c.get(key, -1)) for c in clips]
    unknown = [c["frame_dir"] for c, i in zip(clips, ids) if i < 0]
    if unknown:
        raise DataError(
            None,
            f"protocol {protocol} needs {key} for every clip, but {len(unknown)} clip(s) have none "
            f"(e.g. {unknown[0]!r}); give a videos.csv or the iMiGUE label table, or use protocol 'none'",
        )
    return ids


def _partition(ids: list[int], protocol: str) -> tuple[set[int], set[int]]:
    if protocol == "imigue-xsub":
        train = {i for i in ids if i in IMIGUE_TRAIN_SUBJECTS}
        return train, set(ids) - train
    if protocol == "imigue-emotion":
        return ({i for i in ids if i in IMIGUE_EMOTION_TRAIN_VIDEOS},
                {i for i in ids if i in IMIGUE_EMOTION_TEST_VIDEOS})
    if protocol == "smg-xsub":
        test = {i for i in ids if i in SMG_TEST_SUBJECTS}
        return set(ids) - test, test
    n_test = max(1, round(len(ids) * SYNTHETIC_TEST_FRACTION)) if len(ids) > 1 else 0
    return set(ids[: len(ids) - n_test]), set(ids[len(ids) - n_test:])


def _require(part: set[int], name: str, protocol: str, unit: str, groups: Iterable[int]) -> None:
    if part:
        return
    present = sorted(set(groups))
    shown = ", ".join(map(str, present[:10])) + (" ..." if len(present) > 10 else "")
    raise DataError(
        None,
        f"protocol {protocol}: the {name} split is empty: none of the {len(present)} {unit}(s) in the data "
        f"({shown}) is a {name} {unit} of this protocol (use protocol 'none' to score data without splitting)",
    )


def _video_emotions(clips: Sequence[dict[str, Any]]) -> dict[int, int]:
    return {int(c["video_id"]): int(c.get("emotion", -1)) for c in clips}


def carve_val(
    train_ids: Sequence[int],
    val_fraction: float,
    seed: int,
    *,
    strata: dict[int, int] | None = None,
    unit: str = "subject",
    protocol: str = "",
) -> set[int]:
    """Pick round(val_fraction * n) (at least 1) whole training subjects/videos for validation.

    Deterministic for a seed. With `strata` (e.g. each video's emotion) the picks are shared
    among strata in proportion to their size, never taking a stratum's last member while
    another choice remains, so training keeps every stratum.
    """
    if val_fraction <= 0:
        return set()
    n_val = max(1, round(val_fraction * len(train_ids)))
    if n_val >= len(train_ids):
        raise DataError(
            None,
            f"protocol {protocol}: val_fraction={val_fraction} would leave no training {unit}s "
            f"(only {len(train_ids)} training {unit}(s)); lower val_fraction or set it to 0",
        )
    rng = np.random.default_rng(seed)
    by_stratum: dict[int, list[int]] = {}
    for i in sorted(train_ids):
        by_stratum.setdefault(strata.get(i, -1) if strata else 0, []).append(i)
    keys = sorted(by_stratum)
    size = {k: len(by_stratum[k]) for k in keys}
    take = {k: min(int(val_fraction * size[k]), size[k] - 1) for k in keys}
    by_remainder = sorted(keys, key=lambda k: (-(val_fraction * size[k] - int(val_fraction * size[k])), k))
    for cap in (1, 0):  # first keep one member per stratum in training, then only if unavoidable
        for k in by_remainder * n_val:
            if sum(take.values()) >= n_val:
                break
            if take[k] < size[k] - cap:
                take[k] += 1
    picked: set[int] = set()
    for k in keys:
        picked.update(int(i) for i in rng.permutation(by_stratum[k])[: take[k]])
    return picked
