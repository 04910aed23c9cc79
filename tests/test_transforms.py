from __future__ import annotations

import numpy as np
import pytest

from microgesture.data.formats.annotations import make_clip
from microgesture.domain.layouts import IMIGUE22, IMIGUE22_FROM_MIGA35, MIGA35
from microgesture.data.transforms import (
    Compose,
    FormatStream,
    Normalize,
    RandomAffine,
    RandomFlip,
    SelectLayout,
    UniformSample,
    skeleton_pipeline,
)
from microgesture.errors import ConfigError, DataError

NECK, R_SH, L_SH, R_EL, R_WR, L_EL, L_WR = 1, 2, 5, 3, 4, 6, 7  # same indices in miga35 and imigue22


def frame_clip(total: int, persons: int = 1, joints: int = 22, layout: str = "imigue22") -> dict:
    """keypoint x = frame index + 1 (never 0, so every joint counts as detected), y = joint + 1."""
    t = np.arange(total, dtype=np.float32)[None, :, None]
    v = np.arange(joints, dtype=np.float32)[None, None, :]
    kp = np.stack(np.broadcast_arrays(t + 1, v + 1), axis=-1).repeat(persons, 0)
    return make_clip(frame_dir="0001_0", label=0, keypoint=kp, keypoint_score=np.ones(kp.shape[:3]),
                     img_shape=(720, 1280), layout=layout)


def posed_clip(total: int = 6) -> dict:
    """A person in imigue22 pixels: neck (100, 50), shoulders 40 px apart, right elbow below."""
    kp = np.zeros((1, total, 22, 2), np.float32)
    score = np.zeros((1, total, 22), np.float32)
    for j, xy in {NECK: (100, 50), R_SH: (80, 50), L_SH: (120, 50), R_EL: (80, 90), R_WR: (70, 130),
                  L_EL: (125, 90), L_WR: (140, 120), 0: (100, 20)}.items():
        kp[0, :, j] = xy
        score[0, :, j] = 0.9
    kp[0, :, L_WR, 0] += np.arange(total)  # the left wrist moves right by 1 px per frame
    return make_clip(frame_dir="0001_1", label=0, keypoint=kp, keypoint_score=score, img_shape=(720, 1280),
                     layout="imigue22")


# ----------------------------------------------------------------------------- UniformSample


def test_train_sampling_one_frame_per_segment_and_gathers():
    rng = np.random.default_rng(0)
    for _ in range(20):
        out = UniformSample(5, "train")(frame_clip(20), rng)
        inds = out["frame_inds"]
        assert inds.dtype == np.int64 and inds.shape == (5,)
        assert np.all(inds // 4 == np.arange(5))  # segments [0,4), [4,8), ...
        np.testing.assert_array_equal(out["keypoint"][0, :, 0, 0], inds + 1)
        assert out["keypoint"].shape == (1, 5, 22, 2) and out["keypoint_score"].shape == (1, 5, 22)


def test_train_sampling_uneven_segments_and_randomness():
    rng = np.random.default_rng(1)
    seen = set()
    for _ in range(50):
        inds = UniformSample(3, "train")(frame_clip(7), rng)["frame_inds"]
        assert np.all((inds >= [0, 2, 4]) & (inds < [2, 4, 7]))  # edges floor(i*7/3)
        seen.add(tuple(inds))
    assert len(seen) > 5


def test_test_sampling_centres_deterministic():
    a = UniformSample(5, "test")(frame_clip(20), None)["frame_inds"]
    b = UniformSample(5, "test")(frame_clip(20), np.random.default_rng(3))["frame_inds"]
    np.testing.assert_array_equal(a, [2, 6, 10, 14, 18])
    np.testing.assert_array_equal(a, b)


def test_multi_clip_test_sampling():
    out = UniformSample(5, "test", num_clips=2)(frame_clip(20, persons=2), None)
    assert out["frame_inds"].shape == (2, 5) and out["num_clips"] == 2
    np.testing.assert_array_equal(out["frame_inds"], [[1, 5, 9, 13, 17], [3, 7, 11, 15, 19]])
    assert out["keypoint"].shape == (2, 2, 5, 22, 2) and out["keypoint_score"].shape == (2, 2, 5, 22)
    np.testing.assert_array_equal(out["keypoint"][1, 1, :, 0, 0], out["frame_inds"][1] + 1)


@pytest.mark.parametrize("total", [1, 3, 7])
def test_short_clips_repeat_frames_in_order(total):
    rng = np.random.default_rng(2)
    for mode in ("train", "test"):
        for _ in range(10):
            inds = UniformSample(8, mode)(frame_clip(total), rng)["frame_inds"]
            assert inds.shape == (8,) and inds.min() >= 0 and inds.max() < total
            assert np.all(np.diff(inds) >= 0)
            assert set(inds.tolist()) == set(range(total))
    np.testing.assert_array_equal(UniformSample(8, "test")(frame_clip(3), None)["frame_inds"], [0, 0, 0, 1, 1, 2, 2, 2])


def test_sampling_errors():
    with pytest.raises(ConfigError):
        UniformSample(0)
    with pytest.raises(ConfigError):
        UniformSample(4, "val")
    with pytest.raises(TypeError):
        UniformSample(4, "train")(frame_clip(10), None)
    with pytest.raises(DataError, match="keypoint_score"):
        UniformSample(4, "test")({**frame_clip(10), "keypoint_score": np.ones((1, 9, 22))}, None)


# ----------------------------------------------------------------------------- SelectLayout


def test_select_layout_miga35_to_imigue22():
    clip = frame_clip(4, joints=35, layout="miga35")
    clip["keypoint_score"] = np.broadcast_to(np.arange(35, dtype=np.float32), (1, 4, 35))
    out = SelectLayout("imigue22")(clip)
    assert out["layout"] == "imigue22" and out["keypoint"].shape == (1, 4, 22, 2)
    assert out["keypoint"][0, 0, 8, 1] == MIGA35.index("r_eye") + 1  # imigue22 joint 8 is miga35 joint 15
    np.testing.assert_array_equal(out["keypoint_score"][0, 0], IMIGUE22_FROM_MIGA35)
    with pytest.raises(ConfigError):
        SelectLayout("bogus")
    with pytest.raises(DataError, match="layout"):
        SelectLayout("miga35")(frame_clip(4))


# ----------------------------------------------------------------------------- Normalize


def test_normalize_neck_at_zero_unit_shoulders_and_missing_zero():
    clip = posed_clip()
    clip["keypoint"][0, 2, NECK] = (500, 500)  # neck dropped in frame 2: junk coordinates, score 0
    clip["keypoint_score"][0, 2, NECK] = 0
    clip["keypoint"][0, 3, R_WR] = (0, 0)  # wrist dropped in frame 3: zero coordinates, score kept
    out = Normalize()(clip)
    kp, score = out["keypoint"], out["keypoint_score"]
    np.testing.assert_allclose(kp[0, [0, 1, 3], NECK], 0)
    np.testing.assert_allclose(kp[0, :, R_SH], [[-0.5, 0]] * 6)
    np.testing.assert_allclose(kp[0, :, L_SH], [[0.5, 0]] * 6)
    np.testing.assert_allclose(kp[0, 0, R_EL], [-0.5, 1.0])
    assert out["normalized"] and out["norm_scale"][0] == pytest.approx(40)
    np.testing.assert_allclose(out["norm_center"][0], [100, 50])
    assert np.all(kp[0, 2, NECK] == 0) and score[0, 2, NECK] == 0
    assert np.all(kp[0, 3, R_WR] == 0) and score[0, 3, R_WR] == 0
    assert np.all(kp[0, :, 12:] == 0)  # never detected
    assert kp.dtype == np.float32 and score.dtype == np.float32


def test_normalize_all_missing_and_fallbacks():
    empty = make_clip(frame_dir="e", label=0, keypoint=np.zeros((1, 3, 22, 2)), keypoint_score=np.zeros((1, 3, 22)),
                      img_shape=(720, 1280), layout="imigue22")
    out = Normalize()(empty)
    assert np.all(out["keypoint"] == 0) and np.isfinite(out["norm_scale"]).all()
    # no neck, no shoulders: centroid of detected joints, bounding box scale
    clip = posed_clip()
    clip["keypoint_score"][0, :, [NECK, R_SH, L_SH]] = 0
    out = Normalize()(clip)
    assert np.isfinite(out["keypoint"]).all() and out["norm_scale"][0] > 0
    det = out["keypoint_score"] > 0
    np.testing.assert_allclose(out["keypoint"][det].mean(0), 0, atol=1e-6)
    # a single detected joint: zero bbox, scale falls back to 1, no NaN
    one = posed_clip()
    one["keypoint_score"][:] = 0
    one["keypoint_score"][0, :, R_WR] = 1
    out = Normalize()(one)
    assert out["norm_scale"][0] == 1 and np.all(out["keypoint"] == 0) and (out["keypoint_score"] > 0).any()


# ----------------------------------------------------------------------------- flip and affine


def test_flip_normalized_swaps_sides_and_negates_x():
    base = Normalize()(posed_clip())
    out = RandomFlip(1.0)(dict(base))
    np.testing.assert_allclose(out["keypoint"][0, :, R_WR, 0], -base["keypoint"][0, :, L_WR, 0])
    np.testing.assert_allclose(out["keypoint"][0, :, R_WR, 1], base["keypoint"][0, :, L_WR, 1])
    np.testing.assert_array_equal(out["keypoint_score"][0, :, R_WR], base["keypoint_score"][0, :, L_WR])
    np.testing.assert_allclose(out["keypoint"][0, :, NECK], base["keypoint"][0, :, NECK])
    assert out["flipped"] is True and np.all(out["keypoint"][0, :, 12:] == 0)
    twice = RandomFlip(1.0)(dict(out))
    np.testing.assert_array_equal(twice["keypoint"], base["keypoint"])
    assert twice["flipped"] is False
    assert RandomFlip(0.0)(dict(base))["flipped"] is False


def test_flip_in_pixels_matches_flip_after_normalize():
    clip = posed_clip()
    pixel = RandomFlip(1.0)(dict(clip))
    assert pixel["keypoint"][0, 0, R_WR, 0] == 1279 - 140  # the left wrist, mirrored in a 1280 px image
    assert np.all(pixel["keypoint"][0, :, 12:] == 0)  # missing joints stay missing
    np.testing.assert_array_equal(RandomFlip(1.0)(dict(pixel))["keypoint"], clip["keypoint"])
    a = Normalize()(pixel)["keypoint"]
    b = RandomFlip(1.0)(Normalize()(dict(clip)))["keypoint"]
    np.testing.assert_allclose(a, b, atol=1e-6)


def test_flip_probability_uses_rng():
    rng = np.random.default_rng(0)
    flips = [RandomFlip(0.5)(Normalize()(posed_clip()), rng)["flipped"] for _ in range(40)]
    assert 5 < sum(flips) < 35
    with pytest.raises(TypeError):
        RandomFlip(0.5)(posed_clip(), None)


def test_affine_moves_detected_joints_only():
    base = Normalize()(posed_clip())
    det = base["keypoint_score"] > 0
    ident = RandomAffine(0.0, (1.0, 1.0), 0.0)(dict(base), np.random.default_rng(0))
    np.testing.assert_allclose(ident["keypoint"], base["keypoint"], atol=1e-6)
    out = RandomAffine(30.0, (0.5, 0.8), 0.2)(dict(base), np.random.default_rng(0))
    assert np.all(out["keypoint"][~det] == 0)
    assert not np.allclose(out["keypoint"][det], base["keypoint"][det])
    # a similarity transform: all distances shrink by the same factor in [0.5, 0.8]
    d0 = np.linalg.norm(base["keypoint"][0, 0, R_SH] - base["keypoint"][0, 0, R_WR])
    d1 = np.linalg.norm(out["keypoint"][0, 0, R_SH] - out["keypoint"][0, 0, R_WR])
    e0 = np.linalg.norm(base["keypoint"][0, 0, L_SH] - base["keypoint"][0, 0, 0])
    e1 = np.linalg.norm(out["keypoint"][0, 0, L_SH] - out["keypoint"][0, 0, 0])
    assert 0.5 <= d1 / d0 <= 0.8 and d1 / d0 == pytest.approx(e1 / e0, rel=1e-5)
    with pytest.raises(ConfigError, match="Normalize"):
        RandomAffine()(posed_clip(), np.random.default_rng(0))
    with pytest.raises(ConfigError):
        RandomAffine(scale=(1.2, 1.0))


# ----------------------------------------------------------------------------- FormatStream


def test_joint_and_bone_streams():
    base = Normalize()(posed_clip())
    base["keypoint_score"] = base["keypoint_score"].copy()
    base["keypoint_score"][0, 1, R_EL] = 0.0  # elbow lost in frame 1
    joint = FormatStream("joint")(dict(base))["joint"]
    assert joint.shape == (1, 6, 22, 3) and joint.dtype == np.float32
    np.testing.assert_array_equal(joint[..., 2], base["keypoint_score"])
    assert np.all(joint[0, 1, R_EL] == 0)
    bone = FormatStream("bone")(dict(base))["bone"]
    np.testing.assert_allclose(bone[0, 0, R_EL, :2], [0.0, 1.0])  # elbow - shoulder = (0, 40 px) / 40
    np.testing.assert_allclose(bone[0, 0, R_WR, :2], [-0.25, 1.0])  # wrist - elbow = (-10, 40) / 40
    assert np.all(bone[0, :, NECK, :2] == 0) and bone[0, 0, NECK, 2] == pytest.approx(0.9)
    assert np.all(bone[0, 1, R_EL] == 0) and np.all(bone[0, 1, R_WR] == 0)  # child or parent missing
    assert bone[0, 0, R_WR, 2] == pytest.approx(0.9)
    assert FormatStream("bone", with_score=False)(dict(base))["bone"].shape == (1, 6, 22, 2)
    with pytest.raises(ConfigError):
        FormatStream("velocity")


def test_motion_streams():
    base = Normalize()(posed_clip())
    motion = FormatStream("joint_motion")(dict(base))["joint_motion"]
    assert motion.shape == (1, 6, 22, 3)
    np.testing.assert_allclose(motion[0, :-1, L_WR, 0], 1 / 40, rtol=1e-5)  # 1 px per frame
    assert np.all(motion[0, -1, :, :2] == 0)
    assert np.all(motion[0, :, R_SH, :2] == 0) and motion[0, 0, R_SH, 2] == pytest.approx(0.9)
    base["keypoint_score"] = base["keypoint_score"].copy()
    base["keypoint_score"][0, 3, L_EL] = 0  # left elbow lost in frame 3: its bones vanish there
    bone_motion = FormatStream("bone_motion")(dict(base))["bone_motion"]
    np.testing.assert_allclose(bone_motion[0, [0, 1, 4], L_WR, 0], 1 / 40, rtol=1e-5)  # wrist-elbow stretches
    assert np.all(bone_motion[0, [2, 3], L_WR] == 0)  # motion into or out of the missing frame
    assert np.all(bone_motion[0, -1, :, :2] == 0) and bone_motion[0, -1, L_WR, 2] == pytest.approx(0.9)


# ----------------------------------------------------------------------------- pipeline


def miga_clip(total: int = 37, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    kp = rng.uniform(100, 700, (1, total, 35, 2)).astype(np.float32)
    score = rng.uniform(0.1, 1.0, (1, total, 35)).astype(np.float32)
    score[0, ::5, 7] = 0  # the left wrist drops out now and then
    return make_clip(frame_dir="0002_0", label=3, keypoint=kp, keypoint_score=score, img_shape=(720, 1280),
                     layout="miga35")


@pytest.mark.parametrize("stream", ["joint", "bone", "joint_motion", "bone_motion"])
def test_pipeline_shapes(stream):
    clip = miga_clip()
    kp_before = clip["keypoint"].copy()
    train = skeleton_pipeline(layout="imigue22", num_frames=16, stream=stream, train=True)
    out = train(clip, np.random.default_rng(0))
    assert out[stream].shape == (1, 16, 22, 3) and out[stream].dtype == np.float32
    assert np.isfinite(out[stream]).all() and out["frame_inds"].shape == (16,)
    assert isinstance(out["flipped"], bool) and out["layout"] == "imigue22"
    np.testing.assert_array_equal(clip["keypoint"], kp_before)  # the stored clip is untouched
    assert stream not in clip and clip["layout"] == "miga35"
    test = skeleton_pipeline(layout="imigue22", num_frames=16, stream=stream, train=False, num_clips=3)
    out = test(clip)
    assert out[stream].shape == (3, 1, 16, 22, 3) and out["frame_inds"].shape == (3, 16)


def test_pipeline_deterministic_given_seed():
    train = skeleton_pipeline(layout="imigue22", num_frames=8, stream="bone", train=True, flip_p=0.5)
    a = train(miga_clip(), np.random.default_rng(7))
    b = train(miga_clip(), np.random.default_rng(7))
    c = train(miga_clip(), np.random.default_rng(8))
    np.testing.assert_array_equal(a["bone"], b["bone"])
    np.testing.assert_array_equal(a["frame_inds"], b["frame_inds"])
    assert a["flipped"] == b["flipped"]
    assert not np.array_equal(a["bone"], c["bone"])
    assert isinstance(train, Compose) and [type(t).__name__ for t in train.transforms] == [
        "UniformSample", "SelectLayout", "Normalize", "RandomFlip", "RandomAffine", "FormatStream"]
    plain = skeleton_pipeline(layout="imigue22", num_frames=8, train=True, flip_p=0, rotate_deg=0,
                              scale=(1, 1), shift=0)
    assert len(plain.transforms) == 4
