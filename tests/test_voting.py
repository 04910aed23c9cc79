"""Calibrated soft voting: temperatures and weights fit on validation, applied to test (eval/voting.py)."""

import json

import numpy as np
import pytest

from microgesture.cli import main
from microgesture.eval.scores import write_scores
from microgesture.eval.voting import StreamMismatch, calibrated_voting, search_weights, simplex_grid


def _stream(rng, labels, k, skill, scale):
    """Logits that favour the true class by `skill` (plus noise), times an overconfidence `scale`."""
    logits = rng.normal(0, 1, (len(labels), k))
    logits[np.arange(len(labels)), labels] += skill
    return logits * scale


def _files(tmp_path, split, seed, n=400, k=5):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, k, n)
    ids = [f"{split}_{i}" for i in range(n)]
    paths = []
    for name, skill, scale in (("good", 2.5, 4.0), ("weak", 0.5, 3.0)):
        path = tmp_path / split / name / "scores.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        write_scores(path, ids, _stream(rng, labels, k, skill, scale), labels)
        paths.append(path)
    return paths


def test_calibration_fixes_overconfidence_and_weights_favour_the_better_stream(tmp_path):
    val, test = _files(tmp_path, "val", 0), _files(tmp_path, "test", 1)
    result = calibrated_voting(val, test, out=tmp_path / "report")
    # both streams were made overconfident (logits scaled up): the fitted temperatures undo it
    assert all(t > 1.5 for t in result.temperatures)
    assert result.weights[0] > result.weights[1] and sum(result.weights) == pytest.approx(1.0)
    for split in ("val", "test"):
        fused = result.report[split]["fused"]
        assert fused["after"]["ece"] < 0.5 * fused["before"]["ece"]
        assert fused["after"]["nll"] < fused["before"]["nll"]
    assert result.report["test"]["fused"]["after"]["top1"] >= result.report["test"]["fused"]["before"]["top1"]
    names = sorted(p.name for p in (tmp_path / "report").iterdir())
    assert names == ["calibration.json", "reliability_test.png", "reliability_val.png", "scores_fused.csv"]
    saved = json.loads((tmp_path / "report" / "calibration.json").read_text())
    assert saved["weights"] == result.weights
    np.testing.assert_allclose(result.fused.scores.sum(1), 1.0, atol=1e-5)  # fused probabilities


def test_weight_search_uses_validation_only_and_prefers_equal_on_ties():
    assert simplex_grid(3, 2).tolist() == [[0, 0, 1], [0, 0.5, 0.5], [0, 1, 0], [0.5, 0, 0.5], [0.5, 0.5, 0], [1, 0, 0]]
    same = np.full((4, 3), 1 / 3)
    labels = np.array([0, 1, 2, 0])
    np.testing.assert_allclose(search_weights([same, same], labels, "top1"), [0.5, 0.5])
    right = np.eye(3)[labels] * 0.9 + 0.1 / 3
    np.testing.assert_allclose(search_weights([same, right], labels, "nll"), [0.0, 1.0])


def test_different_streams_are_refused_before_anything_is_written(tmp_path):
    val, test = _files(tmp_path, "val", 0), _files(tmp_path, "test", 1)
    with pytest.raises(StreamMismatch, match="1 validation score files for 2 test files"):
        calibrated_voting(val[:1], test, out=tmp_path / "out1")
    # evaluate's metrics.json says which run scored each file: swapped streams are caught
    for path, run in zip(val + test, ["a", "b", "a", "b"]):
        (path.parent / "metrics.json").write_text(json.dumps({"checkpoint": f"/runs/{run}/checkpoints/best.ckpt"}))
    with pytest.raises(StreamMismatch, match=r"scored by the run /runs/a.*validation file .* by /runs/b"):
        calibrated_voting(val[::-1], test, out=tmp_path / "out2")
    code = main(["fuse", *map(str, test), "--calibrate", str(val[0]), "--report", str(tmp_path / "out3")])
    assert code == 2
    assert not any((tmp_path / d).exists() for d in ("out1", "out2", "out3"))
    assert main(["fuse", *map(str, test), "--calibrate", *map(str, val), "--weights", "1", "2"]) == 2
    assert main(["fuse", *map(str, test), "--calibrate", *map(str, val), "--out", str(tmp_path / "m.json")]) == 0
    assert json.loads((tmp_path / "m.json").read_text())["objective"] == "nll"
