"""SMG folders: readers, the importer (pixel and world coordinates), validation, CLI, a 17-class run.

The SMG files here are written by the test in SMG's format (the real data is not available); the
class list is checked against the real one when the shared sample data is present.
"""

from __future__ import annotations

import csv
import pickle

import numpy as np
import pytest

from microgesture.cli import main
from microgesture.data.formats import smg
from microgesture.data.formats.annotations import load_annotations
from microgesture.data.formats.validate import validate_path
from microgesture.domain.classes import SMG_CLASSES
from microgesture.domain.layouts import NTU25
from microgesture.errors import DataError

# A standing person in the 1920x1080 colour image, Kinect v2 joint order (ntu25).
PIXELS = np.array([
    [960, 620], [960, 480], [960, 330], [960, 270], [880, 360], [850, 470], [840, 560], [840, 590],
    [1040, 360], [1070, 470], [1080, 560], [1080, 590], [920, 630], [915, 800], [910, 960], [905, 990],
    [1000, 630], [1005, 800], [1010, 960], [1015, 990], [960, 360], [838, 620], [855, 585], [1082, 620],
    [1065, 585],
], dtype=np.float64)
MOVERS = ([5, 6, 7, 21, 22], [9, 10, 11, 23, 24], [3, 2], [12, 13, 14, 15])  # left arm, right arm, head, left leg


def kinect_values(frames: int, label: int = 0, seed: int = 0) -> np.ndarray:
    """[T, 25, 11] SMG skeleton values; the joints of MOVERS[label % 4] swing along x or y."""
    rng = np.random.default_rng(seed)
    pix = np.tile(PIXELS, (frames, 1, 1)) + rng.normal(0, 1.0, (frames, 25, 2))
    swing = 25 * np.sin(np.arange(frames) * 0.4 + rng.uniform(0, 6.28))
    pix[:, MOVERS[label % 4], (label // 4) % 2] += swing[:, None]
    values = np.zeros((frames, 25, 11))
    values[..., 0] = (pix[..., 0] - 960) / 500  # metres, x right
    values[..., 1] = -(pix[..., 1] - 540) / 500  # y up
    values[..., 2] = 2.5
    values[..., 3] = 1.0  # orientation quaternion (w, x, y, z)
    values[..., 7:9] = pix
    values[..., 9:11] = pix / 4  # the two values the importer does not use
    return values


def write_set(root, subjects=(1, 2, 36), frames=60, rows=None, seed=0):
    rows = rows or [(3, 1, 10), (17, 12, 30), (1, 31, 60)]
    for k, sid in enumerate(subjects):
        smg.write_sequence(root, sid, kinect_values(frames, seed=seed + k), rows, fps=30)
    return root


def test_class_list_matches_the_real_one(shared_data):
    path = shared_data / "smg" / "Clip_label.csv"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["id"]) for r in rows] == list(range(17))
    assert tuple(r["name"] for r in rows) == SMG_CLASSES


def test_import_pixel_coordinates(tmp_path):
    root = write_set(tmp_path / "smg")
    values = smg.read_skeleton(root / "Sample0002" / "Sample0002_skeleton.csv")
    values[20:22, 4] = 0  # Kinect lost the left shoulder for two frames
    smg.write_sequence(root, 2, values, [(3, 1, 10), (17, 12, 30), (1, 31, 60)])
    clips, split, meta, videos = smg.import_smg(root, val_fraction=0.5, seed=0)
    assert [c["frame_dir"] for c in clips[:3]] == ["0001_0", "0001_1", "0001_2"]
    assert [c["label"] for c in clips[:3]] == [2, 16, 0]
    second = next(c for c in clips if c["frame_dir"] == "0002_1")
    # frames 12..30 (1-based, inclusive) are skeleton rows 11..29
    assert (second["start_frame"], second["end_frame"], second["total_frames"]) == (11, 29, 19)
    assert np.allclose(second["keypoint"][0], values[11:30, :, 7:9], atol=1e-3)
    assert second["keypoint_score"][0, 9:11, 4].tolist() == [0, 0] and second["keypoint"][0, 9:11, 4].sum() == 0
    assert second["keypoint_score"][0].sum() == 19 * 25 - 2
    assert second["layout"] == "ntu25" and second["img_shape"] == (1080, 1920)
    assert second["subject_id"] == 2 and second["video_id"] == 2
    assert split["test"] == ["0036_0", "0036_1", "0036_2"]
    assert len(split["train"]) == len(split["val"]) == 3  # one of subjects 1 and 2 is carved out for val
    assert meta["classes"] == list(SMG_CLASSES) and meta["protocol"] == "smg-xsub"
    assert any("1920x1080" in note for note in meta["notes"])
    assert [v["fps"] for v in videos] == [30.0] * 3 and videos[0]["skeleton_format"] == "smg_csv"
    assert videos[0]["num_frames"] == 60 and videos[0]["labelled_segments"] == 3


def test_import_world_coordinates_and_state_labels(tmp_path):
    root = write_set(tmp_path / "smg", subjects=(5, 38))
    (root / "Sample0005" / "Sample0005_tflabels_new.csv").write_text("1,1,40,11\n2,41,60,22\n")
    clips, split, meta, videos = smg.import_smg(root, coords="world", val_fraction=0)
    first = clips[0]
    values = smg.read_skeleton(root / "Sample0005" / "Sample0005_skeleton.csv")
    assert np.allclose(first["keypoint"][0, :, :, 0], values[:10, :, 0], atol=1e-5)
    assert np.allclose(first["keypoint"][0, :, :, 1], -values[:10, :, 1], atol=1e-5)  # y flipped to point down
    assert meta["coords"] == "world" and any("metres" in n for n in meta["notes"])
    assert videos[0]["state_labels"] == [[1, 1, 40, 11], [2, 41, 60, 22]] and "state_labels" not in videos[1]
    assert set(split) == {"train", "test"}


def test_saved_file_loads_and_summarises(tmp_path, capsys):
    root = write_set(tmp_path / "smg")
    out = tmp_path / "smg.pkl"
    assert main(["data", "import", "smg", str(root), "--out", str(out), "--coords", "pixel"]) == 0
    text = capsys.readouterr().out
    assert "Illustrative hand gestures" in text and f"wrote {out}" in text
    data = load_annotations(out)
    assert data["meta"]["classes"] == list(SMG_CLASSES) and len(data["annotations"]) == 9
    assert data["videos"][0]["skeleton_path"] == "smg/Sample0001/Sample0001_skeleton.csv"
    assert main(["data", "validate", str(root)]) == 0
    assert main(["data", "validate", str(out)]) == 0


@pytest.mark.parametrize("name,text,message", [
    ("finelabels", "18,1,10\n", r"line 1, class: 18 is not an SMG class \(expected 1..17\)"),
    ("finelabels", "3,0,10\n", r"line 1: frame range 0..10: expected 1 <= start_frame .*from 1"),
    ("finelabels", "3,1\n", r"line 1: 2 columns, expected 3 \(class,start_frame,end_frame\)"),
    ("finelabels", "3,1,x\n", r"line 1, end_frame: 'x' is not an integer"),
    ("skeleton", "1,2,3\n", r"line 1: 3 columns, expected 275 \(25 joints x 11 values"),
    ("skeleton", ",".join(["1"] * 274 + ["oops"]) + "\n",
     r"line 1, joint 24 \(r_thumb\) extra 2: 'oops' is not a number"),
    ("data", "60,thirty,4500\n", r"line 1, fps: 'thirty' is not an integer"),
])
def test_bad_files_name_file_line_and_field(tmp_path, name, text, message):
    root = write_set(tmp_path / "smg", subjects=(1,))
    path = root / "Sample0001" / f"Sample0001_{name}.csv"
    path.write_text(text)
    with pytest.raises(DataError, match=message) as err:
        smg.import_smg(root, protocol="none")
    assert err.value.path == path


def test_a_blank_line_keeps_its_frame_number(tmp_path):
    root = write_set(tmp_path / "smg", subjects=(1,))
    path = root / "Sample0001" / "Sample0001_skeleton.csv"
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:3] + [""] + lines[4:]) + "\n\n")  # frame 4 lost, trailing blank line
    values, issues = smg.parse_skeleton(path)
    assert values.shape == (60, 25, 11) and np.isnan(values[3]).all() and not np.isnan(values[4]).any()
    assert issues == [("line 4", "blank line, expected 275 (25 joints x 11 values: world x, y, z, 4 orientation "
                                 "values, 2 pixel values, 2 more)")]


def test_rows_beyond_the_skeleton_are_errors_or_skipped(tmp_path):
    root = write_set(tmp_path / "smg", subjects=(1, 36), rows=[(2, 1, 10), (4, 50, 70)])
    with pytest.raises(DataError, match=r"Sample0001_finelabels\.csv: line 2: frames 49..69 are outside"):
        smg.import_smg(root)
    with pytest.warns(UserWarning, match="skipped 2 unusable"):
        clips, _, meta, _ = smg.import_smg(root, skip_unusable=True, val_fraction=0)
    assert [c["frame_dir"] for c in clips] == ["0001_0", "0036_0"] and len(meta["skipped"]) == 2


def test_validate_lists_every_problem(tmp_path):
    root = write_set(tmp_path / "smg", subjects=(1, 2))
    (root / "Sample0001" / "Sample0001_finelabels.csv").write_text("3,1,10\n19,2,4\n5,55,70\n3,1,10\n")
    (root / "Sample0002" / "Sample0002_data.csv").write_text("61,30,4500\n")
    values = kinect_values(60)
    values[5, 3, 7:9] = -np.inf  # Kinect could not map the head into the colour image
    values[40:, :, :] = 0  # nobody tracked at the end
    smg.write_sequence(root, 2, values, [(1, 41, 50)])
    (root / "Sample0002" / "Sample0002_data.csv").write_text("61,30,4500\n")
    text = "\n".join(map(str, validate_path(root)))
    assert "Sample0001_finelabels.csv: line 2, class: 19 is not an SMG class" in text
    assert "Sample0001_finelabels.csv: line 3: frames 55..70 go beyond the 60 frames" in text
    assert "warning: " in text and "line 4: 3,1,10 repeats line 1" in text
    assert "Sample0002_data.csv: line 1: numFrames is 61, but Sample0002_skeleton.csv has 60 rows" in text
    assert "Sample0002_skeleton.csv: line 6: 1 tracked joint(s) in 1 frame(s) have no finite pixel position" in text
    assert "Sample0002_finelabels.csv: line 1: frames 41..50: no joint detected" in text
    assert validate_path(write_set(tmp_path / "clean", subjects=(1,))) == []


def test_seventeen_class_training_on_an_imported_set(tmp_path):
    from microgesture.train.config import load_config
    from microgesture.train.run import evaluate, fit

    root = tmp_path / "smg"
    for sid in (1, 2, 3, 36):
        rows = [(1 + k, 1 + 20 * k, 20 + 20 * k) for k in range(4)]
        values = np.concatenate([kinect_values(20, label=k, seed=10 * sid + k) for k in range(4)])
        smg.write_sequence(root, sid, values, rows)
    out = tmp_path / "smg.pkl"
    smg.import_smg_to_file(root, out, val_fraction=0.34, seed=0)
    cfg = load_config(None, [
        f"data.annotations={out}", "data.layout=ntu25", "data.num_frames=8", "data.batch_size=4",
        "model.streams.joint.encoder=agcn", "model.streams.joint.base_channels=4", "trainer.max_epochs=1",
        "trainer.progress_bar=false", "trainer.accelerator=cpu", "trainer.log_every_n_steps=1",
    ])
    run = fit(cfg, tmp_path / "run")
    metrics = evaluate(cfg, run.best_checkpoint, tmp_path / "eval")
    header = (tmp_path / "eval" / "scores.csv").read_text().splitlines()[0].split(",")
    assert header[-1] == "score_16" and len(header) == 2 + 17  # sample_id, label, a score per SMG class
    assert set(metrics["per_class_accuracy"]) == set(SMG_CLASSES[:4])  # the classes the test clips have
    assert metrics["num_samples"] == 4  # the test participant's four clips
    with open(out, "rb") as fh:
        assert pickle.load(fh)["meta"]["classes"][16] == "Illustrative hand gestures"


def test_layout_is_kinect_order():
    names = NTU25.joint_names
    assert names[:4] == ("base_spine", "mid_spine", "neck", "head") and names[20] == "spine_shoulder"
    assert names[4] == "l_shoulder" and names[8] == "r_shoulder" and names[21:] == (
        "l_hand_tip", "l_thumb", "r_hand_tip", "r_thumb")
    assert smg.SKELETON_COLUMNS == 275
