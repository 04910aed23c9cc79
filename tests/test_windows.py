"""Sliding windows over untrimmed sequences: where they start, how they are labelled, the split."""

from __future__ import annotations

import numpy as np
import pytest

from microgesture.data.formats.annotations import load_annotations
from microgesture.data.formats.miga import import_miga_to_file
from microgesture.data.formats.sequences import read_sequence, video_sequence
from microgesture.data.synth import generate_dataset
from microgesture.data.windows import BACKGROUND, window_label, window_starts, write_window_annotations


def test_window_starts_cover_every_frame():
    assert window_starts(10, 4, 3).tolist() == [0, 3, 6]
    assert window_starts(11, 4, 3).tolist() == [0, 3, 6, 7]  # one more window ends at the last frame
    assert window_starts(3, 4, 2).tolist() == [0]  # shorter than a window: one short window
    assert window_starts(0, 4, 2).tolist() == []


def test_window_label_by_its_core():
    segs = [(5, 10, 29), (7, 40, 45)]
    bg = 32
    # window [0, 32): core = frames 8..23, 14 of 16 frames in class 5 -> 5
    assert window_label(0, 32, segs, bg) == 5
    # window [20, 52): core 28..43: class 5 covers 2 frames, class 7 covers 4: most is 7 but 4 < 8 -> ambiguous
    assert window_label(20, 32, segs, bg) is None
    # window [40, 72): core 48..63 touches nothing -> background
    assert window_label(40, 32, segs, bg) == bg
    # window [24, 56): core 32..47 holds 6 frames of class 7 (< 8: ambiguous); a core of 0.25 is
    # 36..43, 4 frames of class 7 (>= 4): class 7
    assert window_label(24, 32, segs, bg) is None
    assert window_label(24, 32, segs, bg, core=0.25) == 7


def test_segment_index_labels_as_every_segment_does():
    """Labelling against the segments near a window (training_windows) = against all of them."""
    from microgesture.data.windows import SegmentIndex

    rng = np.random.default_rng(3)
    segs, frame = [], 0
    while frame < 3000:  # overlapping, unsorted, of any length
        n = int(rng.integers(1, 120))
        segs.append((int(rng.integers(5)), frame, frame + n - 1))
        frame += int(rng.integers(-30, 60)) + n // 2
    rng.shuffle(segs)
    index = SegmentIndex(segs)
    for start in window_starts(3100, 32, 5):
        s = int(start)
        near = index.touching(s, s + 31)
        assert len(near) < len(segs) // 4
        for core in (0.25, 0.5, 1.0):
            assert window_label(s, 32, near, 32, core=core) == window_label(s, 32, segs, 32, core=core)
    assert SegmentIndex([]).touching(0, 10) == []


@pytest.fixture(scope="module")
def untrimmed(tmp_path_factory):
    root = tmp_path_factory.mktemp("untrimmed")
    generate_dataset(root / "data", subjects=3, videos_per_subject=1, seed=1, video=False, seconds=8.0)
    return import_miga_to_file(root / "data", root / "ann.pkl", val_fraction=0.2, seed=0), root


def test_training_windows_labels_and_splits(untrimmed):
    data, root = untrimmed
    counts = write_window_annotations(root / "ann.pkl", root / "windows.pkl", length=24, stride=6, core=0.5)
    win = load_annotations(root / "windows.pkl")
    classes = win["meta"]["classes"]
    assert classes[-1] == BACKGROUND and len(classes) == 33
    assert counts["windows"] == len(win["annotations"]) > 0 and counts["background"] > 0
    segments = {}
    for clip in data["annotations"]:
        segments.setdefault(clip["video_id"], []).append((clip["label"], clip["start_frame"], clip["end_frame"]))
    split_of = {n: s for s, names in win["split"].items() for n in names}
    video_split = {c["video_id"]: s for s, names in data["split"].items() for c in data["annotations"]
                   if c["frame_dir"] in names}
    for clip in win["annotations"]:
        assert clip["total_frames"] == 24 or clip["start_frame"] + clip["total_frames"] == clip["end_frame"] + 1
        assert clip["label"] == window_label(clip["start_frame"], 24, segments[clip["video_id"]], 32)
        assert split_of[clip["frame_dir"]] == video_split[clip["video_id"]]
    # the windows' skeleton is the video's own frames
    video = win["videos"][0]
    seq = video_sequence(win, video)
    clip = next(c for c in win["annotations"] if c["video_id"] == video["video_id"])
    s = clip["start_frame"]
    assert np.allclose(clip["keypoint"][0], seq.joints[s:s + 24, :, :2])


def test_read_sequence_converts_layouts(untrimmed):
    data, root = untrimmed
    video = data["videos"][0]
    path = root / "data" / f"{video['video_id']:04d}" / f"{video['video_id']:04d}_light_hand.csv"
    full = read_sequence(path, "miga_csv", "miga35")
    small = read_sequence(path, "miga_csv", "imigue22")
    assert full.num_frames == video["num_frames"] and small.joints.shape[1:] == (22, 3)
    assert np.array_equal(small.joints[:, 0], full.joints[:, 0])  # the nose is the nose


def test_windows_command(untrimmed, capsys):
    from microgesture.cli import main

    _, root = untrimmed
    out = root / "cli_windows.pkl"
    assert main(["online", "windows", str(root / "ann.pkl"), "--out", str(out), "--length", "16", "--stride", "8"]) == 0
    printed = capsys.readouterr().out
    assert "background" in printed and out.is_file()
    assert load_annotations(out)["meta"]["windows"] == {"length": 16, "stride": 8, "core": 0.5, "background": BACKGROUND}
