"""Segment decoding and the MiGA online metric against cases worked out by hand."""

import numpy as np
import pytest

from microgesture.eval.segments import (
    DecodeOptions,
    Segment,
    decode,
    frame_probabilities,
    match_video,
    overlap,
    segment_f1,
)


def test_overlap_is_the_kits_alpha():
    # [10, 20] vs [15, 30]: (20 - 15) / (30 - 10) = 0.25 (ends as points, no +1)
    assert overlap((0, 10, 20), (0, 15, 30)) == pytest.approx(0.25)
    assert overlap((0, 0, 9), (0, 0, 9)) == 1.0
    assert overlap((0, 0, 9), (0, 9, 19)) == 0.0  # touching at one frame
    assert overlap((0, 0, 5), (0, 8, 10)) == pytest.approx(-0.3)  # a gap: negative
    assert overlap((0, 7, 7), (0, 7, 7)) == 1.0  # 0 / 0 in the kit


def test_threshold_is_strict():
    # [0, 13] vs [0, 10] -> 10 / 13 > 0.3; [0, 10] vs [7, 17]: 3 / 17 = 0.176 no; [0, 10] vs [7, 10] = 3/10 = 0.3, not > 0.3
    assert match_video([(1, 0, 13)], [(1, 0, 10)]) == 1
    assert match_video([(1, 0, 10)], [(1, 7, 17)]) == 0
    assert match_video([(1, 0, 10)], [(1, 7, 10)]) == 0
    assert match_video([(2, 0, 10)], [(1, 0, 10)]) == 0  # right place, wrong class


def test_one_prediction_two_truths_kit_versus_one_to_one():
    # gt [0, 4] and [6, 10], prediction [0, 10]: alpha 4/10 and 4/10, both > 0.3
    preds, gts = [(3, 0, 10)], [(3, 0, 4), (3, 6, 10)]
    assert match_video(preds, gts, rule="kit") == 2
    assert match_video(preds, gts, rule="one_to_one") == 1
    kit = segment_f1({1: preds}, {1: gts}, rule="kit")
    assert kit.recall == 1.0 and kit.precision == 2.0  # the kit's precision can exceed 1
    strict = segment_f1({1: preds}, {1: gts}, rule="one_to_one")
    assert strict.precision == 1.0 and strict.recall == 0.5 and strict.f1 == pytest.approx(2 / 3)


def test_pooled_over_videos_by_hand():
    truths = {1: [(0, 0, 49), (5, 100, 149)], 2: [(7, 10, 60)], 3: [(1, 0, 20)]}
    preds = {
        1: [(0, 5, 45), (5, 160, 200), (9, 0, 49)],  # found, wrong place, wrong class
        2: [(7, 20, 70)],  # 40 / 60 = 0.67: found
        4: [(2, 0, 10)],  # a video without ground truth: a false positive
    }
    s = segment_f1(preds, truths)
    assert (s.found, s.predicted, s.truths) == (2, 5, 4)
    assert s.precision == pytest.approx(0.4) and s.recall == pytest.approx(0.5)
    assert s.f1 == pytest.approx(2 * 0.4 * 0.5 / 0.9)
    assert segment_f1({}, {}).f1 == 0.0


def test_first_prediction_in_order_is_taken():
    # both predictions match the first truth; with one_to_one the first is used, the second finds the next
    preds, gts = [(4, 0, 10), (4, 2, 12)], [(4, 1, 11), (4, 3, 11)]
    assert match_video(preds, gts, rule="one_to_one") == 2
    assert match_video(preds, gts, rule="kit") == 2


def _probs(labels, k=4, p=0.9, background=3):
    out = np.full((len(labels), k), (1 - p) / (k - 1))
    for t, c in enumerate(labels):
        out[t, background if c < 0 else c] = p
    return out


def test_decode_merges_short_gaps_and_drops_short_runs():
    #        0-9 class 0 | 10-11 bg | 12-21 class 0 | 22-29 bg | 30-32 class 1 (3 frames) | 33-39 bg
    labels = [0] * 10 + [-1] * 2 + [0] * 10 + [-1] * 8 + [1] * 3 + [-1] * 7
    segs = decode(_probs(labels), DecodeOptions(threshold=0.5, min_length=5, merge_gap=3, background=3))
    assert [(s.label, s.start, s.end) for s in segs] == [(0, 0, 21)]
    assert segs[0].score == pytest.approx((20 * 0.9 + 2 * 0.1 / 3) / 22)


def test_decode_gap_too_long_or_other_class_between():
    labels = [0] * 8 + [-1] * 5 + [0] * 8 + [2] * 2 + [0] * 8
    segs = decode(_probs(labels), DecodeOptions(threshold=0.5, min_length=4, merge_gap=3, background=3))
    # the 5-frame gap is too long; the 2-frame class-2 run is dropped, then its two neighbours merge
    assert [(s.label, s.start, s.end) for s in segs] == [(0, 0, 7), (0, 13, 30)]


def test_threshold_on_gesture_mass_with_background():
    probs = np.array([[0.3, 0.3, 0.0, 0.4]] * 6)  # background 0.4: gesture mass 0.6, best gesture class 0
    assert [(s.label, s.start, s.end) for s in decode(probs, DecodeOptions(0.5, 3, 0, background=3))] == [(0, 0, 5)]
    assert decode(probs, DecodeOptions(0.7, 3, 0, background=3)) == []
    # without a background class the best class itself must pass the threshold
    assert decode(probs[:, :3], DecodeOptions(0.5, 3, 0)) == []


def test_frame_probabilities_tent_weighted_and_nan_windows():
    # length 4: tent weights 1 - |o - 1.5| / 3 = 0.5, 5/6, 5/6, 0.5 at offsets 0..3
    windows = np.array([[1.0, 0.0], [0.0, 1.0], [np.nan, np.nan]])
    probs = frame_probabilities(windows, [0, 2, 6], length=4, total=12)
    assert probs.shape == (12, 2)
    assert np.allclose(probs[:2], [1, 0]) and np.allclose(probs[4:6], [0, 1])
    # frame 2: offset 2 of window 0 (5/6), offset 0 of window 1 (1/2) -> 0.625 for class 0
    assert probs[2, 0] == pytest.approx(0.625) and probs[3, 1] == pytest.approx(0.625)
    assert np.isnan(probs[6:]).all()  # only the person-less window covers them
    segs = decode(probs, DecodeOptions(0.5, 1, 0))
    assert segs == [Segment(0, 0, 2, pytest.approx(0.875)), Segment(1, 3, 5, pytest.approx(0.875))]
