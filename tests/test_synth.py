import csv
import json

import numpy as np
import pytest

from microgesture.data.classes import NUM_CLASSES, class_index_from_raw
from microgesture.data.layouts import BODY25_LOWER
from microgesture.data.miga import read_labels, read_skeleton
from microgesture.data.synth import generate_dataset
from microgesture.data.validate import validate_path
from microgesture.data.video import video_info
from microgesture.errors import DataError


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth") / "data"
    summary = generate_dataset(out, subjects=3, videos_per_subject=2, seed=5, size=(96, 72), video=True, seconds=15)
    return out, summary


def test_miga_layout_and_contents(small):
    out, summary = small
    folders = sorted(p for p in out.iterdir() if p.is_dir())
    assert [p.name for p in folders] == [f"{v:04d}" for v in range(1, 7)]
    total_clips = 0
    for folder in folders:
        vid = folder.name
        rows = (folder / f"{vid}_light_hand.csv").read_text().splitlines()
        assert all(len(r.split(",")) == 1 + 35 * 3 for r in rows)
        frames, joints = read_skeleton(folder / f"{vid}_light_hand.csv")
        assert np.array_equal(frames, np.arange(len(frames)))  # contiguous from 0
        assert np.all(joints[:, list(BODY25_LOWER)] == 0)  # lower body: zero coordinates and confidence
        detected = joints[..., 2] > 0
        assert np.all(joints[..., :2][detected] >= 0)
        assert np.all(joints[:, :, 0][detected] < 96) and np.all(joints[:, :, 1][detected] < 72)
        labels = read_labels(folder / f"{vid}_label.csv")
        assert labels and all(0 <= start <= end < len(frames) for _, start, end in labels)
        assert all(25 <= end - start + 1 <= 4 * 25 + 1 for _, start, end in labels)  # 1-4 s instances
        total_clips += len(labels)
        info = video_info(folder / f"{vid}.mp4")
        assert (info.num_frames, info.width, info.height, round(info.fps)) == (len(frames), 96, 72, 25)
    assert total_clips == summary.clips
    with open(out / "videos.csv", newline="") as fh:
        videos = list(csv.DictReader(fh))
    assert [int(v["video_id"]) for v in videos] == list(range(1, 7))
    assert {v["emotion"] for v in videos} == {"win", "lose"}
    assert sorted({int(v["subject_id"]) for v in videos}) == [1, 2, 3]
    meta = json.loads((out / "synth.json").read_text())
    assert (meta["width"], meta["height"], meta["fps"], meta["seed"]) == (96, 72, 25, 5)


def test_generated_folder_validates_clean(small):
    out, _ = small
    assert validate_path(out) == []


def test_same_seed_same_bytes(tmp_path):
    def files(root):
        return {p.relative_to(root): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}

    kwargs = dict(subjects=2, videos_per_subject=1, size=(64, 48), video=True, seconds=8)
    a = files(generate_dataset(tmp_path / "a", seed=1, **kwargs).out_dir)
    b = files(generate_dataset(tmp_path / "b", seed=1, **kwargs).out_dir)
    c = files(generate_dataset(tmp_path / "c", seed=2, **kwargs).out_dir)
    assert any(name.suffix == ".mp4" for name in a)
    assert a == b
    assert a.keys() == c.keys() and a != c


@pytest.fixture(scope="module")
def default_skeletons(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth_default") / "d"
    return out, generate_dataset(out, seed=0, video=False)  # the default dataset, skeletons only


def test_every_class_with_a_long_tail(default_skeletons):
    out, summary = default_skeletons
    counts = np.array(summary.clips_per_class)
    assert len(counts) == NUM_CLASSES and counts.min() >= 1
    assert counts.argmax() == NUM_CLASSES - 1  # illustrative is the most frequent, as in iMiGUE
    assert counts.max() >= 5 * counts.min()
    seen = np.zeros(NUM_CLASSES, int)
    for label_file in out.glob("*/*_label.csv"):
        for row in label_file.read_text().split():
            seen[class_index_from_raw(int(row.split(",")[0]))] += 1
    assert np.array_equal(seen, counts)


def test_subjects_differ(default_skeletons):
    """Placement, body size and detector dropout vary by subject: a cross-subject split is a shift."""
    out, _ = default_skeletons
    with open(out / "videos.csv", newline="") as fh:
        first_video = {}
        for row in csv.DictReader(fh):
            first_video.setdefault(int(row["subject_id"]), int(row["video_id"]))
    neck_x, width, dropout = [], [], []
    upper = [0, 1, 2, 3, 4, 5, 6, 7, *range(25, 35)]
    for vid in first_video.values():
        _, joints = read_skeleton(out / f"{vid:04d}" / f"{vid:04d}_light_hand.csv")
        ok = (joints[:, 1, 2] > 0) & (joints[:, 2, 2] > 0) & (joints[:, 5, 2] > 0)
        neck_x.append(np.median(joints[ok, 1, 0]))
        width.append(np.median(np.abs(joints[ok, 2, 0] - joints[ok, 5, 0])))
        dropout.append((joints[:, upper, 2] == 0).mean())
    assert len(first_video) == 12
    assert max(neck_x) - min(neck_x) > 10  # pixels, in a 192-pixel-wide frame
    assert max(width) > 1.1 * min(width)
    assert max(dropout) > 3 * min(dropout)


def test_refuses_a_non_empty_folder(tmp_path):
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "keep.txt").write_text("mine")
    with pytest.raises(DataError, match="busy"):
        generate_dataset(tmp_path / "busy", subjects=2, videos_per_subject=1, video=False, seconds=5)
    assert (tmp_path / "busy" / "keep.txt").read_text() == "mine"
