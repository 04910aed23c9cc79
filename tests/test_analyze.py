"""`microgesture analyze` end to end on a drawn person, with tiny MG (online) and emotion models."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("mediapipe")
pytestmark = pytest.mark.slow  # two tiny trainings and MediaPipe over a few hundred frames

from microgesture.apps.analyze import AnalyzeOptions, analyze_video  # noqa: E402
from microgesture.apps.online import decode_options, evaluate_online, load_online_model, window_scores  # noqa: E402
from microgesture.cli import main  # noqa: E402
from microgesture.data.formats.annotations import load_annotations  # noqa: E402
from microgesture.data.formats.miga import import_miga_to_file, rgb_path  # noqa: E402
from microgesture.data.formats.sequences import video_sequence  # noqa: E402
from microgesture.data.pose.extract import ExtractOptions  # noqa: E402
from microgesture.data.synth import generate_dataset  # noqa: E402
from microgesture.data.video import write_video  # noqa: E402
from microgesture.data.windows import write_window_annotations  # noqa: E402
from microgesture.errors import ConfigError, DataError  # noqa: E402
from microgesture.eval.submission import read_online_predictions  # noqa: E402
from microgesture.train.config import load_config  # noqa: E402
from microgesture.train.run import fit  # noqa: E402

WINDOW = 16


def _train(windows: Path, out: Path, *extra: str) -> Path:
    cfg = load_config(None, [
        f"data.annotations={windows}", "data.synthetic=null", f"data.num_frames={WINDOW}", "data.batch_size=16",
        "model.skeleton.base_channels=8", "trainer.max_epochs=1", "trainer.progress_bar=false",
        "trainer.accelerator=cpu", "optim.lr=0.05", *extra])
    return fit(cfg, out).last_checkpoint


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("analyze")
    generate_dataset(root / "data", subjects=3, videos_per_subject=1, seed=2, video=True, seconds=4.0)
    import_miga_to_file(root / "data", root / "annotations_val0.2.pkl", val_fraction=0.2, seed=0)  # the demo's name
    write_window_annotations(root / "annotations_val0.2.pkl", root / "windows.pkl", length=WINDOW, stride=4)
    mg = _train(root / "windows.pkl", root / "mg")
    emotion = _train(root / "windows.pkl", root / "emotion", "task.kind=emotion", "task.monitor=val_loss")
    data = load_annotations(root / "annotations_val0.2.pkl")
    test_video = next(v for v in data["videos"] if v["video_id"] == 3)
    return root, mg, emotion, rgb_path(root / "data", test_video["video_id"]), data


FAST = AnalyzeOptions(extract=ExtractOptions(stride=3), device="cpu")


def test_analyze_writes_every_output(setup, tmp_path):
    root, mg, emotion, video, _ = setup
    out = tmp_path / "report"
    analysis = analyze_video(video, mg, out, emotion_checkpoint=emotion, options=FAST, progress=False)
    summary = json.loads((out / "analysis.json").read_text())
    # The drawn person is in every frame; MediaPipe may miss them on the first processed frame of
    # this 192x144 video (then the frames before its first detection have nobody): 90% at least.
    assert 0.9 * analysis.num_frames <= summary["person_frames"] <= analysis.num_frames
    assert summary["model"]["background_class"] == "no gesture"
    rows = read_online_predictions(out / "segments.csv")  # MiGA style, iMiGUE codes
    assert [(r["class"], r["start"], r["end"]) for r in summary["segments"]] == rows
    assert all(0 <= r["score"] <= 1 and r["start_s"] < r["end_s"] for r in summary["segments"])
    emo = summary["emotion"]
    assert emo["label"] in ("win", "lose") and 0.5 <= emo["confidence"] <= 1 and emo["windows"] > 0
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 1
    assert html.count("data:image/jpeg;base64,") == min(len(rows), FAST.max_key_frames)
    for r in summary["segments"]:
        assert r["name"] in html
    assert (out / "timeline.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert set(summary["timings"]) == {"decode", "pose", "hands/face", "recognition", "report"}
    # the same video again: the skeleton is read back, not extracted again
    again = analyze_video(video, mg, out, options=FAST, progress=False)
    assert again.timings["pose"] == 0.0
    assert [(s.label, s.start, s.end) for s in again.segments] == [(s.label, s.start, s.end) for s in analysis.segments]


def test_nobody_in_the_video_gives_an_empty_timeline(setup, tmp_path):
    _, mg, emotion, _, _ = setup
    path = tmp_path / "empty_room.mp4"
    write_video(path, [np.full((144, 192, 3), 120, dtype=np.uint8)] * 20, 25)
    analysis = analyze_video(path, mg, tmp_path / "out", emotion_checkpoint=emotion, options=FAST, progress=False)
    assert analysis.segments == [] and analysis.emotion is None and analysis.person_frames == 0
    assert any("no person was found" in n for n in analysis.notes)
    assert (tmp_path / "out" / "segments.csv").read_text() == ""
    assert "No micro-gesture segment" in (tmp_path / "out" / "report.html").read_text()


def test_unreadable_video_is_a_clear_error(setup, tmp_path, capsys):
    _, mg, _, _, _ = setup
    bad = tmp_path / "notes.txt"
    bad.write_text("hello")
    with pytest.raises(DataError, match="notes.txt"):
        analyze_video(bad, mg, tmp_path / "out", options=FAST, progress=False)
    code = main(["analyze", str(bad), "--checkpoint", str(mg), "--out", str(tmp_path / "cli"), "--quiet"])
    assert code == 2 and "notes.txt" in capsys.readouterr().err


def test_analyze_command(setup, tmp_path, capsys):
    _, mg, emotion, video, _ = setup
    args = ["analyze", str(video), "--checkpoint", str(mg), "--emotion-checkpoint", str(emotion), "--out",
            str(tmp_path), "--stride", "3", "--device", "cpu", "--quiet"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "emotion estimate:" in printed and f"report: {tmp_path / 'report.html'}" in printed
    assert main(args[:4] + ["--emotion-checkpoint", str(mg), "--out", str(tmp_path / "x"), "--quiet"]) == 2
    assert "not emotion" in capsys.readouterr().err


def test_model_must_fit_the_task(setup):
    _, mg, emotion, _, _ = setup
    with pytest.raises(ConfigError, match="not emotion"):
        load_online_model(mg, task="emotion", device="cpu")
    with pytest.raises(ConfigError, match="not mg"):
        load_online_model(emotion, task="mg", device="cpu")


def test_window_scores_follow_the_frame_rate(setup):
    root, mg, _, _, data = setup
    model = load_online_model(mg, device="cpu")
    seq = video_sequence(data, data["videos"][0])
    starts, length, probs = window_scores(model, seq, fps=25.0, stride=4)
    assert length == WINDOW and probs.shape == (len(starts), 33) and np.allclose(probs.sum(1), 1, atol=1e-5)
    starts50, length50, _ = window_scores(model, seq, fps=50.0, stride=4)
    assert length50 == 2 * WINDOW and np.diff(starts50)[0] == 8  # the same seconds at twice the frame rate
    seq.joints[:] = 0  # nobody: no window is scored
    assert np.isnan(window_scores(model, seq, stride=4)[2]).all()
    opts = decode_options(model, 50.0, min_seconds=0.4, merge_seconds=0.2)
    assert (opts.min_length, opts.merge_gap, opts.background) == (20, 10, 32)


def test_evaluate_online_writes_predictions_and_f1(setup, tmp_path):
    root, mg, _, _, _ = setup
    result = evaluate_online(mg, root / "annotations_val0.2.pkl", tmp_path / "eval", split="test", tune_split="val", device="cpu")
    assert result["videos"] == 1 and 0 <= result["kit_rule"]["f1"] <= 2 and result["tuned_on"] == "val"
    assert (tmp_path / "eval" / "0003_prediction.csv").is_file()
    with pytest.raises(ConfigError):
        evaluate_online(mg, root / "annotations_val0.2.pkl", tmp_path / "e2", split="test", tune_split="test", device="cpu")


def test_demo_hook_analyses_a_held_out_video(setup, tmp_path):
    from microgesture.apps.analyze import analyze_demo_video

    root, mg, _, video, data = setup
    demo = tmp_path / "demo_out"
    (demo / "data").mkdir(parents=True)
    (demo / "data" / "seed2_s3x1_192x144").symlink_to(root)  # the layout `microgesture demo` leaves
    (demo / "joint" / "checkpoints").mkdir(parents=True)
    (demo / "joint" / "checkpoints" / "best.ckpt").symlink_to(mg)
    report = analyze_demo_video(demo)
    assert report == demo / "analysis" / "report.html" and report.is_file()
    summary = json.loads((demo / "analysis" / "analysis.json").read_text())
    assert Path(summary["video"]["path"]).name == video.name  # the test subject's video
    with pytest.raises(DataError, match="run `microgesture demo` first"):
        analyze_demo_video(tmp_path / "nothing")
