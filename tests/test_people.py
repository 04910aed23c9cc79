"""Which person is analysed when several are in view, and following them."""

import pytest

from microgesture.data.pose.people import Box, PersonTracker, body_roi, centrality, choose_person, follow

SIZE = (1000, 600)


def test_policy_prefers_large_and_central():
    centre = Box(450, 250, 550, 350)  # 100 px, in the middle
    edge = Box(850, 20, 990, 160)  # larger (140 px) but near a corner
    assert centrality(centre, SIZE) == pytest.approx(1.0)
    assert choose_person([edge, centre], SIZE) is centre
    big_centre = Box(400, 200, 600, 400)
    assert choose_person([centre, big_centre], SIZE) is big_centre
    assert choose_person([], SIZE) is None


def test_follow_takes_the_nearest_face_within_reach():
    previous = Box(100, 100, 200, 200)
    near, far = Box(130, 110, 230, 210), Box(600, 100, 700, 200)
    assert follow([far, near], previous) is near
    assert follow([far], previous) is None  # 500 px away, reach is 1.5 face widths


def test_tracker_keeps_its_person_and_gives_up_after_patience():
    tracker = PersonTracker(SIZE, patience=2)
    a, b = Box(420, 240, 520, 340), Box(800, 200, 900, 300)
    assert tracker.update([a, b]) is a and tracker.crowded
    moved = Box(430, 245, 530, 345)
    bigger_elsewhere = Box(700, 150, 950, 400)
    assert tracker.update([bigger_elsewhere, moved]) is moved  # followed, not re-chosen
    assert tracker.update([bigger_elsewhere]) is moved  # missed once: kept
    assert tracker.update([bigger_elsewhere]) is bigger_elsewhere  # missed again: chosen anew
    assert tracker.roi() is None  # only one face in view: the whole frame


def test_body_roi_is_below_and_around_the_face():
    face = Box(450, 100, 550, 220)
    roi = body_roi(face, SIZE)
    assert roi.x0 == pytest.approx(150) and roi.x1 == pytest.approx(850)
    assert roi.y0 == pytest.approx(100 - 0.6 * 120) and roi.y1 == 600  # clipped at the bottom
    tracker = PersonTracker(SIZE)
    tracker.update([face, Box(50, 50, 90, 90)])
    assert tracker.roi() == body_roi(face, SIZE)
