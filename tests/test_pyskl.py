"""PYSKL pickles: plain files load, import (2-D, 3-D with a projection, bare lists), export, round trip."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from microgesture.cli import main
from microgesture.data.formats import pyskl
from microgesture.data.formats.annotations import load_annotations, make_clip
from microgesture.errors import ConfigError, DataError


def pyskl_clip(name: str, label: int, persons: int = 2, frames: int = 10, joints: int = 17, seed: int = 0,
               three_d: bool = False) -> dict:
    """One clip exactly as PYSKL writes it (its keys only, numpy arrays)."""
    rng = np.random.default_rng(seed)
    clip = {"frame_dir": name, "label": label, "img_shape": (1080, 1920), "original_shape": (1080, 1920),
            "total_frames": frames}
    if three_d:  # PYSKL's NTU 3-D files: (x, y, z) in metres, no scores, no image shape
        clip = {"frame_dir": name, "label": label, "total_frames": frames,
                "keypoint": rng.normal(0, 0.5, (persons, frames, joints, 3)).astype(np.float32)}
        return clip
    clip["keypoint"] = rng.uniform(0, 1000, (persons, frames, joints, 2)).astype(np.float32)
    clip["keypoint_score"] = rng.uniform(0.3, 1, (persons, frames, joints)).astype(np.float32)
    return clip


def write_pyskl(path, clips, split) -> str:
    path.write_bytes(pickle.dumps({"split": split, "annotations": clips}))
    return path


@pytest.fixture
def coco_file(tmp_path):
    clips = [pyskl_clip("S001C001P003R001A001", 0, seed=1), pyskl_clip("S001C001P003R001A002", 1, persons=1, seed=2),
             pyskl_clip("S001C002P008R002A003", 2, seed=3)]
    clips[1]["keypoint_score"][0, 3] = 0
    return write_pyskl(tmp_path / "coco.pkl", clips, {"xsub_train": [c["frame_dir"] for c in clips[:2]],
                                                      "xsub_val": [clips[2]["frame_dir"]]})


def test_plain_pyskl_pickle_loads_through_load_annotations(coco_file):
    data = load_annotations(coco_file)
    assert [c["layout"] for c in data["annotations"]] == ["coco17"] * 3  # told apart by the joint count
    assert data["split"]["xsub_val"] == ["S001C002P008R002A003"]
    assert data["annotations"][0]["keypoint"].shape == (2, 10, 17, 2)
    assert data["videos"] == [] and data["meta"]["path"] == str(coco_file)


def test_import_keeps_split_and_pads_persons(coco_file, tmp_path):
    out = tmp_path / "ours.pkl"
    data = pyskl.import_pyskl_to_file(coco_file, out, layout="coco17", num_classes=60)
    loaded = load_annotations(out)
    assert loaded["meta"]["version"] == 2 and loaded["meta"]["classes"][59] == "class 59"
    assert loaded["split"] == {"xsub_train": ["S001C001P003R001A001", "S001C001P003R001A002"],
                               "xsub_val": ["S001C002P008R002A003"]}
    single = loaded["annotations"][1]
    assert single["keypoint"].shape == (2, 10, 17, 2) and not single["keypoint_score"][1].any()  # padded person
    original = pickle.loads(coco_file.read_bytes())["annotations"][1]
    assert np.array_equal(single["keypoint"][0], original["keypoint"][0])
    assert [c["subject_id"] for c in loaded["annotations"]] == [3, 3, 8]  # NTU names carry the performer
    assert [v["video_id"] for v in loaded["videos"]] == [0, 1, 2] and loaded["videos"][2]["subject_id"] == 8
    assert data["meta"]["importer"] == "pyskl" and data["meta"]["persons"] == 2


def test_import_cuts_persons_and_names_classes(coco_file, tmp_path):
    names = tmp_path / "classes.txt"
    names.write_text("wave\nclap\nsit\n")
    clips, split, meta, videos = pyskl.import_pyskl(coco_file, layout="coco17", persons=1, classes=names)
    assert {c["keypoint"].shape[0] for c in clips} == {1}
    assert meta["classes"] == ["wave", "clap", "sit"]
    names.write_text("wave\nclap\n")
    with pytest.raises(ConfigError, match=r"labels go up to 2, but there are 2 classes"):
        pyskl.import_pyskl(coco_file, layout="coco17", classes=names)


def test_wrong_layout_names_file_clip_and_joints(coco_file):
    with pytest.raises(DataError, match=r"coco\.pkl: annotations\[0\] \(S001C001P003R001A001\), keypoint: "
                                        r"has 17 joints, layout ntu25 has 25"):
        pyskl.import_pyskl(coco_file, layout="ntu25")
    with pytest.raises(ConfigError, match="unknown joint layout 'coco'"):
        pyskl.import_pyskl(coco_file, layout="coco")


def test_three_d_keypoints_are_refused_unless_projected(tmp_path):
    clips = [pyskl_clip(f"S001C001P00{k}R001A001", k, joints=25, three_d=True, seed=k) for k in range(1, 3)]
    clips[0]["keypoint"][1] = 0  # the second person is absent
    path = write_pyskl(tmp_path / "ntu3d.pkl", clips, {"xsub_train": [clips[0]["frame_dir"]],
                                                       "xsub_val": [clips[1]["frame_dir"]]})
    with pytest.raises(DataError, match=r"ntu3d\.pkl: annotations\[0\].*keypoint: 3-D keypoints.*--project xy"):
        pyskl.import_pyskl(path, layout="ntu25")
    with pytest.raises(DataError, match=r"keypoint_score: missing \(3-D keypoints .* --project xy"):
        load_annotations(path)
    out, split, meta, _ = pyskl.import_pyskl(path, layout="ntu25", project="xy")
    kp, score = out[0]["keypoint"], out[0]["keypoint_score"]
    assert np.allclose(kp[0, ..., 0], clips[0]["keypoint"][0, ..., 0])
    assert np.allclose(kp[0, ..., 1], -clips[0]["keypoint"][0, ..., 1])
    assert score[0].all() and not score[1].any() and out[0]["img_shape"] == (1080, 1920)
    assert meta["projection"] == "xy" and meta["classes"] == ["class 0", "class 1", "class 2"]


def test_bad_files_are_clear_errors(tmp_path):
    clip = pyskl_clip("a", 0)
    del clip["keypoint_score"]
    with pytest.raises(DataError, match=r"annotations\[0\] \(a\), keypoint_score: missing"):
        pyskl.import_pyskl(write_pyskl(tmp_path / "a.pkl", [clip], {"train": ["a"]}), layout="coco17")
    with pytest.raises(DataError, match=r"split\['val'\]: 1 name\(s\) not among the clips, e.g. 'zzz'"):
        pyskl.import_pyskl(write_pyskl(tmp_path / "b.pkl", [pyskl_clip("a", 0)], {"val": ["zzz"]}), layout="coco17")
    with pytest.raises(DataError, match=r"annotations\[1\] \(a\), frame_dir: duplicate"):
        pyskl.import_pyskl(write_pyskl(tmp_path / "c.pkl", [pyskl_clip("a", 0)] * 2, {}), layout="coco17")
    bad = pyskl_clip("a", 0)
    bad["label"] = "wave"
    with pytest.raises(DataError, match=r"annotations\[0\] \(a\), label: is a str, expected int or integer"):
        pyskl.import_pyskl(write_pyskl(tmp_path / "d.pkl", [bad], {}), layout="coco17")


def test_a_crafted_pickle_runs_nothing(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"split": {}, "annotations": [Evil()]}))
    with pytest.raises(DataError, match=r"refused: the file asks to import builtins\.print"):
        pyskl.import_pyskl(path, layout="coco17")


def test_bare_list_becomes_one_split(tmp_path):
    path = tmp_path / "list.pkl"
    path.write_bytes(pickle.dumps([pyskl_clip("x", 0), pyskl_clip("y", 1)]))
    _, split, _, _ = pyskl.import_pyskl(path, layout="coco17", split_name="test")
    assert split == {"test": ["x", "y"]}


def test_export_round_trip_and_conversion(tmp_path, tiny_annotations, capsys):
    out = tmp_path / "to_pyskl.pkl"
    assert main(["data", "export", "pyskl", str(tiny_annotations), "--out", str(out), "--layout", "coco17"]) == 0
    assert "PYSKL graph layout 'coco'" in capsys.readouterr().out
    raw = pickle.loads(out.read_bytes())  # a plain pickle with PYSKL's keys only
    assert set(raw) == {"split", "annotations"}
    assert set(raw["annotations"][0]) == set(pyskl.PYSKL_KEYS)
    assert raw["annotations"][0]["keypoint"].shape[2] == 17 and raw["annotations"][0]["keypoint"].dtype == np.float32
    back = tmp_path / "back.pkl"
    assert main(["data", "import", "pyskl", str(out), "--layout", "coco17", "--num-classes", "4",
                 "--out", str(back)]) == 0
    ours, again = load_annotations(tiny_annotations), load_annotations(back)
    assert again["split"] == ours["split"]
    first, second = ours["annotations"][0], again["annotations"][0]
    # coco17's shoulders, elbows and wrists are BODY_25 joints 5, 2, 6, 3, 7, 4 of miga35
    arms = first["keypoint"][0][:, [5, 2, 6, 3, 7, 4]]
    assert np.array_equal(second["keypoint"][0, :, 5:11], arms)
    assert not second["keypoint_score"][0, :, 11:].any()  # iMiGUE has no hips, knees or ankles
    with pytest.raises(ConfigError, match="unknown joint layout 'coco'"):
        pyskl.export_pyskl(tiny_annotations, tmp_path / "x.pkl", layout="coco")
    plain = tmp_path / "plain.pkl"
    print(pyskl.export_pyskl(tiny_annotations, plain))
    assert "no graph for layout miga35" in capsys.readouterr().out


def test_version_one_file_still_loads(tmp_path):
    clip = make_clip(frame_dir="0001_0", label=3, keypoint=np.ones((5, 35, 2)), keypoint_score=np.ones((5, 35)),
                     img_shape=(720, 1280), layout="miga35", video_id=1, subject_id=2)
    path = tmp_path / "v1.pkl"
    path.write_bytes(pickle.dumps({"split": {"train": ["0001_0"]}, "annotations": [clip],
                                   "meta": {"format": "microgesture-annotations", "version": 1}}))
    data = load_annotations(path)
    assert data["meta"]["version"] == 1 and data["annotations"][0]["label"] == 3
    assert data["videos"][0]["video_id"] == 1 and data["videos"][0]["fps"] is None  # made from the clips


def test_outputs_under_a_regular_file_are_refused_before_any_work(tmp_path, coco_file, tiny_annotations):
    afile = tmp_path / "afile"
    afile.write_text("x")
    for argv in (["data", "import", "pyskl", str(coco_file), "--layout", "coco17", "--out", str(afile / "x.pkl")],
                 ["data", "export", "pyskl", str(tiny_annotations), "--out", str(afile / "x.pkl")],
                 ["data", "import", "smg", str(tmp_path), "--out", str(afile / "x.pkl")]):
        assert main(argv) == 2
        assert afile.read_text() == "x"
