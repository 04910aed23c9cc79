"""The embedded synthetic dataset: layout, coverage, determinism, drawn pose, safety of out_dir."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from microgesture.data.formats import miga
from microgesture.domain.classes import NUM_CLASSES, class_index_from_raw
from microgesture.domain.layouts import BODY25_LOWER, MIGA35
from microgesture.data.synth import SynthSummary, generate, generate_dataset
from microgesture.data.synth.body import FINGER_TIPS, J
from microgesture.data.synth.motions import MOTIONS
from microgesture.data.synth.schedule import VideoPlan, class_distribution
from microgesture.errors import ConfigError, DataError

TINY = dict(subjects=2, videos_per_subject=1, seconds=6.0, size=(96, 72))


def _has_video_writer() -> bool:
    try:
        from microgesture.data.video import write_video  # noqa: F401
    except ImportError:
        return False
    return True


VIDEO = _has_video_writer()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> tuple[Path, SynthSummary]:
    out = tmp_path_factory.mktemp("synth") / "tiny"
    return out, generate_dataset(out, seed=3, video=VIDEO, **TINY)


def _skeleton(root: Path, vid: int) -> np.ndarray:
    return np.loadtxt(miga.skeleton_path(root, vid), delimiter=",", ndmin=2)


def _labels(root: Path, vid: int) -> np.ndarray:
    return np.loadtxt(miga.label_path(root, vid), delimiter=",", dtype=int, ndmin=2)


def _videos(root: Path) -> list[dict[str, str]]:
    with open(root / "videos.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def test_layout_columns_and_labels(tiny):
    root, summary = tiny
    rows = _videos(root)
    assert list(rows[0]) == ["video_id", "subject_id", "emotion"]
    assert len(rows) == summary.videos == 2
    assert {r["emotion"] for r in rows} == {"win", "lose"}  # at least one of each with >= 2 videos
    clips = frames = 0
    for row in rows:
        vid = int(row["video_id"])
        sk = _skeleton(root, vid)
        assert sk.shape[1] == MIGA35.num_joints * 3 + 1
        np.testing.assert_array_equal(sk[:, 0], np.arange(len(sk)))
        joints = sk[:, 1:].reshape(len(sk), MIGA35.num_joints, 3)
        assert not joints[:, list(BODY25_LOWER)].any()
        missed = joints[..., 2] == 0
        assert not joints[missed][:, :2].any()  # a missed joint is all zeros
        seen = ~missed
        assert seen[:, [J["neck"], J["r_shoulder"], J["l_wrist"]]].mean() > 0.8
        assert (joints[..., 2] <= 1).all()
        assert (joints[seen][:, 0] <= TINY["size"][0]).all() and (joints[seen][:, 1] <= TINY["size"][1]).all()
        labels = _labels(root, vid)
        assert labels.shape[1] == 3
        for raw, start, end in labels:
            class_index_from_raw(int(raw))
            assert 0 <= start <= end < len(sk)
            assert 25 <= end - start + 1 <= 100  # 1-4 s at 25 fps
        assert (labels[1:, 1] > labels[:-1, 2]).all()  # instances do not overlap
        clips += len(labels)
        frames += len(sk)
    assert (summary.clips, summary.frames) == (clips, frames)
    meta = json.loads((root / "synth.json").read_text())
    assert meta["generator"] == "microgesture-synth" and meta["version"] == 2
    assert (meta["width"], meta["height"], meta["fps"], meta["seed"]) == (96, 72, 25, 3)
    assert meta["video"] is VIDEO and meta["subjects"] == 2 and meta["videos_per_subject"] == 1


@pytest.mark.skipif(not VIDEO, reason="microgesture.data.video.write_video is not available")
def test_video_frames_match_skeleton_rows(tiny):
    from microgesture.data.video import video_info

    root, _ = tiny
    for row in _videos(root):
        vid = int(row["video_id"])
        info = video_info(miga.rgb_path(root, vid))
        assert info.num_frames == len(_skeleton(root, vid))
        assert (info.width, info.height, info.fps) == (96, 72, 25)


def test_same_seed_same_bytes_other_seed_differs(tiny, tmp_path):
    root, _ = tiny
    again = generate_dataset(tmp_path / "again", seed=3, video=VIDEO, **TINY).out_dir
    files = sorted(p.relative_to(root) for p in root.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file())
    assert any(f.suffix == ".mp4" for f in files) == VIDEO
    for rel in files:
        assert (root / rel).read_bytes() == (again / rel).read_bytes(), rel
    other = generate_dataset(tmp_path / "other", seed=4, video=False, **TINY).out_dir
    assert miga.skeleton_path(other, 1).read_bytes() != miga.skeleton_path(root, 1).read_bytes()


def test_every_class_occurs_and_emotions_shift_classes(tmp_path):
    summary = generate_dataset(tmp_path / "mid", subjects=4, videos_per_subject=2, seconds=40.0,
                               video=False, size=(96, 72))
    found = np.zeros(NUM_CLASSES, dtype=int)
    for row in _videos(summary.out_dir):
        for raw, _, _ in _labels(summary.out_dir, int(row["video_id"])):
            found[class_index_from_raw(int(raw))] += 1
    assert (found > 0).all(), np.flatnonzero(found == 0)
    assert found.tolist() == summary.clips_per_class
    assert summary.win_videos > summary.lose_videos >= 1
    adaptor = np.array([m.kind == "adaptor" for m in MOTIONS])
    assert class_distribution(0)[adaptor].sum() > class_distribution(1)[adaptor].sum() + 0.1


def test_drawn_pose_is_the_true_skeleton():
    plan = VideoPlan(video_id=1, subject_id=2, emotion=1, classes=list(range(NUM_CLASSES)))
    sv = generate.synth_video(plan, seed=0, size=(128, 96))
    skin = np.array(sv.look.skin)
    joints, behind, u = sv.geometry.joints, sv.geometry.behind, sv.geometry.scale
    hits = misses_elsewhere = total = 0
    for f, img in enumerate(sv.frames()):
        assert img.shape == (96, 128, 3) and img.dtype == np.uint8
        for k, side in enumerate("rl"):
            if behind[f, k]:
                continue
            for j in (J[f"{side}_wrist"], *FINGER_TIPS[side]):
                x, y = np.round(joints[f, j]).astype(int)
                hits += bool((img[y, x] == skin).all())
                # The same check a little below the joint must mostly fail: the test can fail.
                x2, y2 = np.round(joints[f, j] + [0.0, 0.7 * u]).astype(int)
                misses_elsewhere += not (0 <= y2 < 96 and (img[y2, x2] == skin).all())
                total += 1
    assert total > 1000
    assert hits / total > 0.99
    assert misses_elsewhere / total > 0.7
    # The CSV is the same pose seen by a noisy detector.
    seen = sv.detections()
    ok = seen[..., 2] > 0
    err = np.linalg.norm(seen[..., :2] - joints, axis=-1)[ok]
    assert np.median(err) < 3 * sv.subject.noise_px + 0.5


def test_refuses_non_empty_out_dir_and_overwrites_on_request(tmp_path):
    out = tmp_path / "data"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(DataError, match="not empty") as err:
        generate_dataset(out, video=False, **TINY)
    assert str(out) in str(err.value)
    assert (out / "keep.txt").read_text() == "mine"
    summary = generate_dataset(out, video=False, overwrite=True, **TINY)
    assert summary.out_dir == out and not (out / "keep.txt").exists()
    assert (out / "videos.csv").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]  # no temporary folders left


def test_interrupted_run_leaves_nothing(tmp_path, monkeypatch):
    calls = []

    def fail_second(sv, root, video):
        calls.append(sv.plan.video_id)
        if len(calls) == 2:
            raise KeyboardInterrupt
        real(sv, root, video)

    real = generate.write_video_files
    monkeypatch.setattr(generate, "write_video_files", fail_second)
    with pytest.raises(KeyboardInterrupt):
        generate_dataset(tmp_path / "data", video=False, **TINY)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("bad", [dict(size=(95, 72)), dict(size=(32, 24)), dict(subjects=0), dict(seconds=0)])
def test_bad_settings_raise_config_error(tmp_path, bad):
    with pytest.raises(ConfigError):
        generate_dataset(tmp_path / "x", video=False, **{**TINY, **bad})


def test_generated_folder_validates_clean(tiny):
    from microgesture.data.formats.validate import validate_path

    root, _ = tiny
    assert validate_path(root) == []


@pytest.fixture(scope="module")
def default_skeletons(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth_default") / "d"
    return out, generate_dataset(out, seed=0, video=False)  # the default dataset, skeletons only


def test_default_has_every_class_with_a_long_tail(default_skeletons):
    out, summary = default_skeletons
    counts = np.array(summary.clips_per_class)
    assert len(counts) == NUM_CLASSES and counts.min() >= 3
    assert counts.argmax() == NUM_CLASSES - 1  # illustrative is the most frequent, as in iMiGUE
    assert counts.max() >= 5 * counts.min()
    assert 500 <= summary.clips <= 1200


def test_subjects_differ(default_skeletons):
    """Placement, body size and detector dropout vary by subject: a cross-subject split is a shift."""
    out, _ = default_skeletons
    first_video: dict[int, int] = {}
    for row in _videos(out):
        first_video.setdefault(int(row["subject_id"]), int(row["video_id"]))
    neck_x, width, dropout = [], [], []
    upper = [0, 1, 2, 3, 4, 5, 6, 7, *range(25, 35)]
    for vid in first_video.values():
        joints = _skeleton(out, vid)[:, 1:].reshape(-1, MIGA35.num_joints, 3)
        ok = (joints[:, 1, 2] > 0) & (joints[:, 2, 2] > 0) & (joints[:, 5, 2] > 0)
        neck_x.append(np.median(joints[ok, 1, 0]))
        width.append(np.median(np.abs(joints[ok, 2, 0] - joints[ok, 5, 0])))
        dropout.append((joints[:, upper, 2] == 0).mean())
    assert len(first_video) == 12
    assert max(neck_x) - min(neck_x) > 10  # pixels, in a 192-pixel-wide frame
    assert max(width) > 1.1 * min(width)
    assert max(dropout) > 3 * min(dropout)


def test_two_runs_on_a_fresh_root_generate_the_dataset_once(tmp_path, monkeypatch, capsys):
    """The second of two runs started together waits for the first's dataset instead of writing into
    the same folder (it used to fail with "output folder is not empty", or overwrite it)."""
    import threading
    import time

    import microgesture.data.formats.miga as miga_module
    import microgesture.data.synth as synth_module
    from microgesture.train.config import SynthConfig
    from microgesture.train.datamodule import synthetic_annotations

    calls, active, most = [], [0], [0]

    def slow_generate(data_dir, **kwargs):
        calls.append(data_dir)
        active[0] += 1
        most[0] = max(most[0], active[0])
        time.sleep(0.5)
        data_dir.mkdir(parents=True)
        (data_dir / "videos.csv").write_text("video\n")
        active[0] -= 1

    monkeypatch.setattr(synth_module, "generate_dataset", slow_generate)
    monkeypatch.setattr(miga_module, "import_miga_to_file", lambda data_dir, ann, **kw: ann.write_bytes(b"x"))
    cfg = SynthConfig(root=str(tmp_path / "synthetic"))
    results = []
    threads = [threading.Thread(target=lambda: results.append(synthetic_annotations(cfg))) for _ in range(2)]
    for t in threads:
        t.start()
        time.sleep(0.1)  # the second starts while the first generates
    for t in threads:
        t.join()
    assert len(calls) == 1 and most[0] == 1
    assert len(results) == 2 and results[0] == results[1] and results[0].is_file()
    assert "waiting for another process generating the synthetic dataset" in capsys.readouterr().err
