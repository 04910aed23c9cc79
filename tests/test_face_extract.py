"""Face extraction from real and synthetic video: detectors, the tracker's policies, crops, resuming, the CLI."""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest

from microgesture.data.faces import FaceSettings, extract_faces, extract_video
from microgesture.data.faces.crop import aligned_crop, face_from_joints, face_joint_indices, outside_share
from microgesture.data.faces.detect import Detection, HaarDetector, make_detector, mediapipe_available
from microgesture.data.faces.extract import MANIFEST, find_videos, frame_runs
from microgesture.data.faces.track import SubjectTracker, TrackSettings
from microgesture.data.formats import miga
from microgesture.data.formats.facetrack import FACE_SIZE, face_csv_path, face_video_path, read_face_csv
from microgesture.data.video import read_frames, video_info, write_video
from microgesture.errors import ConfigError, DataError

needs_mediapipe = pytest.mark.skipif(not mediapipe_available(), reason="mediapipe is not installed")


def _rgb(path: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


def _paste(canvas: np.ndarray, img: np.ndarray, x: int, y: int) -> np.ndarray:
    """`img` placed with its top-left at (x, y), clipped to the canvas."""
    out = canvas.copy()
    h, w = img.shape[:2]
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, out.shape[1]), min(y + h, out.shape[0])
    out[y0:y1, x0:x1] = img[y0 - y:y1 - y, x0 - x:x1 - x]
    return out


def _video(path: Path, frames) -> Path:
    write_video(path, frames, fps=25)
    return path


def _run(video: Path, out: Path, **kw) -> tuple[list[str], object]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = extract_video(video, out, FaceSettings(**kw))
    return [str(w.message) for w in caught if str(video) in str(w.message)], result


# ----------------------------------------------------------------------------- the tracker alone


def _det(x, y, side=40.0, score=0.9):
    return Detection(np.array([x - side / 2, y - side / 2, x + side / 2, y + side / 2]), score)


def _track(faces_at, n=60, **kw) -> tuple[SubjectTracker, list]:
    tracker = SubjectTracker(n, (320, 240), TrackSettings(template=False, **kw))
    out = []
    for i in range(n):
        faces = faces_at(i) if tracker.is_detection_frame(i) else None
        tracker.push(i, None, faces)
        out += tracker.pop_ready()
    return tracker, out + tracker.pop_ready(final=True)


def test_tracker_bridges_short_gaps_marks_long_ones_missing():
    # Detections every 5 frames; the face is missed at frame 20 (bridged) and 35..50 (lost: 20 frames > 12).
    def faces(i):
        return [] if i == 20 or 35 <= i <= 50 else [_det(100 + i, 120)]

    tracker, boxes = _track(faces, n=60, stride=5, max_gap=12, smooth=0, margin=1.0)
    assert [b.index for b in boxes] == list(range(60))
    has = np.array([b.has_box for b in boxes])
    missing = np.array([b.missing for b in boxes])
    assert has[:31].all() and not has[31:55].any() and has[55:].all()
    assert missing[16:20].all() and missing[21:25].all() and not missing[:16].any() and not missing[25:31].any()
    assert missing[31:55].all()
    assert tracker.report.bridged_failures == [20] and tracker.report.restarts == [55]
    # Between detections the box is interpolated: frame 12 lies between 10 and 15.
    np.testing.assert_allclose(boxes[12].centre, [112, 120])
    assert boxes[12].side == pytest.approx(40)


def test_tracker_keeps_its_subject_among_several_faces():
    # The subject sits left; a bigger face enters on the right at frame 20 and stays.
    def faces(i):
        out = [_det(80 + 0.2 * i, 120, side=40)]
        return out + [_det(250, 100, side=70)] if i >= 20 else out

    tracker, boxes = _track(faces, n=50, stride=5, max_gap=12, smooth=2)
    xs = np.array([b.centre[0] for b in boxes])
    assert (xs < 100).all()  # never jumps to the bigger face
    assert tracker.report.several == list(range(20, 50, 5)) + [49]
    # A new track starts at the largest face that is not too far from the centre.
    _, first = _track(lambda i: [_det(40, 40, side=30), _det(170, 130, side=50)], n=10, stride=5)
    assert first[0].centre[0] == pytest.approx(170)


def test_tracker_expects_a_fast_face_where_it_is_going():
    # Accelerating: 10, 30, 50, 70, 90 px between detections of a 60 px face; from the third on,
    # the face is out of reach of its last box, but near where its speed takes it.
    def faces(i):
        return [_det(20 + 0.4 * i * i, 120, side=60)]

    tracker, boxes = _track(faces, n=26, stride=5, max_gap=12, smooth=0)
    assert all(b.has_box and not b.missing for b in boxes)
    assert tracker.report.failed == [] and tracker.report.restarts == []
    assert boxes[25].centre[0] == pytest.approx(20 + 0.4 * 625)


def test_tracker_ignores_tiny_faces_and_smooths():
    rng = np.random.default_rng(0)
    jitter = {i: rng.normal(0, 3, 2) for i in range(80)}

    def faces(i):
        return [_det(150 + jitter[i][0], 120 + jitter[i][1], side=40), _det(20, 20, side=8)]

    tracker, boxes = _track(faces, n=80, stride=1, max_gap=12, smooth=3)
    raw = np.array([150 + jitter[i][0] for i in range(80)])
    smooth = np.array([b.centre[0] for b in boxes])
    assert np.std(smooth - 150) < 0.6 * np.std(raw - 150)
    assert tracker.report.tiny == list(range(80)) and tracker.report.several == []


def test_frame_runs_text():
    assert frame_runs([3, 4, 5, 7, 9, 10]) == "3-5, 7, 9-10"
    assert frame_runs(range(0, 20, 2), limit=2) == "0, 2 and 8 more runs"


# ----------------------------------------------------------------------------- crops and skeleton boxes


def test_aligned_crop_levels_and_pads():
    frame = np.zeros((200, 300, 3), np.uint8)
    cv2.line(frame, (100, 90), (200, 110), (255, 255, 255), 3)  # a tilted "eye line"
    angle = np.arctan2(20, 100)
    crop = aligned_crop(frame, np.array([150.0, 100.0]), 120.0, angle)
    rows = np.flatnonzero(crop[..., 0].max(1) > 128)
    assert crop.shape == (FACE_SIZE, FACE_SIZE, 3) and rows.max() - rows.min() <= 6  # level after rotation
    unturned = np.flatnonzero(aligned_crop(frame, np.array([150.0, 100.0]), 120.0, 0.0)[..., 0].max(1) > 128)
    assert unturned.max() - unturned.min() >= 18
    big = aligned_crop(np.full((2000, 2000, 3), 200, np.uint8), np.array([1000.0, 1000.0]), 1500.0, 0.0)
    assert abs(int(big.mean()) - 200) <= 1  # shrunk by area, no black border
    edge = aligned_crop(np.full((100, 100, 3), 255, np.uint8), np.array([0.0, 50.0]), 60.0, 0.0)
    assert edge[:, :50].max() == 0 and edge[:, 60:].min() == 255
    assert outside_share(np.array([0.0, 50.0]), 60.0, 0.0, (100, 100)) == pytest.approx(0.5)


def test_face_box_from_skeleton_joints():
    index = face_joint_indices("miga35")
    joints, scores = np.zeros((35, 2)), np.zeros(35)
    joints[[15, 16, 0, 17, 18]] = [[90, 50], [110, 50], [100, 58], [80, 52], [120, 52]]
    scores[[15, 16, 0, 17, 18]] = 0.9
    face = face_from_joints(joints, scores, index)
    assert face.box[0] < 90 and face.box[2] > 110 and face.box[1] < 50 < face.box[3]
    assert face.side == pytest.approx(60)  # 3 eye distances (> 1.1 ear distances = 44)
    scores[16] = 0
    assert face_from_joints(joints, scores, index) is None
    with pytest.raises(ConfigError, match="no eye joints"):
        face_joint_indices("ntu25")


# ----------------------------------------------------------------------------- real images and videos


@needs_mediapipe
def test_a_face_is_found_where_a_face_is(shared_data, tmp_path):
    img = _rgb(shared_data / "images" / "face_crop_112.jpg")
    faces = make_detector("mediapipe").detect(img)
    assert len(faces) == 1 and faces[0].score > 0.5
    cx, cy = faces[0].centre
    assert abs(cx - img.shape[1] / 2) < 0.2 * img.shape[1] and abs(cy - img.shape[0] / 2) < 0.25 * img.shape[0]
    assert len(HaarDetector().detect(img)) == 1
    # The photo moving across a 320x240 frame: every frame has the face, the box follows it.
    canvas = np.full((240, 320, 3), (40, 70, 110), np.uint8)
    path = _video(tmp_path / "moving.mp4", (_paste(canvas, img, 20 + 4 * i, 40) for i in range(30)))
    notes, result = _run(path, tmp_path / "moving_face.mp4")
    track = read_face_csv(face_csv_path(tmp_path / "moving_face.mp4"))
    assert track.has_box.all() and not track.missing.any() and notes == []
    centres = (track.boxes[:, :2] + track.boxes[:, 2:]) / 2
    truth = np.array([[20 + 4 * i + img.shape[1] / 2, 40 + img.shape[0] / 2] for i in range(30)])
    assert np.abs(centres - truth).max() < 0.15 * img.shape[1]


@needs_mediapipe
def test_two_faces_found_and_the_policy_applied(shared_data, tmp_path):
    img = _rgb(shared_data / "images" / "two_people.jpg")
    assert len(make_detector("mediapipe").detect(img)) == 2
    # The right-hand person shrunk to 60 %: the track must start at (and keep) the larger face,
    # on whichever side it is.
    half = cv2.resize(img, (img.shape[1] // 2, img.shape[0] // 2), interpolation=cv2.INTER_AREA)
    cut = half.shape[1] // 2
    right = cv2.resize(half[:, cut:], None, fx=0.6, fy=0.6, interpolation=cv2.INTER_AREA)
    frame = np.zeros((360, 480, 3), np.uint8)
    frame[:half.shape[0], :cut] = half[:, :cut]
    frame[:right.shape[0], cut:cut + right.shape[1]] = right
    for name, clip in (("big_left", frame), ("big_right", np.ascontiguousarray(frame[:, ::-1]))):
        faces = make_detector("mediapipe").detect(clip)
        assert len(faces) == 2, name
        big = max(faces, key=lambda d: d.side)
        path = _video(tmp_path / f"{name}.mp4", (clip for _ in range(12)))
        notes, _ = _run(path, tmp_path / f"{name}_face.mp4")
        assert any("several faces in frames 0, 5, 10-11" in n for n in notes), notes
        track = read_face_csv(face_csv_path(tmp_path / f"{name}_face.mp4"))
        centres = (track.boxes[:, :2] + track.boxes[:, 2:]) / 2
        assert track.has_box.all() and np.linalg.norm(centres - big.centre, axis=1).max() < 0.3 * big.side, name


@needs_mediapipe
@pytest.mark.slow
def test_real_videos(shared_data, tmp_path):
    for name, share in (("talking_faces.mp4", 0.8), ("face_touch_closeup.avi", 0.7)):
        src = shared_data / "videos" / name
        out = tmp_path / face_video_path(src).name
        notes, result = _run(src, out)
        src_info, info = video_info(src), video_info(out)
        assert (info.num_frames, info.width, info.height) == (src_info.num_frames, FACE_SIZE, FACE_SIZE)
        assert info.fps == pytest.approx(src_info.fps, rel=1e-3)
        track = read_face_csv(face_csv_path(out))
        assert track.has_box.mean() > share, (name, track.has_box.mean())
        assert result.with_face == int(track.has_box.sum())
        # Where the detector sees one face on a frame, the track's box is on it.
        detector = make_detector("mediapipe")
        frames = np.flatnonzero(track.has_box & ~track.missing)[::25]
        for f, frame in zip(frames, read_frames(src, frames.tolist())):
            faces = detector.detect(frame)
            if len(faces) == 1:
                centre = (track.boxes[f, :2] + track.boxes[f, 2:]) / 2
                assert np.linalg.norm(centre - faces[0].centre) < 0.35 * faces[0].side, (name, f)
        if name == "talking_faces.mp4":  # scene cuts, an audience: several faces, restarts
            assert any("several faces" in n for n in notes) and any("started again" in n for n in notes)


# ----------------------------------------------------------------------------- synthetic video and bad input


@pytest.fixture(scope="module")
def synth_big(tmp_path_factory):
    """A synthetic video at 640x480 (faces about 90 pixels high) with its true face track."""
    from microgesture.data.synth import generate_dataset

    root = tmp_path_factory.mktemp("faces_big") / "data"
    generate_dataset(root, subjects=1, videos_per_subject=1, seed=2, size=(640, 480), seconds=5)
    return root


@needs_mediapipe
def test_synthetic_video_matches_the_true_face_box(synth_big, tmp_path):
    video = miga.rgb_path(synth_big, 1)
    truth = read_face_csv(face_csv_path(face_video_path(video)))
    for boxes in ("detector", "skeleton"):
        out = tmp_path / boxes / "0001_face.mp4"
        settings = FaceSettings(boxes=boxes)
        skeleton = miga.read_skeleton(miga.skeleton_path(synth_big, 1)) if boxes == "skeleton" else None
        extract_video(video, out, settings, skeleton=skeleton, warn=False)
        track = read_face_csv(face_csv_path(out))
        both = track.has_box & truth.has_box
        assert both.mean() > 0.85, boxes
        centre = (track.boxes[both, :2] + track.boxes[both, 2:]) / 2
        true_centre = (truth.boxes[both, :2] + truth.boxes[both, 2:]) / 2
        side = truth.boxes[both, 2] - truth.boxes[both, 0]
        assert np.median(np.linalg.norm(centre - true_centre, axis=1) / side) < 0.2, boxes
        ratio = (track.boxes[both, 2] - track.boxes[both, 0]) / side
        assert 0.6 < np.median(ratio) < 1.6, boxes


@needs_mediapipe
def test_bad_input_policies(synth_big, tmp_path):
    video = miga.rgb_path(synth_big, 1)
    frames = read_frames(video, range(40))
    truth = read_face_csv(face_csv_path(face_video_path(video)))
    wall = np.empty_like(frames[0])
    wall[:] = frames[0][5, 5]  # the backdrop's colour: no face anywhere
    centre_y = (truth.boxes[0, 1] + truth.boxes[0, 3]) / 2
    up = int(centre_y - 0.2 * (truth.boxes[0, 3] - truth.boxes[0, 1]))  # the face's centre near the top edge
    cases = {
        "none": ([wall] * 30, {}),
        "flicker": ([wall if i % 10 == 0 else f for i, f in enumerate(frames)], {}),
        "tiny": (list(frames[:20]), {"min_face": 400}),
        "edge": ([np.ascontiguousarray(np.concatenate([f[up:], np.repeat(f[-1:], up, 0)])) for f in frames[:20]], {}),
    }
    for name, (clip, kw) in cases.items():
        path = _video(tmp_path / f"{name}.mp4", iter(clip))
        notes, _ = _run(path, tmp_path / f"{name}_face.mp4", **kw)
        track = read_face_csv(face_csv_path(tmp_path / f"{name}_face.mp4"))
        assert len(track) == len(clip)
        if name == "none":
            assert notes and "no face found in any of its 30 frames" in notes[0] and not track.has_box.any()
        elif name == "flicker":  # the face vanishes on frames 0, 10, 20, 30: detections there fail
            assert any("detections failed in frames 10, 20, 30 " in n for n in notes), notes
            assert track.has_box[5:].all() and not track.has_box[:5].any()  # nothing before the first detection
            assert track.missing[6:15].all() and track.missing[16:25].all()  # bridged over frames 10 and 20
            assert not track.missing[[5, 15, 25, 35, 36, 39]].any()
        elif name == "tiny":
            assert any("faces smaller than 400 pixels ignored in frames 0, 5, 10, 15, 19" in n for n in notes), notes
            assert not track.has_box.any()
        else:
            assert track.has_box.mean() > 0.5 and any("at the frame edge" in n for n in notes), notes


def test_haar_fallback_when_mediapipe_is_absent(monkeypatch):
    from microgesture.data.faces import detect

    monkeypatch.setattr(detect, "mediapipe_available", lambda: False)
    with pytest.warns(UserWarning, match="Haar cascade"):
        detector = detect.make_detector("auto")
    assert detector.name == "haar"
    with pytest.raises(ConfigError, match="needs the mediapipe package"):
        detect.make_detector("mediapipe")
    with pytest.raises(ConfigError, match="detector must be one of"):
        detect.make_detector("dlib")


# ----------------------------------------------------------------------------- folders, manifest, resuming, CLI


@pytest.fixture()
def small_folder(synth_big, tmp_path):
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    frames = read_frames(miga.rgb_path(synth_big, 1), range(20))
    _video(folder / "a.mp4", iter(frames))
    _video(folder / "sub" / "b.mp4", iter(frames[::-1]))
    return folder


@pytest.mark.filterwarnings("ignore:.*no face found")  # Haar does not see the drawn faces; not the point here
def test_folder_resume_settings_and_skeleton_option(small_folder, tmp_path):
    out = tmp_path / "faces"
    settings = FaceSettings(detector="haar", stride=3)  # Haar: runs without MediaPipe too
    first = extract_faces(small_folder, out, settings)
    assert [Path(r.face_video) for r in first] == [out / "a_face.mp4", out / "sub" / "b_face.mp4"]
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["settings"]["detector"] == "haar" and manifest["settings"]["stride"] == 3
    assert set(manifest["videos"]) == {"a.mp4", "sub/b.mp4"}
    assert manifest["videos"]["a.mp4"]["source"]["size"] == os.path.getsize(small_folder / "a.mp4")
    stamp = (out / "a_face.mp4").stat().st_mtime_ns
    again = extract_faces(small_folder, out, settings)
    assert all(r.skipped for r in again) and (out / "a_face.mp4").stat().st_mtime_ns == stamp
    os.utime(small_folder / "a.mp4", ns=(1, 1))  # a changed source is done again
    third = extract_faces(small_folder, out, settings)
    assert [r.skipped for r in third] == [False, True]
    with pytest.raises(DataError, match="other settings \\(stride differ\\)"):
        extract_faces(small_folder, out, FaceSettings(detector="haar", stride=4))
    assert not any(r.skipped for r in extract_faces(small_folder, out, FaceSettings(detector="haar", stride=4),
                                                    overwrite=True))
    with pytest.raises(DataError, match="light_hand.csv"):
        extract_faces(small_folder, tmp_path / "sk", FaceSettings(boxes="skeleton"))
    with pytest.raises(ConfigError, match="stride 0"):
        extract_faces(small_folder, out, FaceSettings(stride=0))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no video files"):
        find_videos(tmp_path / "empty")


def test_interrupted_video_leaves_no_files(small_folder, tmp_path, monkeypatch):
    from microgesture.data.faces import extract

    def broken(*args, **kwargs):
        yield 0, np.zeros((480, 640, 3), np.uint8)  # iter_frames yields (index, frame) pairs
        raise KeyboardInterrupt

    monkeypatch.setattr(extract, "iter_frames", broken)
    with pytest.raises(KeyboardInterrupt):
        extract_faces(small_folder, tmp_path / "out", FaceSettings(detector="haar"))
    assert not any(p.suffix in (".mp4", ".csv") for p in (tmp_path / "out").rglob("*"))


def test_cli_extract_faces_in_place(synth_big, tmp_path, capsys):
    import shutil

    from microgesture.cli import main

    data = tmp_path / "data"
    shutil.copytree(synth_big, data)
    for p in data.rglob("*_face.*"):
        p.unlink()
    assert main(["extract-faces", str(data), "--detector", "haar", "--stride", "10"]) == 0
    out = capsys.readouterr().out
    assert "[1/1]" in out and "0001_face.mp4" in out
    assert face_video_path(miga.rgb_path(data, 1)).is_file()
    assert main(["extract-faces", str(data), "--detector", "haar", "--stride", "10"]) == 0
    assert "already done" in capsys.readouterr().out
    assert main(["extract-faces", str(tmp_path / "nowhere")]) == 2
    assert "not found" in capsys.readouterr().err


@pytest.mark.slow
def test_bench_faces_quick(tmp_path):
    from conftest import run_script

    run_script("bench_faces.py", "--quick", "--json", str(tmp_path / "f.json"), timeout=600)
    rows = json.loads((tmp_path / "f.json").read_text())["rows"]
    assert {r["section"] for r in rows} >= {"decode", "detector", "extract synthetic"}
    for r in rows:
        assert np.isfinite(r["fps"]) and r["fps"] > 0 and r["cpu_fps"] > 0
    extract = [r for r in rows if r["section"] == "extract synthetic"]
    if mediapipe_available():  # the drawn faces are found, and the boxes sit on them
        assert extract[0]["with_box"] > 0.9 and extract[0]["err_median"] < 0.2
