"""extract-pose and extract-faces at scale: --jobs (processes), --shard I/N (machines), resuming."""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import numpy as np
import pytest

from microgesture.data.synth.generate import synth_video
from microgesture.data.synth.schedule import plan_dataset
from microgesture.data.video import write_video
from microgesture.errors import ConfigError, DataError
from microgesture.utils.parallel import Shard, check_jobs, parse_shard

NAMES = ("a.mp4", "b.mp4", "c.mp4", "d.mp4")
TIMED = {"timings", "cpu_timings", "seconds"}  # wall-clock and CPU seconds: differ from run to run


@pytest.fixture(scope="module")
def four(tmp_path_factory) -> Path:
    """Four short videos of a drawn person (different clips of the synthetic generator)."""
    plan = plan_dataset(0, 1, 1, 6.0)[0]
    frames = [f for _, f in zip(range(48), synth_video(plan, 0, (256, 192)).frames())]
    folder = tmp_path_factory.mktemp("four")
    for k, name in enumerate(NAMES):
        clip = frames[k * 8:k * 8 + 12]
        write_video(folder / name, clip if k % 2 == 0 else [np.ascontiguousarray(f[:, ::-1]) for f in clip], 25)
    return folder


def _untimed(value):
    if isinstance(value, dict):
        return {k: _untimed(v) for k, v in value.items() if k not in TIMED}
    return value


def snapshot(folder: Path) -> dict[str, object]:
    """Every file under `folder` (lock files left out): bytes, or JSON without the timings and with
    the output folder's own path (the face manifest names its tracks) as `OUT`."""
    out = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.endswith(".lock")):
        rel = path.relative_to(folder).as_posix()
        if path.suffix == ".json":
            out[rel] = _untimed(json.loads(path.read_text().replace(str(folder), "OUT")))
        else:
            out[rel] = path.read_bytes()
    return out


# ----------------------------------------------------------------------------- shards and jobs as values


def test_shard_values_and_shares():
    assert parse_shard("0/4") == Shard(0, 4) and parse_shard(" 3 / 4 ") == Shard(3, 4) and parse_shard(None) is None
    items = list(range(10))
    shares = [Shard(i, 4).select(items) for i in range(4)]
    assert shares[1] == [1, 5, 9] and sorted(sum(shares, [])) == items  # disjoint, and the whole list together
    assert Shard(3, 4).select(items[:3]) == []  # more shards than videos: an empty share, not an error
    for bad, why in (("4/4", "I must be 0 to 3"), ("1/0", "at least 1"), ("x", "expected I/N"), ("1", "expected I/N"),
                     ("-1/4", "expected I/N"), ("1/2/3", "expected I/N")):
        with pytest.raises(ConfigError, match=why) as err:
            parse_shard(bad)
        assert str(err.value).startswith("--shard ")
    for bad in (0, -2, 1.5, "2", True):
        with pytest.raises(ConfigError, match="--jobs .*at least 1"):
            check_jobs(bad)


def test_bad_shard_and_jobs_are_one_line_errors_before_any_work(four, tmp_path, capsys):
    from microgesture.apps.pose import extract_pose
    from microgesture.cli import main

    out = tmp_path / "out"
    for args, option, expected in ((["--shard", "4/4"], "--shard", "I must be 0 to 3"),
                                   (["--shard", "two"], "--shard", "expected I/N"),
                                   (["--jobs", "0"], "--jobs", "must be at least 1")):
        for command in ("extract-pose", "extract-faces"):
            argv = [command, str(four), "--out", str(out), *args]
            with pytest.raises(SystemExit) as exc:
                main(argv)
            assert exc.value.code == 2
            err = capsys.readouterr().err.strip().splitlines()[-1]
            assert f"argument {option}" in err and expected in err
    with pytest.raises(ConfigError, match="--shard '2/2'"):
        extract_pose(four, out, shard="2/2")
    with pytest.raises(ConfigError, match="--jobs 0"):
        extract_pose(four, out, jobs=0)
    assert not out.exists()  # nothing was made


# ----------------------------------------------------------------------------- extract-pose

needs_mediapipe = pytest.mark.skipif(importlib.util.find_spec("mediapipe") is None, reason="mediapipe is not installed")


def _pose(four, out, **kw):
    from microgesture.apps.pose import extract_pose
    from microgesture.data.pose.extract import ExtractOptions

    lines: list[str] = []
    report = extract_pose(four, out, ExtractOptions(stride=4, hands="off"), progress=False, log=lines.append, **kw)
    return report, lines


@pytest.fixture(scope="module")
def one_run(four, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("pose_one")
    report, _ = _pose(four, out)
    assert [v for _, v in report.written] == [1, 2, 3, 4] and not report.failed
    return out


@needs_mediapipe
def test_pose_shards_together_are_one_run(four, one_run, tmp_path):
    # Into one folder, the second shard first: ids come from the whole sorted folder, not the order of runs.
    shared = tmp_path / "shared"
    second, lines = _pose(four, shared, shard="1/2")
    assert [(p.name, v) for p, v in second.written] == [("b.mp4", 2), ("d.mp4", 4)]
    assert lines[0] == "shard 1/2: 2 of the 4 videos"
    first, _ = _pose(four, shared, shard="0/2")
    assert [(p.name, v) for p, v in first.written] == [("a.mp4", 1), ("c.mp4", 3)]
    assert snapshot(shared) == snapshot(one_run)
    # Each shard into a folder of its own: together the same files; each sources.csv knows the whole folder.
    parts = [tmp_path / f"part{i}" for i in range(2)]
    for i, part in enumerate(parts):
        _pose(four, part, shard=f"{i}/2")
    merged = {**snapshot(parts[0]), **snapshot(parts[1])}
    assert merged == snapshot(one_run)
    assert snapshot(parts[0])["sources.csv"] == snapshot(parts[1])["sources.csv"]


@needs_mediapipe
def test_pose_jobs_same_files_resume_and_failures(four, one_run, tmp_path):
    out = tmp_path / "jobs"
    report, _ = _pose(four, out, jobs=2)
    assert [v for _, v in report.written] == [1, 2, 3, 4]  # in the folder's order, however the workers finished
    assert snapshot(out) == snapshot(one_run)
    # A rerun skips every video; a video whose manifest is missing (cut off before it) is redone.
    stamp = (out / "0001" / "0001_light_hand.csv").stat().st_mtime_ns
    (out / "0003" / "0003_pose.json").unlink()
    again, lines = _pose(four, out, jobs=2)
    assert [v for _, v in again.written] == [3] and [v for _, v in again.skipped] == [1, 2, 4]
    assert "[1/4] a.mp4 -> 0001/: already done, skipped" in lines
    assert (out / "0001" / "0001_light_hand.csv").stat().st_mtime_ns == stamp
    assert snapshot(out) == snapshot(one_run)
    # A video that cannot be read is reported; the others' files are written.
    folder = tmp_path / "with_broken"
    folder.mkdir()
    for name in ("a.mp4", "c.mp4"):
        (folder / name).write_bytes((four / name).read_bytes())
    (folder / "b.mp4").write_bytes(b"not a video")
    report, lines = _pose(folder, tmp_path / "out_broken", jobs=2)
    assert [p.name for p, _ in report.written] == ["a.mp4", "c.mp4"]
    assert len(report.failed) == 1 and "b.mp4" in report.failed[0][1]
    assert (tmp_path / "out_broken" / "0003" / "0003_pose.json").is_file()


@needs_mediapipe
def test_extract_pose_command_with_shard_and_jobs(four, one_run, tmp_path, capsys):
    from microgesture.cli import main

    out = tmp_path / "out"
    common = ["extract-pose", str(four), "--out", str(out), "--stride", "4", "--hands", "off", "--quiet"]
    assert main([*common, "--shard", "1/2", "--jobs", "2"]) == 0
    captured = capsys.readouterr()
    assert "extracted 2, already done 0" in captured.out and "shard 1/2: 2 of the 4 videos" in captured.err
    assert main([*common, "--shard", "0/2"]) == 0
    assert main(common) == 0 and "extracted 0, already done 4" in capsys.readouterr().out
    assert snapshot(out) == snapshot(one_run)


# ----------------------------------------------------------------------------- extract-faces


def _face_settings():
    from microgesture.data.faces import FaceSettings
    from microgesture.data.faces.detect import mediapipe_available

    return FaceSettings(detector="mediapipe" if mediapipe_available() else "haar", stride=3)


@pytest.fixture(scope="module")
def faces_one_run(four, tmp_path_factory) -> Path:
    from microgesture.data.faces import extract_faces

    out = tmp_path_factory.mktemp("faces_one")
    results = extract_faces(four, out, _face_settings())
    assert [Path(r.video).name for r in results] == list(NAMES) and not any(r.skipped for r in results)
    return out


@pytest.mark.filterwarnings("ignore::UserWarning")  # the drawn faces' policies (edges, gaps): not the point here
def test_face_shards_into_one_folder_at_the_same_time(four, faces_one_run, tmp_path, monkeypatch):
    from microgesture.data.faces import extract, extract_faces

    out = tmp_path / "faces"
    real = extract.extract_video
    state = {"nested": False}

    def first_shard_finishes_meanwhile(*args, **kwargs):
        # Shard 1 has read the (empty) manifest; shard 0 runs to the end now, then shard 1 records:
        # without the merge under the lock, shard 1's manifest would drop shard 0's videos.
        if not state["nested"]:
            state["nested"] = True
            lines: list[str] = []
            extract_faces(four, out, _face_settings(), shard="0/2", echo=lines.append)
            assert lines[0] == "shard 0/2: 2 of the 4 videos"
        return real(*args, **kwargs)

    monkeypatch.setattr(extract, "extract_video", first_shard_finishes_meanwhile)
    results = extract_faces(four, out, _face_settings(), shard="1/2")
    assert [Path(r.video).name for r in results] == ["b.mp4", "d.mp4"]
    assert snapshot(out) == snapshot(faces_one_run)


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_face_jobs_same_files_resume_and_failures(four, faces_one_run, tmp_path):
    from microgesture.data.faces import extract_faces
    from microgesture.data.faces.extract import MANIFEST

    out = tmp_path / "faces"
    results = extract_faces(four, out, _face_settings(), jobs=2)
    assert [Path(r.video).name for r in results] == list(NAMES)
    assert snapshot(out) == snapshot(faces_one_run)
    stamp = (out / "a_face.mp4").stat().st_mtime_ns
    (out / "c_face.csv").unlink()  # c cut off before its CSV: redone
    again = extract_faces(four, out, _face_settings(), jobs=2)
    assert [r.skipped for r in again] == [True, True, False, True]
    assert (out / "a_face.mp4").stat().st_mtime_ns == stamp and snapshot(out) == snapshot(faces_one_run)
    # One bad video: the others are written and recorded, then one error names it.
    folder = tmp_path / "with_broken"
    folder.mkdir()
    for name in ("a.mp4", "c.mp4"):
        (folder / name).write_bytes((four / name).read_bytes())
    (folder / "b.mp4").write_bytes(b"not a video")
    with pytest.raises(DataError, match=r"1 of 3 videos failed .*b\.mp4"):
        extract_faces(folder, tmp_path / "out_broken", _face_settings(), jobs=2)
    recorded = json.loads((tmp_path / "out_broken" / MANIFEST).read_text())["videos"]
    assert sorted(recorded) == ["a.mp4", "c.mp4"] and (tmp_path / "out_broken" / "c_face.mp4").is_file()


def test_run_jobs_reports_bad_videos_and_dead_workers(tmp_path):
    from microgesture.data.video import video_info
    from microgesture.utils.parallel import run_jobs

    (tmp_path / "junk.mp4").write_bytes(b"junk")
    tasks = [(tmp_path / "junk.mp4",), (tmp_path / "missing.mp4",)]
    results = dict(run_jobs(video_info, tasks, jobs=2))  # spawned workers
    assert all(isinstance(r, DataError) for r in results.values())
    assert "junk.mp4" in str(results[0]) and "missing.mp4" in str(results[1])
    with pytest.raises(DataError, match="--jobs: a worker process died"):
        list(run_jobs(os._exit, [(1,), (1,)], jobs=2))
