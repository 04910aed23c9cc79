"""OpenPose JSON folders and the iMiGUE master label table."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from microgesture.data.formats import miga, openpose
from microgesture.domain.layouts import MIGA35, OPENPOSE67, convert_rows
from microgesture.errors import ConfigError, DataError

HEADER = (
    "video_id,label_id,start_time,start_frame,end_time,end_frame,class,subject_id,"
    "subject_gender,subject_nationality,win_or_lose\n"
)


def person(seed: float, conf: float = 0.8, hands: bool = True) -> dict:
    body = [[seed + j, 2 * seed + j, conf] for j in range(25)]
    right = [[seed + 100 + k, seed + 200 + k, conf] for k in range(21)]
    left = [[seed + 300 + k, seed + 400 + k, conf] for k in range(21)]
    flat = lambda pts: [v for p in pts for v in p]  # noqa: E731
    return {
        "person_id": [-1],
        "pose_keypoints_2d": flat(body),
        "face_keypoints_2d": [0.0] * 210,
        "hand_right_keypoints_2d": flat(right) if hands else [],
        "hand_left_keypoints_2d": flat(left) if hands else [],
    }


def write_frame(folder: Path, vid: str, frame: int, people: list[dict]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{vid}_{frame:012d}_keypoints.json"
    path.write_text(json.dumps({"version": 1.3, "people": people}))
    return path


def write_table(path: Path, rows: list[tuple]) -> Path:
    path.write_text(HEADER + "".join(",".join(map(str, r)) + "\n" for r in rows))
    return path


# --- frames ---------------------------------------------------------------------------------


def test_frame_layout_and_fingertips(tmp_path):
    path = write_frame(tmp_path, "5", 0, [person(1.0)])
    joints, count = openpose.read_openpose_frame(path)
    assert count == 1 and joints.shape == (67, 3)
    assert joints[0].tolist() == [1.0, 2.0, 0.8]
    assert joints[25 + 4].tolist() == [105.0, 205.0, 0.8]  # right hand point 4 (thumb tip)
    assert joints[46 + 20].tolist() == [321.0, 421.0, 0.8]  # left hand point 20 (pinky tip)
    m35 = convert_rows(joints, OPENPOSE67, MIGA35)
    assert m35.shape == (35, 3)
    assert m35[25].tolist() == [105.0, 205.0, 0.8] and m35[29].tolist() == [121.0, 221.0, 0.8]
    assert m35[30].tolist() == [305.0, 405.0, 0.8] and m35[34].tolist() == [321.0, 421.0, 0.8]


def test_no_person_is_zeros(tmp_path):
    joints, count = openpose.read_openpose_frame(write_frame(tmp_path, "5", 0, []))
    assert count == 0 and joints.shape == (67, 3) and not joints.any()


def test_missing_hands_are_zeros(tmp_path):
    joints, _ = openpose.read_openpose_frame(write_frame(tmp_path, "5", 0, [person(1.0, hands=False)]))
    assert joints[:25].any() and not joints[25:].any()


def test_most_confident_person_is_chosen(tmp_path):
    faint, subject = person(500.0, conf=0.2), person(1.0, conf=0.9)
    joints, count = openpose.read_openpose_frame(write_frame(tmp_path, "5", 0, [faint, subject]))
    assert count == 2 and joints[0, 0] == 1.0


@pytest.mark.parametrize(
    "change, where, expected",
    [
        ({"pose_keypoints_2d": [1.0] * 54}, "people[0].pose_keypoints_2d", "has 54 values, expected 75"),
        ({"hand_left_keypoints_2d": [1.0] * 60}, "people[0].hand_left_keypoints_2d", "expected 63"),
        ({"pose_keypoints_2d": ["a"] * 75}, "people[0].pose_keypoints_2d", "not a number"),
    ],
)
def test_malformed_person(tmp_path, change, where, expected):
    path = write_frame(tmp_path, "5", 7, [{**person(1.0), **change}])
    with pytest.raises(DataError) as info:
        openpose.read_openpose_frame(path)
    assert info.value.where == where and expected in str(info.value) and path.name in str(info.value)


def test_malformed_json(tmp_path):
    path = tmp_path / "5_000000000000_keypoints.json"
    path.write_text("{\"people\": [")
    with pytest.raises(DataError, match="not a readable OpenPose JSON"):
        openpose.read_openpose_frame(path)
    path.write_text("{\"version\": 1.3}")
    with pytest.raises(DataError, match="'people' list"):
        openpose.read_openpose_frame(path)


def test_folder_video_id_and_order(tmp_path):
    for frame in (3, 1, 2):
        write_frame(tmp_path / "clips", "12", frame, [person(frame)])
    vid, frames, joints, stats = openpose.read_openpose_folder(tmp_path / "clips")
    assert vid == 12 and frames.tolist() == [1, 2, 3] and joints[:, 0, 0].tolist() == [1.0, 2.0, 3.0]
    assert stats == {"frames": 3, "no_person": 0, "several_people": 0}
    write_frame(tmp_path / "clips", "13", 0, [person(9.0)])
    with pytest.raises(DataError, match="several videos"):
        openpose.read_openpose_folder(tmp_path / "clips")
    assert openpose.read_openpose_folder(tmp_path / "clips", video_id=13)[1].tolist() == [0]
    with pytest.raises(DataError, match="no <vid>_<frame:012d>_keypoints.json files for video 14"):
        openpose.read_openpose_folder(tmp_path / "clips", video_id=14)


# --- label table ------------------------------------------------------------------------------


def test_label_table(tmp_path):
    path = write_table(tmp_path / "labels.csv", [(3, 1, 0, 10, 0, 20, 99, 7, "M", "X", "Win"),
                                                  (3, 2, 0, 30, 0, 31, 4, 7, "M", "X", "Win"),
                                                  (4, 1, 0, 1, 0, 2, 1, 8, "F", "Y", "Lose")])
    rows = openpose.read_label_table(path)
    assert [(r.video_id, r.start, r.end, r.label, r.subject_id, r.emotion) for r in rows] == [
        (3, 10, 20, 31, 7, 1), (3, 30, 31, 3, 7, 1), (4, 1, 2, 0, 8, 0)]
    assert rows[0].line == 2
    assert openpose.video_table(rows) == {3: (7, 1), 4: (8, 0)}


@pytest.mark.parametrize(
    "text, expected",
    [
        ("video_id,start_frame,end_frame\n1,2,3\n", "header lacks class"),
        (HEADER + "3,1,0,10,0,20,4,7,M,X,Win\n3,1,0,x,0,20,4,7,M,X,Win\n", "line 3, start_frame"),
        (HEADER + "3,1,0,10,0,20,40,7,M,X,Win\n", "line 2, class"),
        (HEADER + "3,1,0,30,0,20,4,7,M,X,Win\n", "line 2: frames 30..20"),
        (HEADER + "3,1,0,10,0,20,4,7,M,X,Draw\n", "line 2, win_or_lose"),
        (HEADER + "3,1,0,10,0,20,4,7,M,X,Win,extra\n", "line 2: 12 columns, header has 11"),
    ],
)
def test_label_table_errors(tmp_path, text, expected):
    path = tmp_path / "labels.csv"
    path.write_text(text)
    with pytest.raises(DataError, match=expected):
        openpose.read_label_table(path)


def test_label_table_subject_disagreement(tmp_path):
    rows = openpose.read_label_table(write_table(tmp_path / "l.csv", [(3, 1, 0, 1, 0, 2, 4, 7, "M", "X", "Win"),
                                                                     (3, 2, 0, 3, 0, 4, 4, 8, "M", "X", "Win")]))
    with pytest.raises(DataError, match="line 3"):
        openpose.video_table(rows)


# --- importer -----------------------------------------------------------------------------


def _synthetic_video(tmp_path: Path, frames=range(10)) -> tuple[Path, Path]:
    folder = tmp_path / "json" / "video0009"
    for f in frames:
        write_frame(folder, "0009", f, [person(float(f))])
    table = write_table(tmp_path / "labels.csv", [(9, 1, 0, 2, 0, 5, 4, 3, "M", "X", "Win"),
                                                   (8, 1, 0, 2, 0, 5, 4, 3, "M", "X", "Win"),
                                                   (9, 2, 0, 8, 0, 12, 5, 3, "M", "X", "Win"),
                                                   (9, 3, 0, 6, 0, 9, 99, 3, "M", "X", "Win")])
    return folder, table


def test_import_skips_rows_beyond_the_frames_with_a_warning(tmp_path):
    folder, table = _synthetic_video(tmp_path)
    with pytest.warns(UserWarning, match=r"(?s)skipped 1 unusable.*0009_1 \(.*labels.csv, line 4\)"):
        clips, split, meta, _ = openpose.import_openpose(folder, table, protocol="none")
    assert [c["frame_dir"] for c in clips] == ["0009_0", "0009_2"]
    assert [c["label"] for c in clips] == [3, 31]
    assert clips[0]["keypoint"].shape == (1, 4, 35, 2) and clips[0]["keypoint"][0, :, 0, 0].tolist() == [2, 3, 4, 5]
    assert (clips[0]["subject_id"], clips[0]["emotion"], clips[0]["video_id"]) == (3, 1, 9)
    assert len(meta["skipped"]) == 1 and split == {"test": ["0009_0", "0009_2"]}
    with pytest.raises(DataError) as info:
        openpose.import_openpose(folder, table, protocol="none", skip_unusable=False)
    assert info.value.where == "line 4" and "outside the skeleton's frames 0..9" in str(info.value)


def test_import_folder_of_videos_and_layouts(tmp_path):
    folder, table = _synthetic_video(tmp_path)
    with pytest.warns(UserWarning):
        clips, _, meta, _ = openpose.import_openpose(folder.parent, table, protocol="none", layout="openpose67")
    assert clips[0]["keypoint"].shape == (1, 4, 67, 2) and meta["videos"] == 1
    with pytest.warns(UserWarning):
        clips, _, _, _ = openpose.import_openpose(folder, table, protocol="none", layout="imigue22")
    assert clips[0]["keypoint"].shape == (1, 4, 22, 2)
    with pytest.raises(ConfigError):
        openpose.import_openpose(folder, table, protocol="none", layout="bogus")


def test_import_no_usable_rows(tmp_path):
    folder, table = _synthetic_video(tmp_path, frames=range(100, 103))
    with pytest.warns(UserWarning), pytest.raises(DataError, match="no usable clips"):
        openpose.import_openpose(folder, table, protocol="none")


def test_import_to_file_failure_keeps_old_file(tmp_path):
    folder, table = _synthetic_video(tmp_path)
    out = tmp_path / "ann.pkl"
    out.write_bytes(b"old")
    with pytest.raises(DataError):
        openpose.import_openpose_to_file(folder, table, out, protocol="none", skip_unusable=False)
    assert out.read_bytes() == b"old"


# --- real sample --------------------------------------------------------------------------


def test_real_openpose_sample_agrees_with_miga_layout(shared_data):
    imigue = shared_data / "imigue"
    with pytest.warns(UserWarning, match="skipped 55 unusable"):
        clips, split, meta, _ = openpose.import_openpose(
            imigue / "openpose_json_298", imigue / "labels_video298.csv", protocol="none"
        )
    (clip,) = clips
    assert clip["frame_dir"] == "0298_0" and clip["label"] == 3 and clip["total_frames"] == 90
    assert (clip["start_frame"], clip["end_frame"], clip["video_id"]) == (168, 257, 298)
    assert (clip["subject_id"], clip["emotion"]) == (22, 1)
    assert len(meta["skipped"]) == 55 and meta["frame_stats"]["openpose_json_298"]["frames"] == 300
    # frame 168: pose_keypoints_2d starts 415.878,210.104,0.840858
    source = json.loads((imigue / "openpose_json_298" / "298_000000000168_keypoints.json").read_text())
    pose = source["people"][0]["pose_keypoints_2d"]
    hand = source["people"][0]["hand_right_keypoints_2d"]
    assert pose[:3] == [415.878, 210.104, 0.840858]
    np.testing.assert_array_equal(clip["keypoint"][0, 0, 0], np.float32([415.878, 210.104]))
    assert clip["keypoint_score"][0, 0, 0] == np.float32(0.840858)
    np.testing.assert_array_equal(clip["keypoint"][0, 0, 25], np.float32(hand[12:14]))
    assert clip["keypoint_score"][0, 0, 25] == np.float32(hand[14])

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        (other,), _, _, _ = miga.import_miga(
            imigue / "miga_layout", protocol="none", labels_table=imigue / "labels_video298.csv"
        )
    for key in ("frame_dir", "label", "total_frames", "start_frame", "end_frame", "video_id", "subject_id",
                "emotion", "img_shape", "layout"):
        assert clip[key] == other[key], key
    np.testing.assert_array_equal(clip["keypoint"], other["keypoint"])
    np.testing.assert_array_equal(clip["keypoint_score"], other["keypoint_score"])


def test_real_openpose_sample_without_skipping_fails_clearly(shared_data):
    imigue = shared_data / "imigue"
    with pytest.raises(DataError) as info:
        openpose.import_openpose(imigue / "openpose_json_298", imigue / "labels_video298.csv",
                                 protocol="none", skip_unusable=False)
    assert info.value.where == "line 3" and "633..658" in str(info.value)
