"""Heatmap volumes (data/transforms/heatmap.py): values against a per-pixel reference, the box,
flips, the pixel frame behind Normalize, several persons and clips, and bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest

from microgesture.data.formats.annotations import make_clip
from microgesture.data.transforms import Compose, Normalize, RandomFlip, UniformSample
from microgesture.data.transforms.heatmap import (
    HeatmapVolume,
    PersonBox,
    RandomBoxCrop,
    heatmap_flip_permutation,
    limb_pairs,
)
from microgesture.data.transforms.pipelines import Augment, HeatmapInput, build_pipeline
from microgesture.domain.layouts import IMIGUE22, LAYOUTS, JointLayout
from microgesture.errors import ConfigError, DataError
from microgesture.train.config import load_config

NECK, R_SH, L_SH, R_EL, R_WR, L_EL, L_WR = 1, 2, 5, 3, 4, 6, 7


def posed(total: int = 6, persons: int = 1, nan: tuple[int, int] | None = None) -> dict:
    """imigue22 upper body in pixels, the left wrist moving right; person p shifted right by 200 px."""
    kp = np.zeros((persons, total, 22, 2), np.float32)
    score = np.zeros((persons, total, 22), np.float32)
    pose = {NECK: (100, 50), R_SH: (80, 50), L_SH: (120, 52), R_EL: (78, 90), R_WR: (70, 130),
            L_EL: (125, 90), L_WR: (140, 120), 0: (100, 20), 8: (95, 15), 9: (105, 16)}
    for j, xy in pose.items():
        kp[:, :, j] = xy
        score[:, :, j] = 0.5 + 0.04 * j
    kp[:, :, L_WR, 0] += 3 * np.arange(total)
    kp[:, :, :, 0] += 200 * np.arange(persons)[:, None, None]
    if nan is not None:
        kp[0, nan[0], nan[1]] = np.nan
    return make_clip(frame_dir="0007_3", label=0, keypoint=kp, keypoint_score=score, img_shape=(300, 640),
                     layout="imigue22")


def reference_volume(kp, score, box, size, sigma, pairs, num_joints):
    """Per-pixel loops straight from the definition (module doc), for tiny volumes only."""
    x0, y0, side = box
    persons, frames = kp.shape[:2]
    out = np.zeros((num_joints + len(pairs), frames, size, size))
    for m in range(persons):
        for t in range(frames):
            uv = (kp[m, t] - [x0, y0]) * size / side - 0.5
            for i in range(size):
                for j in range(size):
                    p = np.array([j, i], float)
                    for v in range(num_joints):
                        if score[m, t, v] > 0:
                            d2 = ((p - uv[v]) ** 2).sum()
                            out[v, t, i, j] = max(out[v, t, i, j], score[m, t, v] * math.exp(-d2 / 2 / sigma**2))
                    for k, (a, b) in enumerate(pairs):
                        w = min(score[m, t, a], score[m, t, b])
                        if w > 0:
                            e = uv[b] - uv[a]
                            s = np.clip((p - uv[a]) @ e / max(e @ e, 1e-6), 0, 1)
                            d2 = ((p - uv[a] - s * e) ** 2).sum()
                            c = num_joints + k
                            out[c, t, i, j] = max(out[c, t, i, j], w * math.exp(-d2 / 2 / sigma**2))
    return out


def volume(sample, **kw):
    return Compose([PersonBox(kw.pop("margin", 0.1)), HeatmapVolume(**kw)])(sample)


def test_values_match_the_per_pixel_definition_for_two_persons():
    clip = posed(total=3, persons=2)
    out = volume(clip, size=9, sigma=0.8)
    pairs = limb_pairs(IMIGUE22)
    ref = reference_volume(clip["keypoint"], clip["keypoint_score"], out["heatmap_box"], 9, 0.8, pairs, 22)
    assert out["heatmap"].shape == (22 + len(pairs), 3, 9, 9) and out["heatmap"].dtype == np.float32
    np.testing.assert_allclose(out["heatmap"], ref, atol=4e-4)  # drawn within 4 sigmas
    assert out["heatmap"][10].max() == 0  # an undetected joint draws nothing


def test_peak_sits_on_the_joint_with_its_confidence():
    clip = posed(total=1)
    box = np.array([0, 0, 320], np.float32)  # 320 px -> 32 heatmap pixels: 10 px per heatmap pixel
    out = HeatmapVolume(size=32, sigma=0.6, limbs=False)(dict(clip, heatmap_box=box))["heatmap"]
    # the neck at (100, 50) px -> heatmap (10 - 0.5, 5 - 0.5): between 4 pixel centres
    y, x = np.unravel_index(out[NECK, 0].argmax(), (32, 32))
    assert (y, x) in {(4, 9), (4, 10), (5, 9), (5, 10)}
    assert out[NECK, 0].max() == pytest.approx(clip["keypoint_score"][0, 0, NECK] * math.exp(-0.5 / 2 / 0.36), rel=1e-4)


def test_box_is_one_square_around_all_frames_with_margin():
    clip = posed(total=6)
    out = PersonBox(margin=0.1)(dict(clip))
    x0, y0, side = out["heatmap_box"]
    det = clip["keypoint"][clip["keypoint_score"] > 0]
    lo, hi = det.min(0), det.max(0)
    assert side == pytest.approx((hi - lo).max() * 1.2)
    assert x0 < lo[0] and y0 < lo[1] and x0 + side > hi[0] and y0 + side > hi[1]
    # the moving wrist moves in the volume: its peak goes right, frame after frame
    heat = HeatmapVolume(size=32, limbs=False)(out)["heatmap"][L_WR]
    cols = [np.unravel_index(f.argmax(), f.shape)[1] for f in heat]
    assert cols == sorted(cols) and cols[-1] > cols[0]


def test_flip_mirrors_the_volume_and_swaps_left_and_right_channels():
    clip = posed(total=4)
    plain = Compose([UniformSample(4, "test"), Normalize(), PersonBox(), HeatmapVolume(size=16)])(dict(clip))
    flipped = Compose([UniformSample(4, "test"), Normalize(), RandomFlip(1.0), PersonBox(),
                       HeatmapVolume(size=16)])(dict(clip))
    perm = heatmap_flip_permutation(IMIGUE22)
    assert flipped["flipped"] and not np.array_equal(perm, np.arange(len(perm)))
    np.testing.assert_allclose(flipped["heatmap"], plain["heatmap"][perm][..., ::-1], atol=1e-5)


def test_normalised_keypoints_give_the_pixel_volume_for_several_persons():
    clip = posed(total=4, persons=2)
    raw = volume(dict(clip), size=16)["heatmap"]
    normalised = Compose([Normalize(), PersonBox(), HeatmapVolume(size=16)])(dict(clip))["heatmap"]
    np.testing.assert_allclose(normalised, raw, atol=1e-4)
    # the second person stays beside the first (a neck map with two peaks far apart)
    neck = normalised[NECK, 0]
    assert (neck > 0.5 * neck.max()).any(axis=0).sum() >= 2


def test_pipeline_multi_clip_subset_of_frames_and_training_crop():
    clip = posed(total=20)
    test = build_pipeline(["joint", "heatmap"], layout="imigue22", num_frames=8, train=False, num_clips=2,
                          heatmap=HeatmapInput(size=12, num_frames=4))
    out = test(dict(clip))
    k = 22 + len(limb_pairs(IMIGUE22))
    assert out["heatmap"].shape == (2, k, 4, 12, 12) and out["joint"].shape[:2] == (2, 1)
    train = build_pipeline(["heatmap"], layout="imigue22", num_frames=8, train=True,
                           augment=Augment(flip_p=0, rotate_deg=0, scale=(1, 1), shift=0),
                           heatmap=HeatmapInput(size=12, crop_area=(0.5, 0.5)))
    a = train(dict(clip), np.random.default_rng(3))
    b = train(dict(clip), np.random.default_rng(3))
    np.testing.assert_array_equal(a["heatmap"], b["heatmap"])
    uncropped = build_pipeline(["heatmap"], layout="imigue22", num_frames=8, train=True,
                               augment=Augment(flip_p=0, rotate_deg=0, scale=(1, 1), shift=0),
                               heatmap=HeatmapInput(size=12))
    full = uncropped(dict(clip), np.random.default_rng(3))["heatmap_box"]  # the same frames
    x0, y0, side = a["heatmap_box"]
    assert side == pytest.approx(full[2] * math.sqrt(0.5), rel=1e-5)
    assert full[0] <= x0 and x0 + side <= full[0] + full[2] + 1e-3


def test_random_box_crop_needs_a_box_and_a_generator():
    with pytest.raises(ConfigError, match="PersonBox"):
        RandomBoxCrop()(dict(posed()), np.random.default_rng(0))
    with pytest.raises(TypeError, match="Generator"):
        RandomBoxCrop()(PersonBox()(dict(posed())), None)
    with pytest.raises(ConfigError, match="area"):
        RandomBoxCrop((0.0, 1.0))


def test_nan_keypoint_is_a_named_error_and_nothing_is_written():
    clip = posed(total=6, nan=(2, R_WR))
    pipeline = build_pipeline(["heatmap"], layout="imigue22", num_frames=6, train=False)
    with pytest.raises(DataError, match=r"0007_3.*'keypoint'.*joint 'r_wrist' at frame 2"):
        pipeline(clip)
    assert "heatmap" not in clip and "heatmap_box" not in clip
    nan_neck = posed(total=6, nan=(0, NECK))
    with pytest.raises(DataError, match="norm_center.*NaN"):
        pipeline(nan_neck)
    bad_score = posed(total=6)
    bad_score["keypoint_score"][0, 1, 0] = np.nan
    with pytest.raises(DataError, match="score of joint 'nose' at frame 1"):
        volume(bad_score)


@pytest.fixture
def dot_layout():
    """A layout with one joint and so no limb."""
    layout = JointLayout("dot1", ("nose",), (), center=0, flip_pairs=())
    LAYOUTS[layout.name] = layout
    yield layout
    del LAYOUTS[layout.name]


def test_layout_without_limbs_is_refused_before_any_sample(dot_layout):
    with pytest.raises(ConfigError, match=r"data\.heatmap\.limbs: layout 'dot1' has no limb list"):
        build_pipeline(["heatmap"], layout="dot1", num_frames=4, train=False)
    sets = ["data.layout=dot1", "data.annotations=x.pkl", "data.synthetic=null",
            "model.streams={heatmap: {encoder: posec3d}}"]
    with pytest.raises(ConfigError, match=r"data\.heatmap\.limbs: layout 'dot1' has no limb list"):
        load_config(None, sets)
    cfg = load_config(None, sets + ["data.heatmap.limbs=false"])
    assert cfg.model.streams["heatmap"].in_channels == 1
    kp = np.ones((1, 3, 1, 2), np.float32)
    clip = make_clip(frame_dir="d", label=0, keypoint=kp, keypoint_score=np.ones((1, 3, 1)), img_shape=(9, 9),
                     layout="dot1")
    with pytest.raises(ConfigError, match="no limb list"):
        volume(clip)


def test_config_resolves_and_checks_the_channels():
    base = ["data.annotations=x.pkl", "data.synthetic=null", "data.layout=imigue22"]
    cfg = load_config(None, base + ["model.streams={heatmap: {encoder: posec3d}}"])
    assert cfg.model.streams["heatmap"].in_channels == 22 + len(limb_pairs(IMIGUE22))
    cfg = load_config(None, base + ["model.streams={heatmap: {encoder: posec3d}}", "data.heatmap.limbs=false"])
    assert cfg.model.streams["heatmap"].in_channels == 22
    with pytest.raises(ConfigError, match=r"model\.streams\.heatmap\.in_channels: 17, but data\.heatmap draws 22"):
        load_config(None, base + ["model.streams={heatmap: {encoder: posec3d, in_channels: 17}}",
                                  "data.heatmap.limbs=false"])
    with pytest.raises(ConfigError, match=r"data\.heatmap\.crop_area"):
        load_config(None, base + ["data.heatmap.crop_area=[0.9, 0.5]"])
    with pytest.raises(ConfigError, match=r"'posec3d' reads heatmap input, but 'joint' is skeleton"):
        load_config(None, base + ["model.streams={joint: {encoder: posec3d}}"])
