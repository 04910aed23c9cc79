"""Temperature scaling, ECE and reliability against hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from microgesture.errors import DataError
from microgesture.eval.calibration import (
    expected_calibration_error,
    fit_temperature,
    nll,
    plot_reliability,
    reliability,
    softmax,
)


def test_ece_by_hand():
    # Two bins used (of 10): [0.9, 1] holds 2 samples of confidence 0.9 (1 right), [0.6, 0.7) 2 of 0.6 (both right).
    probs = np.array([[0.9, 0.1], [0.9, 0.1], [0.4, 0.6], [0.6, 0.4]])
    labels = np.array([0, 1, 1, 0])
    r = reliability(probs, labels, bins=10)
    assert r["count"][9] == 2 and r["count"][8] == 0 and r["count"][6] == 2 and r["count"].sum() == 4
    assert r["accuracy"][9] == 0.5 and r["accuracy"][6] == 1.0
    # |0.5 - 0.9| * 2/4 + |1.0 - 0.6| * 2/4 = 0.4
    assert expected_calibration_error(probs, labels, bins=10) == pytest.approx(0.4)
    assert expected_calibration_error(np.eye(3), [0, 1, 2], bins=10) == 0.0  # confident and right


def test_temperature_recovers_a_known_scale():
    rng = np.random.default_rng(0)
    true = rng.normal(size=(4000, 5)) * 2.0
    labels = np.array([rng.choice(5, p=p) for p in softmax(true)])
    over = true * 3.0  # the same model, 3x overconfident
    t = fit_temperature(over, labels)
    assert t == pytest.approx(3.0, rel=0.1)
    assert nll(over, labels, t) < nll(over, labels, 1.0)
    before = expected_calibration_error(softmax(over), labels)
    after = expected_calibration_error(softmax(over, t), labels)
    assert after < before / 2
    labels[:10] = -1  # unlabelled samples are ignored
    assert fit_temperature(over, labels) == pytest.approx(t, rel=0.05)


def test_bad_inputs_and_plot(tmp_path):
    with pytest.raises(DataError, match="no labelled"):
        fit_temperature(np.zeros((3, 2)), [-1, -1, -1])
    with pytest.raises(DataError, match="outside the 2 classes"):
        nll(np.zeros((2, 2)), [0, 5])
    path = plot_reliability({"raw": (np.array([[0.8, 0.2], [0.3, 0.7]]), np.array([0, 0]))}, tmp_path / "r.png")
    assert path.stat().st_size > 1000
