import json

from microgesture.apps.demo import run_demo


def test_demo_writes_the_report(tmp_path, capsys):
    out = tmp_path / "demo"
    fused = run_demo(out, epochs=1, subjects=3, videos_per_subject=1, val_fraction=0.5)
    printed = capsys.readouterr().out
    assert "2s-AGCN joint+bone (1:1)" in printed and "split" in printed  # results table and data summary
    metrics = json.loads((out / "metrics.json").read_text())
    for key in ("top1", "top5", "macro_f1", "mean_class_accuracy", "per_class_accuracy", "streams"):
        assert key in metrics
    assert metrics["top1"] == fused["top1"]
    assert len(metrics["streams"]) == 2
    for path in ("confusion_matrix.png", "results.md", "scores_fused.csv", "joint/training_curves.png",
                 "bone/eval/metrics.json", "joint/checkpoints/best.ckpt"):
        assert (out / path).is_file(), path
    # running again reuses the data and the finished runs instead of failing
    again = run_demo(out, epochs=1, subjects=3, videos_per_subject=1, val_fraction=0.5)
    assert again["top1"] == fused["top1"]
