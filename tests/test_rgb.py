"""RGB clips: frame indices shared with the skeleton, alignment on synthetic videos, crops, errors."""

from __future__ import annotations

import numpy as np
import pytest

from microgesture.data.formats.annotations import load_annotations, resolve_video_path
from microgesture.data.transforms.rgb import (
    RGBClip,
    load_rgb_clip,
    read_clip_frames,
    rgb_frame_indices,
)
from microgesture.data.transforms import Compose, RandomFlip, UniformSample, skeleton_pipeline
from microgesture.data.transforms.pipelines import VideoInput
from microgesture.errors import ConfigError, DataError
from microgesture.models.base import KINETICS_MEAN, KINETICS_STD

SIZE = (192, 144)  # width, height of the synthetic frames
SEED = 0
WRISTS = (4, 7)  # miga35 = BODY_25 order: RWrist, LWrist
TIPS = tuple(range(25, 35))


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    """A tiny synthetic MiGA dataset with videos, imported to annotations (about a second)."""
    from microgesture.data.formats.miga import import_miga_to_file
    from microgesture.data.synth import generate_dataset

    root = tmp_path_factory.mktemp("rgb_synth")
    generate_dataset(root / "data", subjects=2, videos_per_subject=1, seed=SEED, size=SIZE, video=True,
                     overwrite=False, seconds=8)
    import_miga_to_file(root / "data", root / "ann.pkl", protocol="synthetic-xsub", val_fraction=0.0)
    return load_annotations(root / "ann.pkl")


NORM = dict(mean=KINETICS_MEAN, std=KINETICS_STD)


def skin_of(subject_id: int) -> np.ndarray:
    """The colour the generator paints this subject's hands with."""
    from microgesture.data.synth.generate import make_subject

    _, look = make_subject(SEED, subject_id, SIZE)
    return np.asarray(look.skin)


def skin_hits(frames: np.ndarray, kp: np.ndarray, score: np.ndarray, skin: np.ndarray, joints, tol: int = 30):
    """For each detected joint inside the frame: is a pixel of its 3x3 neighbourhood hand-coloured?"""
    hits = []
    h, w = frames.shape[1:3]
    for t in range(len(kp)):
        for j in joints:
            x, y = np.round(kp[t, j]).astype(int)
            if score[t, j] <= 0 or not (0 <= x < w and 0 <= y < h):
                continue
            patch = frames[t, max(y - 1, 0):y + 2, max(x - 1, 0):x + 2].reshape(-1, 3).astype(int)
            hits.append(np.abs(patch - skin).max(axis=1).min() <= tol)
    return np.array(hits)


def to_uint8(rgb: np.ndarray) -> np.ndarray:
    """[3, T, H, W] normalised with mean 0, std 1 -> uint8 [T, H, W, 3]."""
    return np.round(rgb.transpose(1, 2, 3, 0) * 255).astype(np.uint8)


# ----------------------------------------------------------------------------- frame indices


def test_rgb_frame_indices_subset_repeat_and_clip_axis():
    inds = np.array([3, 7, 10, 14, 20, 22, 30, 31])
    assert np.array_equal(rgb_frame_indices(inds, 8), inds)
    assert np.array_equal(rgb_frame_indices(inds, 4), inds[[1, 3, 5, 7]])  # evenly spaced subset
    more = rgb_frame_indices(inds[:3], 7)
    assert np.array_equal(more, [3, 3, 7, 7, 7, 10, 10])  # repeats, in order, every frame kept
    multi = np.stack([inds, inds + 1])
    out = rgb_frame_indices(multi, 2)
    assert out.shape == (2, 2) and out.dtype == np.int64
    assert np.array_equal(out, [[10, 30], [11, 31]])  # segment centres of 8 frames: 2 and 6
    with pytest.raises(ConfigError):
        rgb_frame_indices(inds, 0)
    with pytest.raises(ValueError):
        rgb_frame_indices(np.array([0.5, 1.0]), 2)


def test_video_input_comes_from_the_encoders_input_spec():
    """The data side reads frames, size and normalisation from the encoder (one place, not retyped)."""
    from microgesture.models.mvit import MViTEncoder
    from microgesture.train.config import load_config
    from microgesture.train.run import video_inputs

    cfg = load_config(None, ["model.streams={rgb: {encoder: mvit}}", "data.annotations=a.pkl"])
    spec = MViTEncoder.input_spec
    assert video_inputs(cfg)["rgb"] == VideoInput(spec.frames, spec.size, spec.mean, spec.std)
    with pytest.raises(ConfigError, match="takes exactly 224x224"):
        video_inputs(load_config(None, ["model.streams={rgb: {encoder: mvit}}", "data.rgb.size=96",
                                        "data.annotations=a.pkl"]))
    light = video_inputs(load_config(None, ["model.streams={rgb: {encoder: light}}", "data.rgb.size=64",
                                            "data.annotations=a.pkl"]))
    assert (light["rgb"].num_frames, light["rgb"].size) == (16, 64)


# ----------------------------------------------------------------------------- alignment


def test_hands_in_decoded_frames_sit_on_the_skeleton(synth):
    """At the skeleton's sampled frames the wrists and fingertips are on hand-coloured pixels."""
    pipeline = skeleton_pipeline(layout="miga35", num_frames=16, train=False)
    wrists, tips, shifted = [], [], []
    for clip in synth["annotations"]:
        sample = pipeline(dict(clip))
        inds = sample["frame_inds"]
        kp, score = clip["keypoint"][0, inds], clip["keypoint_score"][0, inds]  # raw pixels, pre-Normalize
        skin = skin_of(clip["subject_id"])
        video = resolve_video_path(synth, clip)
        frames = read_clip_frames(video, clip["start_frame"], inds, name=clip["frame_dir"])
        assert frames.shape == (16, SIZE[1], SIZE[0], 3)
        wrists.append(skin_hits(frames, kp, score, skin, WRISTS))
        tips.append(skin_hits(frames, kp, score, skin, TIPS))
        late = np.minimum(inds + 3, clip["total_frames"] - 1)  # three frames off: what misalignment looks like
        shifted.append(skin_hits(read_clip_frames(video, clip["start_frame"], late), kp, score, skin, WRISTS))
    wrists, tips, shifted = (np.concatenate(x) for x in (wrists, tips, shifted))
    assert len(wrists) >= 40 and len(tips) >= 150
    assert wrists.mean() >= 0.97, wrists.mean()
    assert tips.mean() >= 0.8, tips.mean()  # fingertip detections are noisier than the 2-px finger strokes
    assert shifted.mean() < wrists.mean() - 0.05  # the check does tell aligned from misaligned frames


def test_flipped_clip_matches_flipped_skeleton(synth):
    """RandomFlip on pixel keypoints + flipped RGB: the (left/right-swapped) hands still sit on skin."""
    width, height = SIZE
    offset = (width - height) // 2  # centre crop of a height x height square, no resize
    flip = Compose([UniformSample(16, "test"), RandomFlip(1.0)])
    plain_hits, flip_hits = [], []
    for clip in synth["annotations"]:
        sample = flip(dict(clip))
        assert sample["flipped"]
        video, start, inds = resolve_video_path(synth, clip), clip["start_frame"], sample["frame_inds"]
        kwargs = dict(size=height, resize=height, train=False, mean=(0, 0, 0), std=(1, 1, 1))
        flipped = load_rgb_clip(video, start, inds, flipped=True, **kwargs)
        plain = load_rgb_clip(video, start, inds, flipped=False, **kwargs)
        assert np.array_equal(flipped, plain[..., ::-1])  # symmetric centre crop: an exact mirror
        skin = skin_of(clip["subject_id"])
        # The flipped skeleton, shifted into the crop.
        kp = sample["keypoint"][0] - [offset, 0]
        flip_hits.append(skin_hits(to_uint8(flipped), kp, sample["keypoint_score"][0], skin, WRISTS))
        # The original skeleton at width - 1 - x.
        raw = clip["keypoint"][0, inds].copy()
        raw[..., 0] = (width - 1 - raw[..., 0]) - offset
        plain_hits.append(skin_hits(to_uint8(flipped), raw, clip["keypoint_score"][0, inds], skin, WRISTS))
    flip_hits, plain_hits = np.concatenate(flip_hits), np.concatenate(plain_hits)
    assert len(flip_hits) >= 30
    assert flip_hits.mean() >= 0.97 and plain_hits.mean() >= 0.97


# ----------------------------------------------------------------------------- crops and shapes


def test_shapes_resize_and_normalisation(synth):
    clip = synth["annotations"][0]
    video = resolve_video_path(synth, clip)
    inds = np.arange(0, 8)
    out = load_rgb_clip(video, clip["start_frame"], inds, size=32, train=False, **NORM)
    assert out.shape == (3, 8, 32, 32) and out.dtype == np.float32
    multi = load_rgb_clip(video, clip["start_frame"], np.stack([inds, inds + 2]), size=32, train=False, **NORM)
    assert multi.shape == (2, 3, 8, 32, 32)
    assert np.array_equal(multi[0], out)
    # resize = size: the crop covers the full short side; values are (x/255 - mean) / std.
    raw = read_clip_frames(video, clip["start_frame"], inds)
    norm = load_rgb_clip(video, clip["start_frame"], inds, size=SIZE[1], resize=SIZE[1], train=False,
                         mean=(0.5, 0.4, 0.3), std=(0.2, 0.25, 0.5))
    x0 = (SIZE[0] - SIZE[1]) // 2
    expected = (raw[:, :, x0:x0 + SIZE[1]] / 255.0 - [0.5, 0.4, 0.3]) / [0.2, 0.25, 0.5]
    np.testing.assert_allclose(norm, expected.transpose(3, 0, 1, 2), atol=1e-5)
    # Default resize is size * 8 / 7: a centre crop of 32 from short side 37 differs from resize = 32.
    tight = load_rgb_clip(video, clip["start_frame"], inds, size=32, resize=32, train=False, **NORM)
    assert not np.allclose(tight, out)


def test_train_crops_vary_with_rng_and_repeat_with_seed(synth):
    clip = synth["annotations"][0]
    video, inds = resolve_video_path(synth, clip), np.arange(0, 16, 4)
    kwargs = dict(size=48, resize=96, train=True, **NORM)

    def crop(seed):
        return load_rgb_clip(video, clip["start_frame"], inds, rng=np.random.default_rng(seed), **kwargs)

    first = crop(1)
    assert np.array_equal(first, crop(1))
    assert not all(np.array_equal(first, crop(s)) for s in range(2, 6))
    with pytest.raises(TypeError, match="Generator"):
        load_rgb_clip(video, clip["start_frame"], inds, rng=None, **kwargs)
    centre = load_rgb_clip(video, clip["start_frame"], inds, size=48, resize=96, train=False, **NORM)
    assert np.array_equal(centre, load_rgb_clip(video, clip["start_frame"], inds, size=48, resize=96, train=False, **NORM))


def test_rgbclip_follows_the_skeleton_pipeline(synth):
    clip = synth["annotations"][1]
    pipeline = skeleton_pipeline(layout="miga35", num_frames=12, train=True, flip_p=1.0)
    rng = np.random.default_rng(0)
    sample = pipeline(dict(clip), rng)
    sample["video_file"] = str(resolve_video_path(synth, clip))
    out = RGBClip(size=32, num_frames=4, train=True, **NORM)(sample, rng)
    assert out["rgb"].shape == (3, 4, 32, 32)
    assert set(out["rgb_frame_inds"]) <= set(sample["frame_inds"])
    assert sample["flipped"]
    with pytest.raises(ConfigError, match="UniformSample"):
        RGBClip(size=32, num_frames=4, train=False, **NORM)({"start_frame": 0}, None)
    with pytest.raises(ConfigError):
        RGBClip(size=32, num_frames=4, train=False, resize=16, **NORM)


# ----------------------------------------------------------------------------- errors


def test_missing_video_and_short_video_errors(synth, tmp_path):
    clip = synth["annotations"][0]
    video = resolve_video_path(synth, clip)
    with pytest.raises(DataError, match=f"clip {clip['frame_dir']} has no video_path"):
        RGBClip(size=32, num_frames=4, train=False, **NORM)(dict(clip, frame_inds=np.arange(4), video_path=None))
    missing = tmp_path / "nope.mp4"
    with pytest.raises(DataError, match="video file not found") as err:
        load_rgb_clip(missing, 0, np.arange(4), size=32, train=False, name="0001_0", **NORM)
    assert str(missing) in str(err.value) and "0001_0" in str(err.value)
    from microgesture.data.video import video_info

    total = video_info(video).num_frames
    with pytest.raises(DataError, match="shorter than its labels") as err:
        load_rgb_clip(video, total - 3, np.arange(6), size=32, train=False, name="0001_9", **NORM)
    text = str(err.value)
    assert str(video) in text and f"{total - 3}..{total + 2}" in text and f"{total} frames" in text
