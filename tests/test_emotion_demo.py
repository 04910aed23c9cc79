import json

import pytest

from microgesture.apps.emotion_demo import run_emotion_demo


@pytest.mark.slow
def test_emotion_demo_prints_video_level_results(tmp_path, capsys):
    out = tmp_path / "demo"
    metrics = run_emotion_demo(out, epochs=1, subjects=3, videos_per_subject=2, val_fraction=0.5)
    printed = capsys.readouterr().out
    assert "video-level accuracy" in printed and "ROC-AUC" in printed and "majority class" in printed
    saved = json.loads((out / "emotion_results.json").read_text())
    assert saved["accuracy"] == metrics["accuracy"] and saved["num_samples"] == 2  # 1 test subject x 2 videos
    assert (out / "emotion" / "eval" / "emotion_reliability.png").is_file()
    again = run_emotion_demo(out, epochs=1, subjects=3, videos_per_subject=2, val_fraction=0.5)
    assert again["accuracy"] == metrics["accuracy"]  # the finished run is reused
