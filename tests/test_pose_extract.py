"""Pose extraction (MediaPipe) on drawn people whose joints are known, and on bad input."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("mediapipe")

from microgesture.apps.pose import extract_pose  # noqa: E402
from microgesture.data.formats.mediapipe import read_faces, read_manifest  # noqa: E402
from microgesture.data.formats.miga import read_skeleton, skeleton_path  # noqa: E402
from microgesture.data.pose.extract import ExtractOptions, extract_video, interpolate_between  # noqa: E402
from microgesture.data.synth.generate import synth_video  # noqa: E402
from microgesture.data.synth.schedule import plan_dataset  # noqa: E402
from microgesture.data.video import write_video  # noqa: E402
from microgesture.domain.layouts import MIGA35  # noqa: E402
from microgesture.errors import DataError  # noqa: E402

SIZE = (256, 192)
FRAMES = 24


@pytest.fixture(scope="module")
def drawn(tmp_path_factory):
    """A drawn person (synthetic generator, raising a hand in the first video) and the true joints."""
    plan = plan_dataset(0, 1, 1, 6.0)[0]
    sv = synth_video(plan, 0, SIZE)
    frames = [f for _, f in zip(range(FRAMES), sv.frames())]
    folder = tmp_path_factory.mktemp("drawn")
    write_video(folder / "person.mp4", frames, 25)
    write_video(folder / "mirrored.mp4", [np.ascontiguousarray(f[:, ::-1]) for f in frames], 25)
    gone = [f if not 8 <= t < 16 else np.full_like(f, f[0, 0]) for t, f in enumerate(frames)]
    write_video(folder / "leaves.mp4", gone, 25)
    return folder, sv.geometry.joints[:FRAMES]


@pytest.fixture(scope="module")
def extracted(drawn):
    folder, _ = drawn
    return extract_video(folder / "person.mp4", ExtractOptions(stride=2))


def _side_errors(joints: np.ndarray, truth: np.ndarray, name: str) -> tuple[float, float]:
    """Mean distance of the extracted `l_<name>` to the true l_ and to the true r_ joint."""
    j, other = MIGA35.index(f"l_{name}"), MIGA35.index(f"r_{name}")
    seen = joints[:, j, 2] > 0
    assert seen.sum() >= FRAMES // 2, f"l_{name} found in only {seen.sum()} frames"
    own = np.linalg.norm(joints[seen, j, :2] - truth[seen, j], axis=-1).mean()
    swapped = np.linalg.norm(joints[seen, j, :2] - truth[seen, other], axis=-1).mean()
    return float(own), float(swapped)


@pytest.mark.parametrize("name", ["shoulder", "elbow", "wrist", "eye"])
def test_left_is_the_persons_left(extracted, drawn, name):
    _, truth = drawn
    own, swapped = _side_errors(extracted.joints("miga35"), truth, name)
    assert own < 0.5 * swapped, f"l_{name}: {own:.1f} px from the true left, {swapped:.1f} from the right"


def test_fingertips_belong_to_their_own_hand(extracted, drawn):
    _, truth = drawn
    j = extracted.joints("miga35")
    for side, other in (("r", "l"), ("l", "r")):
        tips = [MIGA35.index(f"{side}_{f}_tip") for f in ("thumb", "index", "middle", "ring", "pinky")]
        wrist_own, wrist_other = MIGA35.index(f"{side}_wrist"), MIGA35.index(f"{other}_wrist")
        seen = j[:, tips[1], 2] > 0
        if seen.sum() < 3:
            continue  # that hand is hidden in this clip
        centre = j[seen][:, tips, :2].mean(axis=1)
        own = np.linalg.norm(centre - truth[seen, wrist_own], axis=-1).mean()
        far = np.linalg.norm(centre - truth[seen, wrist_other], axis=-1).mean()
        assert own < far
    assert (j[:, 25:35, 2] > 0).any(), "no fingertip at all"


def test_plausible_skeleton_and_stride(extracted):
    j = extracted.joints("miga35")
    assert extracted.num_frames == FRAMES and extracted.person_found().all()
    assert extracted.processed.sum() == FRAMES // 2 + (FRAMES % 2 == 0)  # every other frame and the last
    nose, neck = j[:, MIGA35.index("nose")], j[:, MIGA35.index("neck")]
    assert (nose[:, 1] < neck[:, 1]).all()  # image y grows downwards
    assert (j[:, list(range(8, 15)), 2] == 0).all()  # lower body dropped by default
    boxes = extracted.face_boxes
    assert ((boxes[:, 0] <= nose[:, 0]) & (nose[:, 0] <= boxes[:, 2])).all()


def test_mirrored_video_keeps_the_persons_sides(drawn, extracted):
    # In a mirrored recording the person's left shoulder appears at x' = W - x. Told the video is
    # mirrored, the extractor still calls it the left shoulder; not told, BlazePose swaps the sides.
    folder, _ = drawn
    plain = extracted.joints("miga35")
    told = extract_video(folder / "mirrored.mp4", ExtractOptions(stride=2, mirrored=True)).joints("miga35")
    untold = extract_video(folder / "mirrored.mp4", ExtractOptions(stride=2)).joints("miga35")
    for name in ("l_shoulder", "r_shoulder", "l_wrist", "r_wrist"):
        j = MIGA35.index(name)
        both = (plain[:, j, 2] > 0) & (told[:, j, 2] > 0) & (untold[:, j, 2] > 0)
        assert both.sum() >= FRAMES // 2
        assert np.abs(plain[both, j, 0] - (SIZE[0] - told[both, j, 0])).mean() < 0.03 * SIZE[0]
        assert np.abs(plain[both, j, 0] - (SIZE[0] - untold[both, j, 0])).mean() > 0.1 * SIZE[0]


def test_person_leaving_and_returning(drawn):
    folder, _ = drawn
    ex = extract_video(folder / "leaves.mp4", ExtractOptions(stride=1))
    found = ex.person_found()
    assert found[:6].all() and found[-6:].all()
    assert not found[9:15].any()


def test_interpolation_between_processed_frames():
    lm = np.zeros((5, 2, 3), dtype=np.float32)
    lm[0] = [[0, 0, 0.8], [5, 5, 0.9]]
    lm[4] = [[8, 4, 0.6], [0, 0, 0.0]]  # joint 1 lost at frame 4
    out = interpolate_between(lm, np.array([1, 0, 0, 0, 1], dtype=bool))
    assert np.allclose(out[1, 0], [2, 1, 0.6]) and np.allclose(out[2, 0], [4, 2, 0.6])
    assert (out[1:4, 1] == 0).all()


def test_folder_extraction_resumes_and_reports_bad_files(drawn, tmp_path):
    folder, _ = drawn
    src = tmp_path / "videos"
    src.mkdir()
    (src / "a.mp4").write_bytes((folder / "person.mp4").read_bytes())
    (src / "broken.mp4").write_bytes(b"")
    out = tmp_path / "out"
    options = ExtractOptions(stride=3, hands="off")
    first = extract_pose(src, out, options, progress=False, log=lambda m: None)
    assert len(first.written) == 1 and len(first.failed) == 1 and "broken.mp4" in first.failed[0][1]
    vid = first.written[0][1]
    frames, joints = read_skeleton(skeleton_path(out, vid))
    assert len(frames) == FRAMES and joints.shape == (FRAMES, 35, 3)
    assert read_faces(out / f"{vid:04d}" / f"{vid:04d}_face.csv").shape == (FRAMES, 5)
    assert read_manifest(out, vid)["frames_with_person"] == FRAMES
    again = extract_pose(src, out, options, progress=False, log=lambda m: None)
    assert again.skipped == first.written and not again.written
    changed = extract_pose(src, out, ExtractOptions(stride=2, hands="off"), progress=False, log=lambda m: None)
    assert [v for _, v in changed.written] == [vid]  # other options: redone, same id


def test_bad_videos_raise_data_errors_naming_the_file(tmp_path, drawn):
    folder, _ = drawn
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    text = tmp_path / "notes.mp4"
    text.write_text("not a video at all\n" * 50)
    codec = tmp_path / "codec.mp4"
    data = (folder / "person.mp4").read_bytes()
    codec.write_bytes(data.replace(b"avc1", b"zzzz"))  # a codec no decoder knows
    for path in (empty, text, codec, tmp_path / "missing.mp4"):
        with pytest.raises(DataError) as err:
            extract_video(path, ExtractOptions(stride=4, hands="off"))
        assert path.name in str(err.value)


def test_nobody_in_the_video(tmp_path):
    path = tmp_path / "empty_room.mp4"
    write_video(path, [np.full((96, 128, 3), 90, dtype=np.uint8)] * 6, 25)
    ex = extract_video(path, ExtractOptions(stride=1))
    assert not ex.person_found().any() and (ex.joints()[..., 2] == 0).all()


def test_extract_pose_command(drawn, tmp_path, capsys):
    from microgesture.cli import main

    folder, _ = drawn
    out = tmp_path / "out"
    args = ["extract-pose", str(folder / "person.mp4"), "--out", str(out), "--stride", "4", "--hands", "off",
            "--quiet", "--video-id", "7"]
    assert main(args) == 0
    assert "extracted 1" in capsys.readouterr().out
    frames, joints = read_skeleton(skeleton_path(out, 7))
    assert len(frames) == FRAMES and (joints[:, MIGA35.index("nose"), 2] > 0).all()
    assert main(args) == 0 and "already done 1" in capsys.readouterr().out
    assert main(["extract-pose", str(tmp_path / "none.mp4"), "--out", str(out)]) == 2
    assert "none.mp4" in capsys.readouterr().err
