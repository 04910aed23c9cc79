import importlib.util
import json

import pytest

from microgesture.apps import demo
from microgesture.apps.demo import FUSED, RGB_SKIPPED, run_demo
from microgesture.train.precision import machine_description, resolve_precision

TINY = dict(epochs=1, subjects=3, videos_per_subject=1, val_fraction=0.5)


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    """The tiny synthetic dataset, generated once for this module's demo runs."""
    from microgesture.train.datamodule import synthetic_annotations

    root = tmp_path_factory.mktemp("demo_data")
    synthetic_annotations(demo.demo_config("joint", root, 1, 0, subjects=3, videos_per_subject=1,
                                           val_fraction=0.5).data.synthetic)
    return root


def _out(tmp_path, tiny_data):
    """A demo folder whose data/ is the shared tiny dataset (the demo reuses a dataset it finds)."""
    out = tmp_path / "demo"
    out.mkdir()
    (out / "data").symlink_to(tiny_data, target_is_directory=True)
    return out


def test_demo_writes_the_report(tmp_path, tiny_data, capsys):
    out = _out(tmp_path, tiny_data)
    fused = run_demo(out, emotion=False, analyze=False, parallel=False, **TINY)
    printed = capsys.readouterr().out
    assert FUSED in printed and "split" in printed  # results table and data summary
    assert "head F1" in printed and "tail top-1" in printed  # the long-tail split of streams and fusion
    assert RGB_SKIPPED in printed  # the RGB stage says in one line why it did not run
    metrics = json.loads((out / "metrics.json").read_text())
    for key in ("top1", "top5", "macro_f1", "mean_class_accuracy", "per_class_accuracy", "streams"):
        assert key in metrics
    assert metrics["top1"] == fused["top1"]
    assert len(metrics["streams"]) == 2
    summary = json.loads((out / "results.json").read_text())
    assert summary["skeleton"][FUSED]["macro_f1"] == fused["macro_f1"]
    assert summary["rgb"] is None and "emotion" not in summary and "analysis" not in summary
    assert set(summary["time"]) == {"data", "skeleton"}
    # the figures repeat to the last digit on one machine only: the demo says which one, and its precision
    assert summary["machine"] == machine_description() and summary["machine"] in printed
    assert summary["precision"] == resolve_precision("auto") and "Machine: " in (out / "results.md").read_text()
    for path in ("confusion_matrix.png", "results.md", "scores_fused.csv", "joint/training_curves.png",
                 "bone/eval/metrics.json", "joint/checkpoints/best.ckpt"):
        assert (out / path).is_file(), path
    # running again reuses the data and the finished runs instead of failing
    again = run_demo(out, emotion=False, analyze=False, parallel=False, **TINY)
    assert again["top1"] == fused["top1"]


def test_streams_side_by_side_train_the_same_runs(tmp_path, tiny_data):
    """Two worker processes write the same run folders as the sequential path, which then reuses them."""
    out = _out(tmp_path, tiny_data)
    fused = run_demo(out, emotion=False, analyze=False, parallel=True, **TINY)
    for stream in ("joint", "bone"):
        info = json.loads((out / stream / "run_info.json").read_text())
        assert info["epochs"] == 1 and not info["resumed"]
    summary = json.loads((out / "results.json").read_text())
    assert summary["time"]["skeleton"]["cpu_s"] > 0  # the workers' CPU time is counted once they end
    again = run_demo(out, emotion=False, analyze=False, parallel=False, **TINY)
    assert again["top1"] == fused["top1"] and again["macro_f1"] == fused["macro_f1"]


def _crops_rows(cmtf: float, late: float):
    def rows(out, **kwargs):
        return {"late fusion joint+bone (1:1)": {"top1": late, "macro_f1": 0.1},
                "CMTF joint+bone+RGB crops": {"top1": cmtf, "macro_f1": 0.1}}
    return rows


@pytest.mark.parametrize("cmtf, late, verdict", [(0.6, 0.5, "beats"), (0.4, 0.5, "does not beat"),
                                                 (0.5, 0.5, "does not beat")])
def test_rgb_verdict_comes_from_the_run(tmp_path, monkeypatch, cmtf, late, verdict):
    import microgesture.apps.crops_demo as crops_demo

    monkeypatch.setattr(crops_demo, "run_crops_demo", _crops_rows(cmtf, late))
    rows, text = demo._rgb(tmp_path, 0, {})
    assert f"CMTF of joint, bone and RGB crops {verdict} the late fusion of the skeleton streams" in text
    assert f"{100 * cmtf:.2f}%" in text and f"{100 * late:.2f}%" in text
    assert rows["CMTF joint+bone+RGB crops"]["top1"] == cmtf


@pytest.mark.slow
def test_demo_emotion_stage(tmp_path, tiny_data, capsys):
    out = _out(tmp_path, tiny_data)
    run_demo(out, analyze=False, emotion_epochs=1, parallel=False, **TINY)
    printed = capsys.readouterr().out
    assert "video-level accuracy" in printed and "ROC-AUC" in printed
    emotion = json.loads((out / "results.json").read_text())["emotion"]
    assert 0.0 <= emotion["accuracy"] <= 1.0 and emotion["num_samples"] >= 1
    assert emotion["auc"] is None or 0.0 <= emotion["auc"] <= 1.0
    assert (out / "emotion" / "eval").is_dir()


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("mediapipe") is None, reason="the analysis stage needs mediapipe")
def test_demo_ends_with_the_analysed_video(tmp_path, tiny_data, capsys):
    out = _out(tmp_path, tiny_data)
    run_demo(out, emotion=False, parallel=False, **TINY)
    printed = capsys.readouterr().out
    report = out / "analysis" / "report.html"
    assert report.is_file() and f"open {report}" in printed
    analysis = json.loads((out / "results.json").read_text())["analysis"]
    assert analysis["report"] == str(report) and analysis["segments"] >= 0
    assert "<html" in report.read_text().lower()


def test_a_worker_at_a_terminal_prints_epoch_lines_not_a_bar(tmp_path, tiny_data, capsys, monkeypatch):
    import sys

    out = _out(tmp_path, tiny_data)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    synthetic = {k: v for k, v in TINY.items() if k != "epochs"}
    metrics = demo.train_stream("joint", out, 1, 0, synthetic, lines=True)
    captured = capsys.readouterr()
    assert "demo_agcn_joint: epoch 1/1: train_loss" in captured.out
    assert "it/s" not in captured.err  # no progress bar
    assert 0.0 <= metrics["top1"] <= 1.0


@pytest.mark.parametrize("flags, expected", [
    ([], dict(rgb=False, emotion=True, analyze=True, parallel=None, precision="auto")),
    (["--rgb"], dict(rgb=True, emotion=True, analyze=True, parallel=None)),
    (["--skeleton-only", "--sequential"], dict(rgb=False, emotion=False, analyze=False, parallel=False)),
    (["--precision", "32-true"], dict(precision="32-true")),
])
def test_demo_command_flags(tmp_path, monkeypatch, flags, expected):
    from microgesture.cli import main

    calls = []
    monkeypatch.setattr(demo, "run_demo", lambda out, **kwargs: calls.append((out, kwargs)))
    assert main(["demo", "--out", str(tmp_path / "d"), "--epochs", "2", *flags]) == 0
    (out, kwargs), = calls
    assert out == tmp_path / "d" and kwargs["epochs"] == 2
    assert {k: kwargs[k] for k in expected} == expected
