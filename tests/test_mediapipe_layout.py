"""The MediaPipe layout and its declared conversions: which landmark becomes which joint."""

import numpy as np

from microgesture.domain.layouts import CONVERSIONS, IMIGUE22, MEDIAPIPE75, MIGA35, convert_rows


def _landmarks() -> np.ndarray:
    """[75, 3] rows whose x encodes the landmark index, all detected."""
    rows = np.zeros((MEDIAPIPE75.num_joints, 3))
    rows[:, 0] = np.arange(MEDIAPIPE75.num_joints)
    rows[:, 1] = 1000 + np.arange(MEDIAPIPE75.num_joints)
    rows[:, 2] = 0.9
    return rows


def test_blazepose_indices_keep_the_persons_sides():
    # MediaPipe's documented order: 11 left shoulder, 12 right shoulder, 15/16 wrists, 7/8 ears
    names = MEDIAPIPE75.joint_names
    assert (names[11], names[12], names[15], names[16]) == ("l_shoulder", "r_shoulder", "l_wrist", "r_wrist")
    assert (names[2], names[5], names[7], names[8]) == ("l_eye", "r_eye", "l_ear", "r_ear")
    # the right hand comes first, as in openpose67; each hangs from its own pose wrist
    assert names[33] == "r_wrist_hand" and names[54] == "l_wrist_hand"
    assert MEDIAPIPE75.parents[33] == 16 and MEDIAPIPE75.parents[54] == 15


def test_miga35_from_mediapipe_joint_by_joint():
    out = convert_rows(_landmarks(), MEDIAPIPE75, MIGA35)
    x = {name: out[j, 0] for j, name in enumerate(MIGA35.joint_names)}
    assert x["nose"] == 0
    assert x["r_shoulder"] == 12 and x["l_shoulder"] == 11
    assert x["r_elbow"] == 14 and x["l_elbow"] == 13 and x["r_wrist"] == 16 and x["l_wrist"] == 15
    assert x["r_eye"] == 5 and x["l_eye"] == 2 and x["r_ear"] == 8 and x["l_ear"] == 7
    assert x["neck"] == 11.5 and x["mid_hip"] == 23.5  # midpoints of the shoulders and of the hips
    assert x["l_big_toe"] == 31 and x["r_big_toe"] == 32 and x["l_heel"] == 29
    # fingertips: hand landmarks 4, 8, 12, 16, 20 of the right hand (33..53), then the left (54..74)
    assert [x[f"r_{f}_tip"] for f in ("thumb", "index", "middle", "ring", "pinky")] == [37, 41, 45, 49, 53]
    assert [x[f"l_{f}_tip"] for f in ("thumb", "index", "middle", "ring", "pinky")] == [58, 62, 66, 70, 74]
    # BlazePose has no small toes: undetected
    assert out[MIGA35.index("l_small_toe"), 2] == 0 and out[MIGA35.index("r_small_toe"), 2] == 0


def test_neck_needs_both_shoulders():
    rows = _landmarks()
    rows[12] = 0  # right shoulder undetected
    out = convert_rows(rows, MEDIAPIPE75, MIGA35)
    assert np.all(out[MIGA35.index("neck")] == 0)
    assert out[MIGA35.index("l_shoulder"), 2] == 0.9


def test_imigue22_from_mediapipe_matches_miga35_route():
    rows = _landmarks()
    direct = convert_rows(rows, MEDIAPIPE75, IMIGUE22)
    via = convert_rows(convert_rows(rows, MEDIAPIPE75, MIGA35), MIGA35, IMIGUE22)
    assert np.array_equal(direct, via)
    assert CONVERSIONS[("mediapipe75", "miga35")].note
