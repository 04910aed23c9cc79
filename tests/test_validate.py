"""validate_path: one test per kind of problem, and clean data gives an empty list."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from microgesture.data.formats import miga
from microgesture.data.formats import validate as validate_module
from microgesture.data.formats.validate import Problem, validate_path
from microgesture.data.video import VideoInfo


def fake_info(frames: int, height: int, width: int):
    return lambda path: VideoInfo(frames, 25.0, width, height)
from microgesture.errors import DataError


def make_video(root, vid, labels, n_frames=20, frames=None, joints=None):
    frames = np.arange(n_frames) if frames is None else np.asarray(frames)
    if joints is None:
        rng = np.random.default_rng(vid)
        joints = np.round(rng.uniform(1, 300, (len(frames), 35, 3)), 2)
        joints[..., 2] = 0.5
    miga.write_skeleton(miga.skeleton_path(root, vid), frames, joints)
    miga.write_labels(miga.label_path(root, vid), labels)


def texts(problems):
    return [str(p) for p in problems]


def test_clean_folder_has_no_problems(tmp_path):
    make_video(tmp_path, 1, [(4, 0, 5), (99, 6, 19)])
    make_video(tmp_path, 2, [(1, 3, 4)])
    assert validate_path(tmp_path) == []
    assert validate_path(tmp_path / "0001") == []
    assert validate_path(miga.skeleton_path(tmp_path, 1)) == []


def test_problem_str():
    assert str(Problem("a.csv", "line 3", "bad")) == "a.csv: line 3: bad"
    assert str(Problem("a.csv", "", "bad")) == "a.csv: bad"


def test_missing_things(tmp_path):
    assert texts(validate_path(tmp_path / "nope")) == [f"{tmp_path / 'nope'}: not found"]
    assert "empty folder: expected a MiGA-layout folder" in texts(validate_path(tmp_path))[0]
    (tmp_path / "notes").mkdir()
    assert "no video folders" in texts(validate_path(tmp_path))[0]
    (tmp_path / "notes").rmdir()
    make_video(tmp_path, 1, [(4, 0, 5)])
    miga.label_path(tmp_path, 1).unlink()
    (problem,) = validate_path(tmp_path)
    assert problem.file.endswith("0001_label.csv") and problem.message == "file not found"
    (tmp_path / "0002").mkdir()
    found = texts(validate_path(tmp_path))
    assert len(found) == 3 and sum("0002" in t and "file not found" in t for t in found) == 2


def test_malformed_label_rows_and_unknown_classes(tmp_path):
    make_video(tmp_path, 1, [(4, 0, 5)])
    miga.label_path(tmp_path, 1).write_text("4,0,5\n4,0\nx,1,2\n50,1,2\n4,8,3\n")
    problems = validate_path(tmp_path)
    assert [p.where for p in problems] == ["line 2", "line 3, class", "line 4, class", "line 5"]
    assert "2 columns" in problems[0].message and "not an integer" in problems[1].message
    assert "not an iMiGUE class" in problems[2].message and "start_frame <= end_frame" in problems[3].message


def test_wrong_joint_count_and_non_numeric(tmp_path):
    make_video(tmp_path, 1, [(4, 0, 5)])
    path = miga.skeleton_path(tmp_path, 1)
    lines = path.read_text().splitlines()
    lines[3] = ",".join(lines[3].split(",")[:-3])  # 34 joints
    parts = lines[5].split(",")
    parts[2] = "n/a"
    lines[5] = ",".join(parts)
    path.write_text("\n".join(lines) + "\n")
    problems = validate_path(tmp_path)
    assert [(p.where, p.file == str(path)) for p in problems] == [("line 4", True), ("line 6, joint 0 (nose) y", True)]
    assert "34 joints" in problems[0].message and "'n/a' is not a number" in problems[1].message


def test_frames_not_increasing(tmp_path):
    make_video(tmp_path, 1, [(4, 0, 2)], frames=[0, 1, 2, 2, 4, 3])
    problems = validate_path(tmp_path)
    assert [p.where for p in problems] == ["line 4, frame index", "line 6, frame index"]


def test_nan_and_inf(tmp_path):
    joints = np.full((10, 35, 3), 0.5)
    joints[4, 7, 1] = np.nan
    joints[5, 0, 2] = np.inf
    make_video(tmp_path, 1, [(4, 0, 3)], n_frames=10, joints=joints)
    problems = validate_path(tmp_path)
    assert [p.where for p in problems] == ["line 5, joint 7 (l_wrist) y", "line 6, joint 0 (nose) confidence"]
    assert all("not a finite number" in p.message for p in problems)


def test_label_ranges_outside_or_with_gaps(tmp_path):
    frames = [0, 1, 2, 3, 4, 5, 8, 9, 12, 13, 14, 15, 16, 17]
    make_video(tmp_path, 1, [(4, 0, 5), (4, 15, 25), (4, 8, 12)], frames=frames)
    problems = validate_path(tmp_path)
    assert [p.where for p in problems] == ["line 2", "line 3"]
    assert "outside the skeleton's frames 0..17" in problems[0].message
    assert "2 of the 5 frames 8..12 have no row" in problems[1].message


def test_all_zero_clip(tmp_path):
    joints = np.full((10, 35, 3), 0.5)
    joints[2:6] = 0
    make_video(tmp_path, 1, [(4, 2, 5), (4, 0, 9)], n_frames=10, joints=joints)
    (overlap,), (problem,) = ([p for p in validate_path(tmp_path) if p.warning == w] for w in (True, False))
    assert problem.where == "line 1" and "every joint is zero" in problem.message and not problem.warning
    assert overlap.warning and overlap.where == "line 2" and "overlaps line 1" in overlap.message


def test_skeleton_rows_vs_video_frames(tmp_path, monkeypatch):
    make_video(tmp_path, 1, [(4, 0, 5)], n_frames=20)
    miga.rgb_path(tmp_path, 1).write_bytes(b"")
    monkeypatch.setattr(validate_module, "video_info", fake_info(20, 720, 1280))
    assert validate_path(tmp_path) == []
    monkeypatch.setattr(validate_module, "video_info", fake_info(25, 720, 1280))
    (problem,) = validate_path(tmp_path)
    assert problem.file.endswith("0001_light_hand.csv")
    assert "20 rows, but the video 0001.mp4 has 25 frames" in problem.message

    def broken(path):
        raise DataError(path, "cannot open video")

    monkeypatch.setattr(validate_module, "video_info", broken)
    (problem,) = validate_path(tmp_path)
    assert problem.file.endswith("0001.mp4") and problem.message == "cannot open video"


# --- annotation pickles -----------------------------------------------------------------------


def _annotations(tmp_path, **changes):
    make_video(tmp_path / "src", 1, [(4, 0, 5), (5, 6, 10)])
    clips, split, meta, _ = miga.import_miga(tmp_path / "src", protocol="none", img_shape=(720, 1280))
    for key, value in changes.items():
        clips[0][key] = value
    path = tmp_path / "ann.pkl"
    path.write_bytes(pickle.dumps({"split": split, "annotations": clips, "meta": meta}))
    return path, clips


def test_clean_annotation_file(tmp_path):
    path, _ = _annotations(tmp_path)
    assert validate_path(path) == []


def test_annotation_file_problems(tmp_path):
    path, clips = _annotations(tmp_path, label=40)
    data = pickle.loads(path.read_bytes())
    data["annotations"][1]["frame_dir"] = "0001_0"
    data["annotations"][1]["keypoint"][0, 2, 3, 0] = np.nan
    path.write_bytes(pickle.dumps(data))
    found = texts(validate_path(path))
    assert any("annotations[1] (0001_0): frame_dir: duplicate name" in t for t in found)
    assert any("annotations[1] (0001_0): keypoint: NaN or inf in frames 2" in t for t in found)
    path.write_bytes(b"not a pickle")
    assert "not a pickle file" in texts(validate_path(path))[0]
    path.write_bytes(pickle.dumps(data)[:200])  # a truncated pickle
    assert "not a readable annotation pickle" in texts(validate_path(path))[0]


def test_annotation_img_shape_order(tmp_path):
    path, _ = _annotations(tmp_path, img_shape=(200, 100))  # keypoints reach x ~300 > width 100
    (problem,) = validate_path(path)
    assert problem.where == "annotations[0] (0001_0)" and "img_shape must be (height, width)" in problem.message


def test_annotation_ranges_against_the_video(tmp_path, monkeypatch):
    path, _ = _annotations(tmp_path, video_path="src/0001/0001.mp4", start_frame=8, end_frame=13)
    assert texts(validate_path(path)) == [f"{path}: annotations[0] (0001_0): video_path: "
                                          f"{tmp_path / 'src/0001/0001.mp4'} not found"]
    miga.rgb_path(tmp_path / "src", 1).write_bytes(b"")
    monkeypatch.setattr(validate_module, "video_info", fake_info(12, 1280, 720))
    found = [p.message for p in validate_path(path)]
    assert "end_frame: frames 8..13 go beyond the video's 12 frames" in found
    assert any("img_shape: (720, 1280) but the video is (1280, 720)" in m and "(width, height)?" in m for m in found)


@pytest.mark.parametrize("name", ["notes.txt", "labels.csv"])
def test_other_files(tmp_path, name):
    path = tmp_path / name
    path.write_text("video_id,start_frame\n1,2\n")
    (problem,) = validate_path(path)
    assert ("unknown kind of file" if name.endswith("txt") else "header lacks end_frame, class") in problem.message


def test_real_samples_are_clean(shared_data):
    imigue = shared_data / "imigue"
    assert validate_path(imigue / "miga_layout") == []
    assert validate_path(imigue / "openpose_json_298") == []
    assert validate_path(imigue / "labels_video298.csv") == []


def test_with_a_real_video_file(tmp_path):
    from microgesture.data import video
    make_video(tmp_path, 1, [(4, 0, 5)], n_frames=12)
    video.write_video(miga.rgb_path(tmp_path, 1), (np.full((48, 64, 3), 90, np.uint8) for _ in range(10)), fps=25)
    (problem,) = validate_path(tmp_path)
    assert "12 rows, but the video 0001.mp4 has 10 frames" in problem.message
    clips, _, meta, _ = miga.import_miga(tmp_path, protocol="none")
    assert clips[0]["img_shape"] == (48, 64) and meta["img_shape_sources"] == {"video header": 1}


def test_decode_finds_corrupt_frames_behind_a_valid_header(tmp_path):
    from microgesture.data import video

    make_video(tmp_path, 1, [(4, 0, 5)], n_frames=40)
    path = miga.rgb_path(tmp_path, 1)
    rng = np.random.default_rng(0)
    frames = (rng.integers(0, 255, (48, 64, 3), dtype=np.uint8) for _ in range(40))
    video.write_video(path, frames, fps=25)
    assert validate_path(tmp_path, decode=True) == []
    data = bytearray(path.read_bytes())
    start = len(data) // 3
    data[start:start + 4000] = rng.integers(0, 255, 4000, dtype=np.uint8).tobytes()
    path.write_bytes(bytes(data))
    header_only = validate_path(tmp_path)
    decoded = validate_path(tmp_path, decode=True)
    assert len(decoded) > len(header_only)
    assert any("cannot decode" in p.message and p.file == str(path) for p in decoded)
