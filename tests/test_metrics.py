"""Metrics against hand-computed values; plots of confusion matrices and training logs."""

from __future__ import annotations

import numpy as np
import pytest

from microgesture.errors import DataError
from microgesture.eval.metrics import (
    average_ranks,
    binary_metrics,
    classification_metrics,
    confusion_matrix,
    roc_auc,
    top_k_accuracy,
    video_level,
)
from microgesture.eval.plots import plot_confusion_matrix, plot_training_curves, read_training_log

# Six samples, four classes; class 3 never occurs in the labels but is predicted once (sample 4).
LABELS = [0, 0, 0, 1, 1, 2]
SCORES = np.array(
    [
        [0.9, 0.05, 0.03, 0.02],  # pred 0, true 0
        [0.6, 0.3, 0.05, 0.05],  # pred 0, true 0
        [0.3, 0.4, 0.2, 0.1],  # pred 1, true 0 (true class ranked 2nd)
        [0.1, 0.5, 0.3, 0.1],  # pred 1, true 1
        [0.2, 0.1, 0.3, 0.4],  # pred 3, true 1 (true class ranked 4th)
        [0.1, 0.1, 0.7, 0.1],  # pred 2, true 2
    ]
)


def test_confusion_matrix_rows_true_columns_predicted():
    cm = confusion_matrix(LABELS, SCORES.argmax(1), 4)
    assert cm == [[2, 1, 0, 0], [0, 1, 0, 1], [0, 0, 1, 0], [0, 0, 0, 0]]
    assert isinstance(cm[0][0], int)


def test_classification_metrics_hand_computed():
    m = classification_metrics(SCORES, LABELS, ["a", "b", "c", "d"])
    # top-1: samples 0, 1, 3, 5 correct -> 4/6.
    assert m["top1"] == pytest.approx(4 / 6)
    # top-k with k = min(5, K=4) = 4 covers every class.
    assert m["top5_k"] == 4 and m["top5"] == 1.0
    # recall: a 2/3, b 1/2, c 1/1; d has no true sample -> absent, not in the mean.
    assert m["per_class_accuracy"] == pytest.approx({"a": 2 / 3, "b": 1 / 2, "c": 1.0})
    assert m["absent_classes"] == ["d"]
    assert m["per_class_count"] == {"a": 3, "b": 2, "c": 1}
    assert m["mean_class_accuracy"] == pytest.approx((2 / 3 + 1 / 2 + 1) / 3)  # 13/18
    # F1 = 2TP / (n_true + n_pred): a 4/(3+2)=0.8, b 2/(2+2)=0.5, c 2/(1+1)=1, d 0/(0+1)=0;
    # macro over the classes in labels or predictions {a, b, c, d}: 2.3 / 4.
    assert m["macro_f1"] == pytest.approx(0.575)
    assert m["num_samples"] == 6


def test_top_k_hand_computed_and_ties():
    # Sample 2's label is 2nd (hit from k=2), sample 4's is 4th (hit only at k=4).
    assert top_k_accuracy(SCORES, LABELS, 2) == pytest.approx(5 / 6)
    assert top_k_accuracy(SCORES, LABELS, 3) == pytest.approx(5 / 6)
    assert top_k_accuracy(SCORES, LABELS, 4) == 1.0
    # A tie goes to the lower class index, as argmax does: label 1 is not top-1, but is top-2.
    assert top_k_accuracy([[1.0, 1.0, 0.0]], [1], 1) == 0.0
    assert top_k_accuracy([[1.0, 1.0, 0.0]], [1], 2) == 1.0


def test_metrics_from_predictions_without_scores():
    m = classification_metrics(None, LABELS, preds=SCORES.argmax(1), num_classes=4)
    assert m["top1"] == pytest.approx(4 / 6) and m["top5"] is None
    assert m["macro_f1"] == pytest.approx(0.575)
    # Without class_names, the names are the indices.
    assert set(m["per_class_accuracy"]) == {"0", "1", "2"} and m["absent_classes"] == ["3"]


def test_macro_f1_only_over_classes_seen():
    # K = 5 but classes 3, 4 are neither true nor predicted: they do not dilute macro F1.
    scores = np.eye(5)[[0, 1, 2]]
    m = classification_metrics(scores, [0, 1, 2])
    assert m["macro_f1"] == 1.0 and m["mean_class_accuracy"] == 1.0
    assert m["absent_classes"] == ["3", "4"]


@pytest.mark.parametrize(
    "labels, match",
    [([0, 0, 0, 1, 1, -1], "unknown"), ([0, 0, 0, 1, 1, 4], "4 classes"), ([[0]], "1-D")],
)
def test_bad_labels_are_rejected(labels, match):
    with pytest.raises(DataError, match=match):
        classification_metrics(SCORES if len(labels) == 6 else SCORES[:1], labels)


def test_class_names_must_match():
    with pytest.raises(DataError, match="3 class names for 4"):
        classification_metrics(SCORES, LABELS, ["a", "b", "c"])


def test_average_ranks_share_ties():
    # sorted: 0.1 -> 1, 0.35 -> 2, the two 0.4 -> (3 + 4) / 2, 0.8 -> 5
    assert average_ranks([0.1, 0.4, 0.35, 0.8, 0.4]).tolist() == [1, 3.5, 2, 5, 3.5]


def test_binary_metrics_hand_computed():
    probs = [0.1, 0.4, 0.35, 0.8, 0.4]
    labels = [0, 0, 1, 1, 1]
    m = binary_metrics(probs, labels)
    # AUC over the 3 x 2 (pos, neg) pairs: 0.35>0.1, 0.35<0.4, 0.8>0.1, 0.8>0.4, 0.4>0.1,
    # 0.4=0.4 (one half): (1 + 0 + 1 + 1 + 1 + 0.5) / 6 = 0.75.
    assert m["auc"] == pytest.approx(0.75)
    # Threshold 0.5: only 0.8 is positive -> TP 1, FP 0, FN 2, TN 2.
    assert m["accuracy"] == pytest.approx(3 / 5)
    assert m["precision"] == 1.0 and m["recall"] == pytest.approx(1 / 3)
    assert m["f1"] == pytest.approx(2 / (2 + 0 + 2))
    assert m["balanced_accuracy"] == pytest.approx((1 / 3 + 2 / 2) / 2)
    assert (m["num_positive"], m["num_negative"]) == (3, 2)


def test_binary_threshold_is_strict_and_auc_needs_both_classes():
    assert binary_metrics([0.5], [0])["accuracy"] == 1.0  # 0.5 is not > 0.5: predicted negative
    m = binary_metrics([0.2, 0.9], [1, 1])
    assert m["auc"] is None and m["balanced_accuracy"] is None and m["accuracy"] == 0.5
    with pytest.raises(DataError, match="0 or 1"):
        binary_metrics([0.2, 0.9], [1, -1])


def test_auc_equals_pairwise_definition_on_random_ties():
    rng = np.random.default_rng(0)
    s = rng.integers(0, 6, size=80) / 5.0  # many ties
    y = rng.integers(0, 2, size=80)
    pos, neg = s[y == 1], s[y == 0]
    pairwise = ((pos[:, None] > neg[None]).sum() + 0.5 * (pos[:, None] == neg[None]).sum()) / (len(pos) * len(neg))
    assert roc_auc(s, y) == pytest.approx(pairwise, abs=1e-12)


def test_video_level_means_clip_probabilities():
    v = video_level([0.2, 0.6, 0.9, 0.3, 0.5], [7, 7, 3, 3, 3], labels=[1, 1, 0, 0, 0])
    assert v.video_ids == [7, 3]  # order of first appearance
    assert v.scores == pytest.approx([0.4, (0.9 + 0.3 + 0.5) / 3])
    assert v.labels.tolist() == [1, 0] and v.num_clips.tolist() == [2, 3]
    # Video 7 (win) at 0.4 -> predicted lose; video 3 (lose) at 0.567 -> predicted win.
    m = binary_metrics(v.scores, v.labels)
    assert m["accuracy"] == 0.0 and m["auc"] == 0.0
    two_class = video_level([[0.2, 0.8], [0.6, 0.4]], ["a", "a"])
    assert two_class.scores.shape == (1, 2) and two_class.labels is None
    assert two_class.scores[0] == pytest.approx([0.4, 0.6])


def test_video_level_rejects_mixed_labels():
    with pytest.raises(DataError, match="video 7"):
        video_level([0.2, 0.6], [7, 7], labels=[1, 0])


# -- plots ------------------------------------------------------------------------------------
def _png_size(path):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_confusion_matrix_png_grows_with_classes(tmp_path):
    from microgesture.domain.classes import IMIGUE_CLASSES

    small = plot_confusion_matrix(confusion_matrix(LABELS, SCORES.argmax(1), 4), None, tmp_path / "s.png")
    rng = np.random.default_rng(0)
    y = rng.integers(0, 32, 300)
    cm = confusion_matrix(y, np.where(rng.random(300) < 0.6, y, rng.integers(0, 32, 300)), 32)
    big = plot_confusion_matrix(cm, IMIGUE_CLASSES, tmp_path / "big.png", normalize=True)
    (ws, hs), (wb, hb) = _png_size(small), _png_size(big)
    assert wb > 1.5 * ws and hb > 1.5 * hs  # 32 long names get a larger canvas
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.png", "s.png"]  # no temp files left
    with pytest.raises(ValueError, match="3 class names"):
        plot_confusion_matrix(cm, ["a", "b", "c"], tmp_path / "x.png")


LIGHTNING_CSV = """epoch,step,train_loss_epoch,train_loss_step,train_top1,val_loss,val_top1
0,9,,2.5,,,
0,19,,2.1,,,
0,19,,,,1.9,0.25
0,19,2.3,,0.2,,
1,29,,1.7,,,
1,39,,1.5,,,
1,39,,,,nan,0.5
1,39,1.6,,0.4,,
"""


def test_read_training_log_handles_interleaved_rows(tmp_path):
    path = tmp_path / "metrics.csv"
    path.write_text(LIGHTNING_CSV)
    series = read_training_log(path)
    # train_loss_step is dropped because train_loss_epoch exists.
    assert set(series) == {"train_loss_epoch", "train_top1", "val_loss", "val_top1"}
    xs, ys = series["train_loss_epoch"]
    assert xs.tolist() == [0, 1] and ys.tolist() == [2.3, 1.6]
    xs, ys = series["val_loss"]  # the NaN of epoch 1 is skipped
    assert xs.tolist() == [0] and ys.tolist() == [1.9]
    out = plot_training_curves(path, tmp_path / "curves.png")
    assert _png_size(out)[0] > 100


def test_training_log_without_epoch_or_metrics(tmp_path):
    path = tmp_path / "metrics.csv"
    path.write_text("step,train_loss\n0,3.0\n0,1.0\n5,2.0\n")
    # No epoch column: x is the step; two values at one step are averaged.
    assert {k: (x.tolist(), y.tolist()) for k, (x, y) in read_training_log(path).items()} == {
        "train_loss": ([0, 5], [2.0, 2.0])
    }
    empty = tmp_path / "empty.csv"
    empty.write_text("epoch,step,val_top1\n0,1,\n")
    with pytest.raises(DataError, match="no numeric metric"):
        plot_training_curves(empty, tmp_path / "e.png")
    assert not (tmp_path / "e.png").exists()


def test_training_curves_from_dict(tmp_path):
    out = plot_training_curves({"val_top1": [0.1, float("nan"), 0.3]}, tmp_path / "d.png")
    assert _png_size(out)[0] > 100
