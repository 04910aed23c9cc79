"""Pose extraction and the report on real footage nobody here made (`../shared/data`, skipped when absent).

Plausibility, per video: a person is found; the nose (BlazePose) lies inside the face box (the
face detector, a separate model); the shoulders are below the nose (not for the tai chi form,
where the person bows with the head at shoulder height: there at least 60% of frames); the pose's
wrist lies within half a hand's size of the hand model's own wrist landmark.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("mediapipe")
pytestmark = pytest.mark.slow  # MediaPipe over about 900 frames of real video

from microgesture.apps.analyze import AnalyzeOptions, analyze_video  # noqa: E402
from microgesture.apps.online import untrained_online_model  # noqa: E402
from microgesture.data.pose.extract import ExtractOptions, extract_video  # noqa: E402
from microgesture.data.windows import BACKGROUND  # noqa: E402
from microgesture.domain.classes import IMIGUE_CLASSES  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
VIDEOS = ["videos/face_touch_closeup.avi", "videos/talking_faces.mp4", "videos/two_people_lab.mp4",
          "videos/tai_chi.mp4", "smg/Sample0036_8358_8373.mp4", "smg/Sample0037_3960_4026.mp4",
          "smg/Sample0039_7327_7350.mp4"]
SHOULDERS_BELOW = {"videos/tai_chi.mp4": 0.6}


@pytest.mark.parametrize("name", VIDEOS)
def test_plausible_skeleton_on_real_footage(name, shared_data):
    ex = _extract(shared_data, name)
    lm, face = ex.landmarks, ex.face_boxes
    assert ex.person_found().mean() >= 0.8
    nose = lm[:, 0]
    has = (nose[:, 2] > 0) & (face[:, 4] > 0)
    assert has.sum() >= 0.5 * ex.num_frames
    margin = 0.1 * (face[:, 2] - face[:, 0])
    inside = (face[:, 0] - margin <= nose[:, 0]) & (nose[:, 0] <= face[:, 2] + margin) & \
             (face[:, 1] - margin <= nose[:, 1]) & (nose[:, 1] <= face[:, 3] + margin)
    assert inside[has].mean() >= 0.95
    both = (lm[:, 11, 2] > 0) & (lm[:, 12, 2] > 0) & (nose[:, 2] > 0)
    if both.sum() >= 5:  # a close-up may show no shoulders
        below = (lm[:, 11, 1] > nose[:, 1]) & (lm[:, 12, 1] > nose[:, 1])
        assert below[both].mean() >= SHOULDERS_BELOW.get(name, 0.95)
    ratios = []
    for pose_wrist, hand_wrist in ((16, 33), (15, 54)):
        ok = (lm[:, pose_wrist, 2] > 0) & (lm[:, hand_wrist, 2] > 0)
        size = np.ptp(lm[ok, hand_wrist:hand_wrist + 21, :2], axis=1).max(axis=1)
        ratios += list(np.linalg.norm(lm[ok, pose_wrist, :2] - lm[ok, hand_wrist, :2], axis=1) / size)
    assert len(ratios) >= 5, "no hand found"
    assert np.mean(np.array(ratios) < 0.5) >= 0.7


_CACHE: dict = {}  # one extraction per video for the whole module


def _extract(root: Path, name: str):
    if name not in _CACHE:
        _CACHE[name] = extract_video(root / name, ExtractOptions(stride=2))
    return _CACHE[name]


def test_report_on_real_footage(shared_data, tmp_path):
    model = untrained_online_model(REPO / "configs" / "synthetic" / "online_agcn.yaml",
                                   list(IMIGUE_CLASSES) + [BACKGROUND])
    video = shared_data / "videos" / "face_touch_closeup.avi"
    analysis = analyze_video(video, model, tmp_path, options=AnalyzeOptions(extract=ExtractOptions(stride=3)),
                             progress=False)
    summary = json.loads((tmp_path / "analysis.json").read_text())
    assert summary["person_frames"] == analysis.num_frames == 164
    html = (tmp_path / "report.html").read_text()
    assert "face_touch_closeup.avi" in html and "data:image/png;base64," in html
