"""Class weights, class-balanced sampling and head / medium / tail reports (arXiv 2606.13030's long tail)."""

from fractions import Fraction

import torch

import numpy as np
import pytest

from microgesture.data.samplers import ClassBalancedSampler, EpochSampler
from microgesture.errors import ConfigError
from microgesture.train.run import evaluate, fit
from microgesture.eval.longtail import class_groups, format_long_tail, long_tail_metrics
from conftest import interrupt_at, tiny_overrides
from microgesture.train.checkpoint import read_run_checkpoint
from microgesture.train.config import load_config
from microgesture.train.module import class_weights

# counts per class: 4, 1, 0 (absent), 16
LABELS = np.array([0] * 4 + [1] + [3] * 16 + [-1, -1])


def _normalised(raw: dict[int, Fraction]) -> list[float]:
    mean = sum(raw.values()) / len(raw)
    return [float(raw[c] / mean) if c in raw else 1.0 for c in range(4)]


def test_sqrt_weights_against_hand_computed_values():
    # 1/sqrt(n) = 1/2, 1, 1/4; their mean is 7/12, so the weights are 6/7, 12/7, (absent) 1, 3/7
    w = class_weights(LABELS, 4, "sqrt")
    np.testing.assert_allclose(w, [6 / 7, 12 / 7, 1.0, 3 / 7], rtol=1e-6)
    assert w.dtype == np.float32


def test_inverse_and_class_balanced_weights_against_hand_computed_values():
    # 1/n = 1/4, 1, 1/16: mean 21/48 -> 4/7, 16/7, 1, 1/7
    np.testing.assert_allclose(class_weights(LABELS, 4, "inverse"), [4 / 7, 16 / 7, 1.0, 1 / 7], rtol=1e-6)
    # effective number (Cui et al. 2019) with beta = 1/2: (1 - b) / (1 - b^n) = 8/15, 1, 32768/65535
    half = Fraction(1, 2)
    raw = {c: (1 - half) / (1 - half ** n) for c, n in ((0, 4), (1, 1), (3, 16))}
    np.testing.assert_allclose(class_weights(LABELS, 4, "class_balanced", beta=0.5), _normalised(raw), rtol=1e-6)
    # beta = 0 weighs every class alike; beta -> 1 tends to inverse frequency
    np.testing.assert_allclose(class_weights(LABELS, 4, "class_balanced", beta=0.0), np.ones(4))
    np.testing.assert_allclose(class_weights(LABELS, 4, "class_balanced", beta=0.999999),
                               class_weights(LABELS, 4, "inverse"), rtol=1e-4)
    assert class_weights(LABELS, 4, "none") is None


def test_config_names_the_bad_beta_and_weighting():
    with pytest.raises(ConfigError, match="optim.class_balance_beta"):
        load_config(None, ["optim.class_balance_beta=1.0"])
    with pytest.raises(ConfigError, match="optim.class_weighting"):
        load_config(None, ["optim.class_weighting=effective"])
    with pytest.raises(ConfigError, match="data.sampler"):
        load_config(None, ["data.sampler=balanced"])


def test_class_balanced_sampler_balances_and_is_exact_per_epoch():
    labels = np.array([0] * 90 + [1] * 9 + [2] * 1)
    sampler = ClassBalancedSampler(labels, power=0.0, seed=3)
    drawn = []
    for epoch in range(40):
        sampler.set_epoch(epoch)
        drawn += [i for i, _ in sampler]
    share = np.bincount(labels[drawn], minlength=3) / len(drawn)
    np.testing.assert_allclose(share, [1 / 3] * 3, atol=0.03)  # 4000 draws: 3 sigma is about 0.022
    sqrt = ClassBalancedSampler(labels, power=0.5, seed=3)
    np.testing.assert_allclose(np.bincount(labels, weights=sqrt.probabilities),
                               np.sqrt([90, 9, 1]) / np.sqrt([90, 9, 1]).sum())
    # the same (seed, epoch) always gives the same epoch, whatever came before: resume is exact
    again = ClassBalancedSampler(labels, power=0.0, seed=3)
    again.set_epoch(39)
    sampler.set_epoch(39)
    assert list(again) == list(sampler) and all(e == 39 for _, e in again)
    # ranks split the epoch as EpochSampler does
    whole = [i for i, _ in ClassBalancedSampler(labels, seed=3)]
    ranks = [[i for i, _ in ClassBalancedSampler(labels, seed=3, rank=r, world_size=2)] for r in (0, 1)]
    assert ranks[0] == whole[0::2] and ranks[1] == whole[1::2]
    assert sorted(i for i, _ in EpochSampler(100, seed=3)) == list(range(100))


def test_class_groups_by_training_counts():
    counts = [40, 24, 19, 9, 10, 4, 2, 0] + [10] * 8  # mean 9.875: head >= 19.75, tail <= 4.9375
    groups = class_groups(counts)
    assert groups["head"] == [0, 1]
    assert groups["tail"] == [5, 6, 7]
    assert sorted(groups["head"] + groups["medium"] + groups["tail"]) == list(range(16))


def test_long_tail_metrics_by_hand():
    train = [10, 10, 1, 1]  # mean 5.5: head 0, 1 (>= 11? no) -> all medium except 2, 3 tail
    assert class_groups(train) == {"head": [], "medium": [0, 1], "tail": [2, 3]}
    train = [30, 6, 2, 2]  # mean 10: head {0}, medium {1}, tail {2, 3}
    labels = np.array([0, 0, 0, 1, 1, 2, 3, 3])
    preds = np.array([0, 0, 1, 1, 0, 2, 0, 2])
    scores = np.eye(4)[preds]
    m = long_tail_metrics(scores, labels, train, ["a", "b", "c", "d"])
    g = m["groups"]
    # class a: TP 2, true 3, predicted 4 -> F1 4/7; b: TP 1, true 2, predicted 2 -> 1/2
    # c: TP 1, true 1, predicted 2 -> 2/3; d: TP 0 -> 0
    assert m["per_class_f1"] == pytest.approx({"a": 4 / 7, "b": 0.5, "c": 2 / 3, "d": 0.0})
    assert g["head"]["macro_f1"] == pytest.approx(4 / 7) and g["head"]["top1"] == pytest.approx(2 / 3)
    assert g["tail"]["macro_f1"] == pytest.approx(1 / 3) and g["tail"]["top1"] == pytest.approx(1 / 3)
    assert g["tail"]["mean_class_accuracy"] == pytest.approx(0.5) and g["tail"]["num_samples"] == 3
    text = format_long_tail({"model": m})
    assert "tail F1" in text and "33.33%" in text and "head 1, medium 1, tail 2" in text


@pytest.mark.slow
def test_balanced_sampler_resumes_exactly_and_evaluate_reports_groups(tiny_annotations, tmp_path):
    sets = tiny_overrides(tiny_annotations, epochs=2) + ["data.sampler=class_balanced",
                                                         "optim.class_weighting=class_balanced"]
    cfg = load_config(None, sets)
    straight = fit(cfg, tmp_path / "straight")
    with pytest.raises(SystemExit):
        fit(cfg, tmp_path / "broken", callbacks=[interrupt_at(5)])  # 4 steps an epoch: mid epoch 1
    resumed = fit(cfg, tmp_path / "broken", resume=True)
    a = read_run_checkpoint(straight.last_checkpoint)["state_dict"]
    b = read_run_checkpoint(resumed.last_checkpoint)["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    metrics = evaluate(cfg, straight.last_checkpoint, tmp_path / "eval")
    groups = metrics["long_tail"]["groups"]
    # the tiny set is balanced (8 training clips per class): every class is medium
    assert groups["medium"]["num_samples"] == metrics["num_samples"] == 8
    assert groups["medium"]["macro_f1"] == pytest.approx(metrics["macro_f1"])
    assert set(metrics["long_tail"]["per_class_f1"]) <= {f"class {k}" for k in range(4)}


def test_long_tail_table_for_the_demo(tiny_annotations, tmp_path):
    from microgesture.data.formats.annotations import load_annotations
    from microgesture.eval.longtail import long_tail_table
    from microgesture.eval.scores import write_scores

    data = load_annotations(tiny_annotations)
    test = [c for c in data["annotations"] if c["frame_dir"] in set(data["split"]["test"])]
    labels = np.array([c["label"] for c in test])
    write_scores(tmp_path / "s.csv", [c["frame_dir"] for c in test], np.eye(4)[labels], labels)
    text = long_tail_table({"perfect": tmp_path / "s.csv"}, tiny_annotations)
    assert "perfect" in text and text.count("100.00%") == 2  # medium F1 and top-1; no head or tail class
