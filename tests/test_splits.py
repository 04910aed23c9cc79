"""Split protocols: subject/video disjointness, determinism, and clear failures."""

from __future__ import annotations

import pytest

from microgesture.domain import protocols as splits
from microgesture.errors import ConfigError, DataError


def clips_for(groups: list[tuple[int, int, int]], per: int = 3) -> list[dict]:
    """(video_id, subject_id, emotion) -> `per` clips each."""
    return [
        {"frame_dir": f"{vid:04d}_{k}", "video_id": vid, "subject_id": subject, "emotion": emotion}
        for vid, subject, emotion in groups
        for k in range(per)
    ]


def by_name(clips):
    return {c["frame_dir"]: c for c in clips}


def values_of(split, clips, part, key):
    lookup = by_name(clips)
    return {lookup[n][key] for n in split.get(part, [])}


def test_protocol_constants():
    assert len(splits.IMIGUE_TRAIN_SUBJECTS) == 37
    assert len(splits.IMIGUE_EMOTION_TRAIN_VIDEOS) == 102
    assert len(splits.IMIGUE_EMOTION_TEST_VIDEOS) == 100
    assert splits.IMIGUE_EMOTION_TRAIN_VIDEOS.isdisjoint(splits.IMIGUE_EMOTION_TEST_VIDEOS)


def test_synthetic_xsub_is_subject_disjoint_and_deterministic():
    clips = clips_for([(v, v, v % 2) for v in range(1, 13)])
    split = splits.make_split(clips, "synthetic-xsub", val_fraction=0.25, seed=3)
    subjects = {p: values_of(split, clips, p, "subject_id") for p in ("train", "val", "test")}
    assert subjects["test"] == {9, 10, 11, 12}  # the last third by id
    assert len(subjects["val"]) == 2 and subjects["val"] <= set(range(1, 9))
    assert not (subjects["train"] & subjects["val"]) and not (subjects["train"] & subjects["test"])
    assert not (subjects["val"] & subjects["test"])
    assert sum(len(v) for v in split.values()) == len(clips)
    assert split == splits.make_split(clips, "synthetic-xsub", val_fraction=0.25, seed=3)
    others = [splits.make_split(clips, "synthetic-xsub", val_fraction=0.25, seed=s)["val"] for s in range(6)]
    assert len({tuple(v) for v in others}) > 1  # the seed matters
    # clips keep their order within a split
    order = [c["frame_dir"] for c in clips]
    assert split["train"] == sorted(split["train"], key=order.index)


def test_imigue_xsub_uses_the_official_training_subjects():
    clips = clips_for([(10, 2, 1), (11, 4, 1), (12, 5, 0), (13, 6, 1), (14, 9, 0), (15, 1, 1), (16, 3, 0), (17, 70, 1)])
    split = splits.make_split(clips, "imigue-xsub", val_fraction=0.2, seed=0)
    assert values_of(split, clips, "test", "subject_id") == {1, 3, 70}
    val = values_of(split, clips, "val", "subject_id")
    assert len(val) == 1 and val <= {2, 4, 5, 6, 9}
    assert values_of(split, clips, "train", "subject_id") == {2, 4, 5, 6, 9} - val


def test_imigue_emotion_is_video_level_and_keeps_test_out():
    train_videos = [(1, 1, 1), (7, 2, 0), (8, 3, 1), (11, 4, 0), (26, 5, 1), (27, 6, 0)]
    test_videos = [(9, 7, 1), (10, 8, 0)]
    other = [(2, 9, 1)]  # in neither official list
    clips = clips_for(train_videos + test_videos + other, per=2)
    split = splits.make_split(clips, "imigue-emotion", val_fraction=0.34, seed=5)
    assert values_of(split, clips, "test", "video_id") == {9, 10}
    val = values_of(split, clips, "val", "video_id")
    train = values_of(split, clips, "train", "video_id")
    assert val | train == {1, 7, 8, 11, 26, 27} and not val & train and len(val) == 2
    # stratified by emotion: val and train each keep both emotions
    assert values_of(split, clips, "val", "emotion") == {0, 1}
    assert values_of(split, clips, "train", "emotion") == {0, 1}
    assert not any(n.startswith("0002_") for part in split.values() for n in part)


def test_val_never_takes_a_small_stratum_away_from_training():
    groups = [(v, v, 1) for v in (1, 7, 8, 11, 26, 27, 46, 47)] + [(48, 48, 0), (53, 53, 0)] + [(9, 90, 1)]
    clips = clips_for(groups, per=1)
    for seed in range(5):
        split = splits.make_split(clips, "imigue-emotion", val_fraction=0.3, seed=seed)
        assert 0 in values_of(split, clips, "train", "emotion")


def test_none_puts_everything_in_test():
    clips = clips_for([(1, -1, -1), (2, -1, -1)])
    assert splits.make_split(clips, "none") == {"test": [c["frame_dir"] for c in clips]}


def test_val_fraction_zero_has_no_val_key():
    clips = clips_for([(v, v, 0) for v in range(1, 7)])
    split = splits.make_split(clips, "synthetic-xsub", val_fraction=0.0)
    assert set(split) == {"train", "test"}


def test_unknown_protocol_and_bad_fraction():
    clips = clips_for([(1, 1, 0)])
    with pytest.raises(ConfigError, match="unknown split protocol 'xsub'"):
        splits.make_split(clips, "xsub")
    with pytest.raises(ConfigError, match="val_fraction"):
        splits.make_split(clips, "none", val_fraction=1.0)


@pytest.mark.parametrize(
    "protocol, groups, expected",
    [
        ("imigue-xsub", [(1, 1, 0), (2, 3, 0)], "the train split is empty"),
        ("imigue-xsub", [(1, 2, 0), (2, 4, 0)], "the test split is empty"),
        ("imigue-emotion", [(9, 1, 0), (10, 2, 0)], "the train split is empty"),
        ("synthetic-xsub", [(1, 1, 0), (2, 1, 0)], "the test split is empty"),
        ("synthetic-xsub", [(1, 1, 0), (2, -1, 0)], "needs subject_id for every clip"),
        ("synthetic-xsub", [(1, 1, 0), (2, 2, 0)], "would leave no training subjects"),
    ],
)
def test_empty_splits_fail_and_say_which(protocol, groups, expected):
    with pytest.raises(DataError, match=expected):
        splits.make_split(clips_for(groups), protocol, val_fraction=0.5)


def test_no_clips():
    with pytest.raises(DataError, match="no clips"):
        splits.make_split([], "none")
