import pickle

import numpy as np
import pytest

from microgesture.data.formats.annotations import (
    clip_problems, load_annotations, make_clip, resolve_video_path, save_annotations, select,
)
from microgesture.errors import DataError


def clip(name="0001_0", label=3, frames=10, **kw):
    kp = np.random.default_rng(0).random((frames, 35, 2)) * 100
    return make_clip(frame_dir=name, label=label, keypoint=kp, keypoint_score=np.ones((frames, 35)),
                     img_shape=(720, 1280), layout="miga35", start_frame=168, **kw)


def test_round_trip_is_pyskl_shaped(tmp_path):
    c = clip(video_path="0001/0001.mp4")
    path = tmp_path / "ann.pkl"
    save_annotations(path, [c], {"train": ["0001_0"]})
    data = load_annotations(path)
    got = data["annotations"][0]
    assert got["keypoint"].shape == (1, 10, 35, 2) and got["keypoint"].dtype == np.float32
    assert got["keypoint_score"].shape == (1, 10, 35)
    assert got["img_shape"] == (720, 1280)
    assert (got["start_frame"], got["end_frame"], got["total_frames"]) == (168, 177, 10)
    assert select(data, "train")[0]["frame_dir"] == "0001_0"
    assert resolve_video_path(data, got) == tmp_path / "0001/0001.mp4"
    with pytest.raises(DataError, match="split 'test' not found"):
        select(data, "test")


def test_plain_pyskl_file_is_accepted(tmp_path):
    c = clip()
    pyskl = {k: c[k] for k in ("frame_dir", "label", "total_frames", "img_shape", "keypoint", "keypoint_score")}
    path = tmp_path / "pyskl.pkl"
    path.write_bytes(pickle.dumps({"split": {"xsub_val": ["0001_0"]}, "annotations": [pyskl]}))
    got = load_annotations(path)["annotations"][0]
    assert got["layout"] == "miga35" and got["end_frame"] == 9 and got["emotion"] == -1


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda c: c.pop("keypoint"), "keypoint: missing"),
        (lambda c: c.__setitem__("keypoint_score", np.ones((1, 9, 35), np.float32)), "keypoint_score: shape"),
        (lambda c: c["keypoint"].__setitem__((0, 4, 0, 0), np.nan), "NaN or inf in frames 4"),
        (lambda c: c.__setitem__("label", 40), "label: 40"),
        (lambda c: c.__setitem__("layout", "imigue22"), "layout: imigue22 has 22 joints"),
        (lambda c: c.__setitem__("total_frames", 11), "total_frames: 11"),
    ],
)
def test_problems_name_the_field(change, message):
    c = clip()
    change(c)
    assert any(message in p for p in clip_problems(c, num_classes=32)), clip_problems(c, num_classes=32)


def test_all_zero_clip_is_a_problem():
    c = clip()
    c["keypoint"][:] = 0
    c["keypoint_score"][:] = 0
    assert any("every joint is zero" in p for p in clip_problems(c))


def test_bad_files_are_clear_errors(tmp_path):
    with pytest.raises(DataError, match="not found"):
        load_annotations(tmp_path / "missing.pkl")
    junk = tmp_path / "junk.pkl"
    junk.write_bytes(b"not a pickle")
    with pytest.raises(DataError, match="junk.pkl: not a pickle file"):
        load_annotations(junk)
    junk.write_bytes(pickle.dumps({"annotations": []})[:10])
    with pytest.raises(DataError, match="junk.pkl: not a readable annotation pickle"):
        load_annotations(junk)
    both = tmp_path / "both.pkl"
    c = clip()
    both.write_bytes(pickle.dumps({"split": {"train": ["0001_0"], "test": ["0001_0"]}, "annotations": [c]}))
    with pytest.raises(DataError, match="in both 'train' and 'test'"):
        load_annotations(both)


def test_failed_save_keeps_the_old_file(tmp_path):
    path = tmp_path / "ann.pkl"
    save_annotations(path, [clip()], {"train": ["0001_0"]})
    before = path.read_bytes()
    bad = clip()
    bad["label"] = -7
    with pytest.raises(DataError, match="refusing to write"):
        save_annotations(path, [bad], {"train": ["0001_0"]})
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["ann.pkl"]
