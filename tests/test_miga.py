"""MiGA per-video layout: readers, the importer, and its error paths."""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import numpy as np
import pytest

from microgesture.data.formats import miga
from microgesture.data.formats.annotations import load_annotations, resolve_video_path
from microgesture.domain.layouts import IMIGUE22, IMIGUE22_FROM_MIGA35, MIGA35
from microgesture.errors import ConfigError, DataError


def _joints(n: int, seed: int) -> np.ndarray:
    """Values that survive write_skeleton's 6 significant digits exactly."""
    rng = np.random.default_rng(seed)
    joints = np.empty((n, MIGA35.num_joints, 3))
    joints[..., 0] = np.round(rng.uniform(1, 600, (n, MIGA35.num_joints)), 2)
    joints[..., 1] = np.round(rng.uniform(1, 400, (n, MIGA35.num_joints)), 2)
    joints[..., 2] = np.round(rng.uniform(0.1, 1, (n, MIGA35.num_joints)), 3)
    return joints


def make_video(root: Path, vid: int, labels, n_frames: int = 30, first_frame: int = 0):
    frames = np.arange(first_frame, first_frame + n_frames)
    joints = _joints(n_frames, vid)
    miga.write_skeleton(miga.skeleton_path(root, vid), frames, joints)
    miga.write_labels(miga.label_path(root, vid), labels)
    return frames, joints


def make_dataset(root: Path) -> dict[int, np.ndarray]:
    out = {}
    for vid, subject in ((1, 1), (2, 2), (3, 3), (4, 4)):
        out[vid] = make_video(root, vid, [(4, 2, 6), (99, 10, 19)])[1]
    (root / "videos.csv").write_text(
        "video_id,subject_id,emotion\n1,1,win\n2,2,lose\n3,3,win\n4,4,lose\n", encoding="utf-8"
    )
    return out


# --- readers ------------------------------------------------------------------------------


def test_read_labels_maps_codes_to_indices(tmp_path):
    path = tmp_path / "0001_label.csv"
    miga.write_labels(path, [(4, 168, 257), (99, 300, 310), (1, 0, 0)])
    assert miga.read_labels(path) == [(3, 168, 257), (31, 300, 310), (0, 0, 0)]
    rows = miga.read_label_rows(path)
    assert [(r.row, r.line, r.raw) for r in rows] == [(0, 1, 4), (1, 2, 99), (2, 3, 1)]


def test_read_skeleton_round_trip(tmp_path):
    path = tmp_path / "0001_light_hand.csv"
    frames = np.array([5, 6, 9])
    joints = _joints(3, 0)
    miga.write_skeleton(path, frames, joints)
    got_frames, got = miga.read_skeleton(path)
    assert got_frames.tolist() == [5, 6, 9]
    assert got.shape == (3, 35, 3)
    np.testing.assert_array_equal(got, joints)


@pytest.mark.parametrize(
    "text, where, expected",
    [
        ("4,1,5\n4,1\n", "line 2", "2 columns, expected 3"),
        ("4,a,5\n", "line 1, start_frame", "'a' is not an integer"),
        ("4,1.5,5\n", "line 1, start_frame", "not an integer"),
        ("0,1,5\n", "line 1, class", "not an iMiGUE class"),
        ("32,1,5\n", "line 1, class", "not an iMiGUE class"),
        ("4,9,5\n", "line 1", "start_frame <= end_frame"),
        ("4,-1,5\n", "line 1", "start_frame <= end_frame"),
    ],
)
def test_read_labels_errors_name_file_and_line(tmp_path, text, where, expected):
    path = tmp_path / "0007_label.csv"
    path.write_text(text)
    with pytest.raises(DataError) as info:
        miga.read_labels(path)
    assert info.value.where == where
    assert expected in str(info.value)
    assert str(path) in str(info.value)


def test_read_labels_missing_file(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        miga.read_labels(tmp_path / "0001_label.csv")


def _skeleton_text(rows: list[list[str]]) -> str:
    return "".join(",".join(r) + "\n" for r in rows)


def _row(frame, joints: int = 35, value: str = "1.5") -> list[str]:
    return [str(frame)] + [value, value, "0.5"] * joints


@pytest.mark.parametrize(
    "rows, where, expected",
    [
        ([_row(0), _row(1, joints=34)], "line 2", "103 columns, expected 106"),
        ([_row(0), _row(1, joints=34)], "line 2", "this row has 34 joints"),
        ([_row(0)[1:]], "line 1", "without the frame-index column"),
        ([_row(0), _row(1)[:10] + ["abc"] + _row(1)[11:]], "line 2, joint 3 (r_elbow) x", "'abc' is not a number"),
        ([_row(0), _row(2), _row(2)], "line 3, frame index", "must increase strictly"),
        ([_row(0), _row(-1)], "line 2, frame index", "not a non-negative integer"),
        ([_row(0), _row(1.5)], "line 2, frame index", "not a non-negative integer"),
        ([_row(0, value="nan")], "line 1, joint 0 (nose) x", "not a finite number"),
        ([_row(0)[:3] + ["inf"] + _row(0)[4:]], "line 1, joint 0 (nose) confidence", "not a finite number"),
        ([_row(0)[:3] + ["350"] + _row(0)[4:]], "line 1, joint 0 (nose) confidence", "are the columns shifted"),
    ],
)
def test_read_skeleton_errors_name_line_and_field(tmp_path, rows, where, expected):
    path = tmp_path / "0003_light_hand.csv"
    path.write_text(_skeleton_text(rows))
    with pytest.raises(DataError) as info:
        miga.read_skeleton(path)
    assert info.value.where == where
    assert expected in str(info.value)


def test_read_skeleton_empty_file(tmp_path):
    path = tmp_path / "0003_light_hand.csv"
    path.write_text("\n")
    with pytest.raises(DataError, match="no rows"):
        miga.read_skeleton(path)


def test_parse_skeleton_collects_every_problem(tmp_path):
    path = tmp_path / "0003_light_hand.csv"
    path.write_text(_skeleton_text([_row(0), _row(1, joints=22), _row(2, joints=22), _row(0), _row(3, value="nan")]))
    frames, joints, issues = miga.parse_skeleton(path)
    text = "\n".join(f"{w}: {m}" for w, m in issues)
    assert "line 2: 67 columns" in text and "1 more line(s) with 67 columns" in text
    assert "line 4, frame index: 0 follows 0" in text
    assert "line 5, joint 0 (nose) x: nan is not a finite number" in text
    assert frames.tolist() == [0, 0, 3] and joints.shape == (3, 35, 3)


@pytest.mark.parametrize("variant", ["plain", "crlf", "bom", "blank lines"])
def test_skeleton_fast_path_reads_what_the_line_reader_reads(tmp_path, monkeypatch, variant):
    """A clean file goes through numpy's parser (the import's speed at iMiGUE's size); same arrays."""
    path = tmp_path / "0003_light_hand.csv"
    rng = np.random.default_rng(0)
    joints = rng.uniform(0, 1280, (40, 35, 3))
    joints[..., 2] = rng.uniform(0, 1, (40, 35))
    joints[::7, 3] = 0.0  # missed joints
    miga.write_skeleton(path, np.arange(3, 43) * 2, joints)
    text = path.read_text()
    text = {"plain": text, "crlf": text.replace("\n", "\r\n"), "bom": "\ufeff" + text,
            "blank lines": text.replace("\n", "\n\n", 3)}[variant]
    path.write_bytes(text.encode("utf-8"))
    assert miga._clean_skeleton(path) is not None
    fast = miga.parse_skeleton(path)
    monkeypatch.setattr(miga, "_clean_skeleton", lambda p: None)
    slow = miga.parse_skeleton(path)
    assert fast[2] == slow[2] == []
    np.testing.assert_array_equal(fast[0], slow[0])
    np.testing.assert_array_equal(fast[1], slow[1])
    assert fast[0].dtype == slow[0].dtype and fast[1].dtype == slow[1].dtype


# --- importer -----------------------------------------------------------------------------


def test_import_synthetic_folder(tmp_path):
    src = tmp_path / "src"
    joints = make_dataset(src)
    clips, split, meta, _ = miga.import_miga(
        src, protocol="synthetic-xsub", val_fraction=0.34, seed=1, img_shape=(480, 640)
    )
    assert [c["frame_dir"] for c in clips] == [f"000{v}_{k}" for v in range(1, 5) for k in range(2)]
    first = clips[0]
    assert first["label"] == 3 and first["total_frames"] == 5 and first["start_frame"] == 2 and first["end_frame"] == 6
    assert first["keypoint"].shape == (1, 5, 35, 2) and first["keypoint"].dtype == np.float32
    np.testing.assert_array_equal(first["keypoint"][0], joints[1][2:7, :, :2].astype(np.float32))
    np.testing.assert_array_equal(first["keypoint_score"][0], joints[1][2:7, :, 2].astype(np.float32))
    assert clips[1]["label"] == 31
    assert [(c["subject_id"], c["emotion"]) for c in clips[::2]] == [(1, 1), (2, 0), (3, 1), (4, 0)]
    assert first["img_shape"] == (480, 640) and first["layout"] == "miga35"
    assert split["test"] == ["0004_0", "0004_1"]  # the last third of 4 subjects, rounded: 1
    assert len(split["val"]) == 2 and set(split["train"]).isdisjoint(split["val"])
    assert meta["protocol"] == "synthetic-xsub" and meta["img_shape_sources"] == {"argument": 4}


def test_import_matches_frames_by_index_not_row(tmp_path):
    frames, joints = make_video(tmp_path, 5, [(2, 103, 106)], n_frames=10, first_frame=100)
    (clip,), _, _, _ = miga.import_miga(tmp_path, protocol="none")
    np.testing.assert_array_equal(clip["keypoint"][0], joints[3:7, :, :2].astype(np.float32))
    assert clip["start_frame"] == 103 and clip["total_frames"] == 4


def test_import_zero_fills_frames_missing_inside_the_skeleton(tmp_path):
    frames = np.array([0, 1, 2, 5, 6])
    joints = _joints(5, 3)
    miga.write_skeleton(miga.skeleton_path(tmp_path, 8), frames, joints)
    miga.write_labels(miga.label_path(tmp_path, 8), [(5, 1, 6)])
    (clip,), _, meta, _ = miga.import_miga(tmp_path, protocol="none")
    assert clip["total_frames"] == 6 and meta["zero_filled_frames"] == 2
    assert not clip["keypoint_score"][0, 2:4].any()  # frames 3 and 4
    np.testing.assert_array_equal(clip["keypoint"][0, 4], joints[3, :, :2].astype(np.float32))


def test_import_single_video_folder(tmp_path):
    make_video(tmp_path, 12, [(7, 0, 3)])
    clips, _, _, _ = miga.import_miga(tmp_path / "0012", protocol="none")
    assert [c["frame_dir"] for c in clips] == ["0012_0"]


def test_out_of_range_row_is_an_error_or_a_reported_skip(tmp_path):
    make_video(tmp_path, 2, [(4, 0, 5), (4, 25, 40)], n_frames=30)
    with pytest.raises(DataError) as info:
        miga.import_miga(tmp_path, protocol="none")
    assert info.value.where == "line 2" and "outside the skeleton's frames 0..29" in str(info.value)
    with pytest.warns(UserWarning, match="0002_1"):
        clips, _, meta, _ = miga.import_miga(tmp_path, protocol="none", skip_unusable=True)
    assert [c["frame_dir"] for c in clips] == ["0002_0"]
    assert len(meta["skipped"]) == 1 and "0002_1" in meta["skipped"][0]


def test_clip_without_any_detection(tmp_path):
    joints = _joints(20, 0)
    joints[5:10] = 0
    miga.write_skeleton(miga.skeleton_path(tmp_path, 3), np.arange(20), joints)
    miga.write_labels(miga.label_path(tmp_path, 3), [(4, 5, 9), (4, 0, 9)])
    with pytest.raises(DataError, match="no person detected"):
        miga.import_miga(tmp_path, protocol="none")
    with pytest.warns(UserWarning, match="0003_0"):
        clips, _, _, _ = miga.import_miga(tmp_path, protocol="none", skip_unusable=True)
    assert [c["frame_dir"] for c in clips] == ["0003_1"]


def test_missing_files_and_folders(tmp_path):
    with pytest.raises(DataError, match="not a folder"):
        miga.import_miga(tmp_path / "nope", protocol="none")
    with pytest.raises(DataError, match="no video folders"):
        miga.import_miga(tmp_path, protocol="none")
    make_video(tmp_path, 1, [(4, 0, 3)])
    miga.skeleton_path(tmp_path, 1).unlink()
    with pytest.raises(DataError, match="0001_light_hand.csv: file not found"):
        miga.import_miga(tmp_path, protocol="none")


def test_img_shape_sources(tmp_path):
    make_video(tmp_path, 1, [(4, 0, 3)])
    (clip,), _, meta, _ = miga.import_miga(tmp_path, protocol="none")
    assert clip["img_shape"] == (720, 1280) and meta["img_shape_sources"] == {"default": 1}
    assert "assumed iMiGUE" in meta["notes"][0]
    (tmp_path / "synth.json").write_text(json.dumps({"width": 320, "height": 240, "fps": 25}))
    (clip,), _, meta, _ = miga.import_miga(tmp_path, protocol="none")
    assert clip["img_shape"] == (240, 320) and meta["notes"] == []
    (clip,), _, _, _ = miga.import_miga(tmp_path, protocol="none", img_shape=(100, 200))
    assert clip["img_shape"] == (100, 200)
    (tmp_path / "synth.json").write_text("{\"width\": 320}")
    with pytest.raises(DataError, match="synth.json"):
        miga.import_miga(tmp_path, protocol="none")


def test_layout_conversion(tmp_path):
    _, joints = make_video(tmp_path, 1, [(4, 0, 3)])
    (clip,), _, _, _ = miga.import_miga(tmp_path, protocol="none", layout="imigue22")
    assert clip["keypoint"].shape == (1, 4, 22, 2) and clip["layout"] == "imigue22"
    np.testing.assert_array_equal(
        clip["keypoint"][0], joints[0:4, list(IMIGUE22_FROM_MIGA35), :2].astype(np.float32)
    )
    with pytest.raises(ConfigError, match="unknown joint layout"):
        miga.import_miga(tmp_path, protocol="none", layout="bogus")
    (coco,), _, _, _ = miga.import_miga(tmp_path, protocol="none", layout="coco17")  # a declared conversion
    assert coco["layout"] == "coco17" and coco["keypoint"].shape == (1, 4, 17, 2)
    np.testing.assert_array_equal(coco["keypoint"][0, :, 5], joints[0:4, 5, :2].astype(np.float32))  # l_shoulder
    with pytest.raises(ConfigError, match="cannot be made"):
        miga.import_miga(tmp_path, protocol="none", layout="openpose67")


def test_default_protocol(tmp_path):
    make_dataset(tmp_path)
    _, split, meta, _ = miga.import_miga(tmp_path, val_fraction=0)
    assert meta["protocol"] == "imigue-xsub" and split["test"] == ["0001_0", "0001_1", "0003_0", "0003_1"]
    (tmp_path / "synth.json").write_text(json.dumps({"width": 64, "height": 48}))
    _, split, meta, _ = miga.import_miga(tmp_path, val_fraction=0)
    assert meta["protocol"] == "synthetic-xsub" and split["test"] == ["0004_0", "0004_1"]


def test_unknown_protocol_fails_first(tmp_path):
    with pytest.raises(ConfigError, match="unknown split protocol"):
        miga.import_miga(tmp_path / "nothing-here", protocol="xsub")


def test_video_path_relative_to_output(tmp_path):
    src = tmp_path / "data"
    make_video(src, 1, [(4, 0, 3)])
    (miga.rgb_path(src, 1)).write_bytes(b"")  # presence is all that matters with img_shape given
    out = tmp_path / "ann" / "train.pkl"
    data = miga.import_miga_to_file(src, out, protocol="none", img_shape=(720, 1280))
    assert data["meta"]["path"] == str(out) and data["split"] == {"test": ["0001_0"]}
    clips = data["annotations"]
    assert clips[0]["video_path"] == os.path.join("..", "data", "0001", "0001.mp4")
    data = load_annotations(out)
    assert resolve_video_path(data, data["annotations"][0]).resolve() == miga.rgb_path(src, 1).resolve()


def test_subjects_from_label_table_and_conflicts(tmp_path):
    make_video(tmp_path, 7, [(4, 0, 3)])
    table = tmp_path / "labels.csv"
    table.write_text(
        "video_id,label_id,start_time,start_frame,end_time,end_frame,class,subject_id,subject_gender,"
        "subject_nationality,win_or_lose\n7,1,0.0,0,0.1,3,4,31,F,X,Lose\n"
    )
    (clip,), _, _, _ = miga.import_miga(tmp_path, protocol="none", labels_table=table)
    assert (clip["subject_id"], clip["emotion"]) == (31, 0)
    (tmp_path / "videos.csv").write_text("video_id,subject_id,emotion\n7,31,win\n")
    with pytest.raises(DataError, match="emotion 1 disagrees with 0"):
        miga.import_miga(tmp_path, protocol="none", labels_table=table)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("subject_id,emotion\n1,win\n", "expected a header with video_id"),
        ("video_id,subject_id,emotion\n1,2,happy\n", "line 2, emotion"),
        ("video_id,subject_id,emotion\nx,2,win\n", "line 2, video_id"),
        ("video_id,subject_id,emotion\n1,2,win\n1,2,win\n", "listed twice"),
    ],
)
def test_videos_csv_errors(tmp_path, text, expected):
    path = tmp_path / "videos.csv"
    path.write_text(text)
    with pytest.raises(DataError, match=expected):
        miga.read_videos_csv(path)


def test_videos_csv_unknown_values(tmp_path):
    path = tmp_path / "videos.csv"
    path.write_text("video_id,subject_id,emotion\n1,,\n2,5,-1\n3,6,Positive\n")
    assert miga.read_videos_csv(path) == {1: (-1, -1), 2: (5, -1), 3: (6, 1)}


def test_failed_import_leaves_no_file_and_keeps_the_old_one(tmp_path):
    good, bad = tmp_path / "good", tmp_path / "bad"
    make_dataset(good)
    make_video(bad, 1, [(4, 0, 3), (4, 0, 100)])
    out = tmp_path / "out" / "ann.pkl"
    with pytest.raises(DataError):
        miga.import_miga_to_file(bad, out, protocol="none")
    assert not out.exists()
    miga.import_miga_to_file(good, out, protocol="synthetic-xsub")
    before = out.read_bytes()
    with pytest.raises(DataError):
        miga.import_miga_to_file(bad, out, protocol="none")
    with pytest.raises(DataError, match="test split is empty"):
        miga.import_miga_to_file(good, out, protocol="imigue-emotion")  # videos 1..4: none is a test video
    assert out.read_bytes() == before
    assert sorted(p.name for p in out.parent.iterdir()) == ["ann.pkl"]  # no temp files left


# --- real sample ----------------------------------------------------------------------------


def test_real_miga_sample(shared_data):
    root = shared_data / "imigue" / "miga_layout"
    frames, joints = miga.read_skeleton(root / "0298" / "0298_light_hand.csv")
    assert frames.tolist() == list(range(300)) and joints.shape == (300, 35, 3)
    assert miga.read_labels(root / "0298" / "0298_label.csv") == [(3, 168, 257)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing is skipped here
        clips, split, meta, _ = miga.import_miga(
            root, protocol="none", labels_table=shared_data / "imigue" / "labels_video298.csv"
        )
    (clip,) = clips
    assert clip["frame_dir"] == "0298_0" and clip["label"] == 3 and clip["total_frames"] == 90
    assert (clip["start_frame"], clip["end_frame"]) == (168, 257)
    assert (clip["subject_id"], clip["emotion"], clip["video_id"]) == (22, 1, 298)
    assert split == {"test": ["0298_0"]}
    # line 169 of the CSV is frame 168: nose 415.878,210.104,0.840858; right thumb tip 379.576,327.367,0.0872013
    np.testing.assert_array_equal(clip["keypoint"][0, 0, 0], np.float32([415.878, 210.104]))
    assert clip["keypoint_score"][0, 0, 0] == np.float32(0.840858)
    np.testing.assert_array_equal(clip["keypoint"][0, 0, 25], np.float32([379.576, 327.367]))
    assert clip["keypoint_score"][0, 0, 25] == np.float32(0.0872013)
