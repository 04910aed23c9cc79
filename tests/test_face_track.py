"""Face tracks: the synthetic generator's, the file format, annotations v2, validation, the face modality."""

from __future__ import annotations

import pickle
import shutil

import numpy as np
import pytest
import torch

from microgesture.data.datasets import ClipDataset
from microgesture.data.formats import miga
from microgesture.data.formats.annotations import load_annotations, resolve_face_video_path
from microgesture.data.formats.facetrack import (
    FACE_SIZE,
    HEADER,
    face_csv_path,
    face_video_path,
    parse_face_csv,
    read_face_csv,
    write_face_csv,
)
from microgesture.data.formats.validate import validate_path
from microgesture.data.synth import generate
from microgesture.data.synth.face import COVERED, FaceRenderer, make_face_look, tracker_flags
from microgesture.data.synth.schedule import VideoPlan
from microgesture.data.transforms.face import FaceClip
from microgesture.data.transforms.pipelines import Augment, VideoInput, build_pipeline
from microgesture.data.video import read_frames, video_info
from microgesture.errors import DataError

SIZE = (128, 96)
SWINFACE_NORM = dict(mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))  # (x / 255 - 0.5) / 0.5
FACE_INPUT = {"face": VideoInput(8, FACE_SIZE, **SWINFACE_NORM)}


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    """Two tiny synthetic videos with face tracks, imported (a few seconds)."""
    from microgesture.data.formats.miga import import_miga_to_file
    from microgesture.data.synth import generate_dataset

    root = tmp_path_factory.mktemp("face_synth")
    generate_dataset(root / "data", subjects=2, videos_per_subject=1, seed=1, size=SIZE, seconds=8)
    import_miga_to_file(root / "data", root / "ann.pkl", protocol="synthetic-xsub", val_fraction=0.0)
    return root


def _decode(path):
    return read_frames(path, range(video_info(path).num_frames))


# ----------------------------------------------------------------------------- synthetic face tracks


def test_synthetic_face_track_files(synth):
    data = synth / "data"
    for vid in (1, 2):
        body, face = miga.rgb_path(data, vid), face_video_path(miga.rgb_path(data, vid))
        assert face.name == f"{vid:04d}_face.mp4" and face.is_file()
        b, f = video_info(body), video_info(face)
        assert (f.num_frames, f.fps, f.width, f.height) == (b.num_frames, b.fps, FACE_SIZE, FACE_SIZE)
        assert face_csv_path(face).read_text().splitlines()[0] == ",".join(HEADER)
        track = read_face_csv(face_csv_path(face))
        assert len(track) == b.num_frames
        frames = _decode(face)
        dark = frames.reshape(len(frames), -1).mean(1) < 3
        np.testing.assert_array_equal(dark, ~track.has_box)  # black exactly where there is no box
        assert track.has_box.mean() > 0.8 and not track.missing[track.score == 1.0].any()
        # The box is on the head: the true eyes and nose of the skeleton are inside it.
        sk = miga.read_skeleton(miga.skeleton_path(data, vid))[1]
        face_joints = sk[:, [0, 15, 16]]
        seen = (face_joints[..., 2] > 0) & track.has_box[:, None]
        b0, b1 = track.boxes[:, None, :2], track.boxes[:, None, 2:]
        inside = ((face_joints[..., :2] >= b0) & (face_joints[..., :2] <= b1)).all(-1)
        assert inside[seen].mean() > 0.97
        side = track.boxes[:, 2] - track.boxes[:, 0]
        assert np.allclose(side[track.has_box], (track.boxes[:, 3] - track.boxes[:, 1])[track.has_box], atol=0.02)


def test_hands_over_the_face_hide_it():
    # covering_face (class 5) covers the face with both hands: a tracker loses it.
    plan = VideoPlan(video_id=1, subject_id=1, emotion=0, classes=[5, 5, 5])
    sv = generate.synth_video(plan, seed=0, size=(192, 144))
    renderer = FaceRenderer(sv, make_face_look(0, 1))
    inside, outside = [], []
    for c, start, end in sv.segments:
        mid = (start + end) // 2
        inside.append(renderer.frame(mid)[1])
    outside.append(renderer.frame(max(sv.segments[0][1] - 10, 0))[1])
    assert min(inside) > COVERED and max(outside) < 0.05


def test_tracker_flags_bridge_short_gaps_only():
    covered = np.zeros(60, dtype=bool)
    covered[10:14] = True   # 4 frames: bridged
    covered[20:40] = True   # 20 frames at 25 fps: longer than 0.5 s, lost
    covered[57:] = True     # at the end: nothing to bridge to
    missing, drawn = tracker_flags(covered, fps=25)
    np.testing.assert_array_equal(missing, covered)
    assert drawn[10:14].all() and not drawn[20:40].any() and not drawn[57:].any()
    assert drawn[:10].all() and drawn[14:20].all() and drawn[40:57].all()


def test_emotion_cue_moves_the_mouth_corners():
    """The same subject and frame drawn with a smile and with a frown differ at the mouth, not above the eyes."""
    plan = VideoPlan(video_id=1, subject_id=3, emotion=1, classes=[1])
    sv = generate.synth_video(plan, seed=0, size=(192, 144))
    track = sv.geometry.track
    frames = {}
    for value in (-1.0, 1.0):
        track["smile"][:] = value
        track["mouth_open"][:] = 0.0
        frames[value] = FaceRenderer(sv, make_face_look(0, 3)).frame(5)[0].astype(int)
    changed = np.abs(frames[1.0] - frames[-1.0]).sum(-1) > 30
    assert changed[70:].sum() > 20          # the mouth
    assert not changed[:30].any()           # not the hair or brows (the eyes squint a little)


# ----------------------------------------------------------------------------- file format


def test_face_csv_round_trip_and_errors(tmp_path):
    path = tmp_path / "v_face.csv"
    boxes = np.array([[1, 2, 41, 42], [np.nan] * 4, [3.5, 4, 43.5, 44]])
    write_face_csv(path, boxes, [0.9, 0.0, 0.5], [False, True, True])
    track = read_face_csv(path)
    np.testing.assert_allclose(track.boxes[[0, 2]], boxes[[0, 2]])
    assert np.isnan(track.boxes[1]).all() and track.missing.tolist() == [False, True, True]
    lines = path.read_text().splitlines()
    assert lines[2] == "1,,,,,0.000,1"
    for bad, where, message in (
        (lines[:1] + ["0,1,2,3"], "line 2", "4 columns"),
        (lines[:1] + ["1" + lines[1][1:]], "line 2, frame", "expected 0"),
        (lines[:1] + ["0,,,,,0.000,0"], "line 2, missing", "no box"),
        (lines[:1] + ["0,5,2,1,42,0.9,0"], "line 2, x0..y1", "x1 > x0"),
        (["frame,x,y"] + lines[1:], "line 1", "header"),
        (lines[:1] + ["0,1,2,41,42,1.5,0"], "line 2, score", "0..1"),
    ):
        path.write_text("\n".join(bad) + "\n")
        _, issues = parse_face_csv(path)
        assert issues and issues[0][0] == where and message in issues[0][1], issues
    with pytest.raises(DataError, match="line 2, score"):
        read_face_csv(path)


# ----------------------------------------------------------------------------- annotations and validation


def test_import_fills_face_video_path_and_old_files_load(synth):
    data = load_annotations(synth / "ann.pkl")
    for record in data["videos"]:
        assert record["face_video_path"] == f"data/{record['video_id']:04d}/{record['video_id']:04d}_face.mp4"
        assert resolve_face_video_path(data, record).is_file()
    assert all(c["face_video_path"] == data["videos"][c["video_id"] - 1]["face_video_path"] for c in data["annotations"])
    # A file written before face tracks existed (no key) loads; its clips have no face track.
    raw = pickle.loads((synth / "ann.pkl").read_bytes())
    for record in raw["videos"]:
        del record["face_video_path"]
    old = synth / "old.pkl"  # beside the data, so its relative video paths still resolve
    old.write_bytes(pickle.dumps(raw))
    assert all(c["face_video_path"] is None for c in load_annotations(old)["annotations"])
    assert validate_path(old) == []


def test_validate_checks_face_tracks(synth, tmp_path):
    assert validate_path(synth / "data") == []
    assert validate_path(synth / "ann.pkl") == []
    copy = tmp_path / "data"
    shutil.copytree(synth / "data", copy)
    csv_file = face_csv_path(face_video_path(miga.rgb_path(copy, 1)))
    lines = csv_file.read_text().splitlines()
    csv_file.write_text("\n".join(lines[:-5]) + "\n")  # rows for fewer frames than the video
    problems = [str(p) for p in validate_path(copy)]
    assert any(str(csv_file) in p and f"{len(lines) - 6} rows" in p for p in problems), problems
    face_video_path(miga.rgb_path(copy, 2)).unlink()  # a CSV without its video
    problems = [str(p) for p in validate_path(copy)]
    assert any("0002_face.mp4" in p and "not found" in p for p in problems), problems
    raw = pickle.loads((synth / "ann.pkl").read_bytes())
    raw["videos"][0]["face_video_path"] = "data/0001/elsewhere.mp4"
    bad = synth / "bad_face.pkl"
    bad.write_bytes(pickle.dumps(raw))
    problems = [str(p) for p in validate_path(bad)]
    assert any("videos[0]" in p and "face_video_path" in p for p in problems), problems


# ----------------------------------------------------------------------------- the face modality


def test_face_modality_shapes_frames_and_missing(synth):
    data = load_annotations(synth / "ann.pkl")
    clip = data["annotations"][1]
    pipeline = build_pipeline(["joint", "face"], layout="miga35", num_frames=16, train=False, video=FACE_INPUT,
                              video_root=data["meta"]["video_root"])
    sample = pipeline(dict(clip))
    face, missing = sample["face"], sample["face_missing"]
    assert face.shape == (3, 8, FACE_SIZE, FACE_SIZE) and face.dtype == np.float32
    assert missing.shape == (8,) and missing.dtype == bool
    assert set(sample["face_frame_inds"]) <= set(sample["frame_inds"])
    # The crops are the face track's frames start + inds, normalised as SwinFace does.
    path = resolve_face_video_path(data, clip)
    raw = read_frames(path, (clip["start_frame"] + sample["face_frame_inds"]).tolist())
    np.testing.assert_allclose(face, (raw.transpose(3, 0, 1, 2) / 255.0 - 0.5) / 0.5, atol=1e-5)
    rows = read_face_csv(face_csv_path(path))
    np.testing.assert_array_equal(missing, rows.missing[clip["start_frame"] + sample["face_frame_inds"]])
    # K test clips and another crop size.
    multi = build_pipeline(["face"], layout="miga35", num_frames=16, train=False, num_clips=3,
                           video={"face": VideoInput(4, 56, **SWINFACE_NORM)}, video_root=data["meta"]["video_root"])
    out = multi(dict(clip))
    assert out["face"].shape == (3, 3, 4, 56, 56) and out["face_missing"].shape == (3, 4)


def test_face_flips_with_the_skeleton(synth):
    data = load_annotations(synth / "ann.pkl")
    clip = data["annotations"][0]
    root = data["meta"]["video_root"]
    step = FaceClip(FACE_SIZE, 4, (0.0,) * 3, (1.0,) * 3, root)
    inds = np.arange(0, 16, 2)
    plain = step(dict(clip, frame_inds=inds, flipped=False))["face"]
    flipped = step(dict(clip, frame_inds=inds, flipped=True))["face"]
    np.testing.assert_array_equal(flipped, plain[..., ::-1])
    train = build_pipeline(["joint", "face"], layout="miga35", num_frames=16, train=True, video=FACE_INPUT,
                           video_root=root, augment=Augment(flip_p=1.0))
    sample = train(dict(clip), np.random.default_rng(0))
    assert sample["flipped"]
    step8 = FaceClip(FACE_SIZE, 8, **SWINFACE_NORM, root=root)
    unflipped = step8(dict(clip, frame_inds=sample["frame_inds"], flipped=False))["face"]
    np.testing.assert_array_equal(sample["face"], unflipped[..., ::-1])


def test_clip_dataset_passes_face_missing(synth):
    data = load_annotations(synth / "ann.pkl")
    clips = data["annotations"][:3]
    pipeline = build_pipeline(["joint", "face"], layout="miga35", num_frames=16, train=False, video=FACE_INPUT,
                              video_root=data["meta"]["video_root"])
    item = ClipDataset(clips, pipeline, ["joint", "face"])[0]
    assert item["face"].shape == (3, 8, FACE_SIZE, FACE_SIZE) and item["face"].dtype == torch.float32
    assert item["face_missing"].dtype == torch.bool and item["face_missing"].shape == (8,)
    batch = torch.utils.data.default_collate([item, ClipDataset(clips, pipeline, ["joint", "face"])[1]])
    assert batch["face_missing"].shape == (2, 8)


def test_face_errors_name_the_clip_and_file(synth, tmp_path):
    data = load_annotations(synth / "ann.pkl")
    clip = dict(data["annotations"][0], frame_inds=np.arange(8))
    step = FaceClip(FACE_SIZE, 4, **SWINFACE_NORM, root=data["meta"]["video_root"])
    with pytest.raises(DataError, match=f"clip {clip['frame_dir']} .* has no face track") as err:
        step(dict(clip, face_video_path=None))
    assert str(resolve_face_video_path(data, clip)) in str(err.value)  # the file it looked for
    gone = tmp_path / "0009_face.mp4"
    with pytest.raises(DataError, match="face-track video not found") as err:
        step(dict(clip, face_video_path=str(gone)))
    assert str(gone) in str(err.value) and clip["frame_dir"] in str(err.value)
    lonely = tmp_path / "0001_face.mp4"
    shutil.copy(resolve_face_video_path(data, clip), lonely)
    with pytest.raises(DataError, match="face-track CSV not found") as err:
        step(dict(clip, face_video_path=str(lonely)))
    assert str(face_csv_path(lonely)) in str(err.value)
    total = video_info(lonely).num_frames
    with pytest.raises(DataError, match="shorter than the source video's labels"):
        step(dict(clip, start_frame=total - 2))


def test_face_track_sheet_for_the_demo(synth, tmp_path):
    from microgesture.apps.faces import face_track_sheet

    line = face_track_sheet(synth / "ann.pkl", tmp_path / "sheet.png", per_emotion=1, frames=4)
    assert line.startswith("face tracks: 2 of 2 videos") and "% without a face" in line
    import cv2

    sheet = cv2.imread(str(tmp_path / "sheet.png"))
    assert sheet.shape == (2 * (FACE_SIZE + 4), 150 + 4 * FACE_SIZE, 3)  # one won, one lost video
    raw = pickle.loads((synth / "ann.pkl").read_bytes())
    for record in raw["videos"]:
        record.pop("face_video_path")
    bare = synth / "bare.pkl"
    bare.write_bytes(pickle.dumps(raw))
    with pytest.raises(DataError, match="no video record has a face track"):
        face_track_sheet(bare, tmp_path / "none.png")


@pytest.mark.slow
def test_face_probe_quick(tmp_path):
    import json

    from conftest import run_script

    run_script("face_probe.py", "--quick", "--json", str(tmp_path / "p.json"), timeout=900)
    results = json.loads((tmp_path / "p.json").read_text())["results"]
    assert set(results) == {"face", "gestures (skeleton statistics)", "gestures (+ true MG classes)",
                            "face + gestures (skeleton)", "face + gestures (+ MG classes)"}
    for r in results.values():
        assert 0.0 <= r["video_auc"] <= 1.0 and 0.0 <= r["clip_balanced"] <= 1.0 and r["clips"] > 50
