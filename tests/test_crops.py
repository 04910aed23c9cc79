"""Skeleton-guided crops: boxes on the hands and face, any layout, flips, fallbacks, bad input;
appearance augmentation; the crop modalities through the pipeline and the config."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from microgesture.data.formats.annotations import load_annotations, resolve_video_path
from microgesture.data.transforms import Compose, RandomFlip, UniformSample
from microgesture.data.transforms.appearance import ColourJitter, EraseClothing, RandomErase, colour_matrix
from microgesture.data.transforms.crops import (
    CROP_GRIDS,
    CropBoxes,
    CropFrames,
    RegionMissingWarning,
    RegionOutsideWarning,
    TileCrops,
    crop_regions,
    mirrored,
)
from microgesture.data.transforms.pipelines import VideoAugment, VideoInput, build_pipeline
from microgesture.domain.layouts import COCO17, IMIGUE22, MIGA35, OPENPOSE67, convert
from microgesture.errors import ConfigError, DataError

SIZE = (192, 144)
SEED = 0
PLAIN = dict(mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))  # tiles in [0, 1]


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    from microgesture.data.formats.miga import import_miga_to_file
    from microgesture.data.synth import generate_dataset

    root = tmp_path_factory.mktemp("crop_synth")
    generate_dataset(root / "data", subjects=2, videos_per_subject=1, seed=SEED, size=SIZE, video=True, seconds=8)
    import_miga_to_file(root / "data", root / "ann.pkl", protocol="synthetic-xsub", val_fraction=0.0)
    data = load_annotations(root / "ann.pkl")
    for clip in data["annotations"]:
        clip["video_file"] = str(resolve_video_path(data, clip))
    return data


def skin_of(subject_id: int) -> np.ndarray:
    from microgesture.data.synth.generate import make_subject

    return np.asarray(make_subject(SEED, subject_id, SIZE)[1].skin)


def crops(clip: dict, grid_name: str = "rgb_crops", *, size: int = 96, frames: int = 8, flip: bool = False,
          train: bool = False, rng=None) -> dict:
    grid = CROP_GRIDS[grid_name]
    steps = [CropBoxes(crop_regions(grid_name)), UniformSample(16, "train" if train else "test")]
    steps += [RandomFlip(1.0)] if flip else []
    steps += [CropFrames(frames), TileCrops(grid_name, grid, size, train, **PLAIN)]
    return Compose(steps)(dict(clip), rng)


def tile(x: np.ndarray, row: int, col: int, n: int = 2) -> np.ndarray:
    """One tile of a [3, T, S, S] clip as [T, s, s, 3] uint8."""
    s = x.shape[-1] // n
    return np.round(x[:, :, row * s:(row + 1) * s, col * s:(col + 1) * s].transpose(1, 2, 3, 0) * 255).astype(np.uint8)


def skin_fraction(tiles: np.ndarray, skin: np.ndarray, tol: int = 30) -> float:
    return float((np.abs(tiles.astype(int) - skin).max(-1) <= tol).mean())


# ----------------------------------------------------------------------------- where the boxes go


def test_hand_and_face_tiles_show_skin_and_their_shift_does_not(synth):
    """The hand tiles hold far more skin than the same boxes moved by one box side (the test can fail)."""
    hands, faces, moved = [], [], []
    for clip in synth["annotations"]:
        out = crops(clip)
        skin = skin_of(clip["subject_id"])
        assert out["rgb_crops"].shape == (3, 8, 96, 96) and out["rgb_crops"].dtype == np.float32
        hands += [skin_fraction(tile(out["rgb_crops"], 0, c), skin) for c in (0, 1)]
        faces.append(skin_fraction(tile(out["rgb_crops"], 1, 0), skin))
        shifted = dict(out)
        shifted["crop_boxes"] = {k: None if b is None else b + [b[0, 2], 0, 0] for k, b in out["crop_boxes"].items()}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RegionOutsideWarning)
            shifted = TileCrops("x", CROP_GRIDS["rgb_crops"], 96, False, **PLAIN)(shifted)
        moved += [skin_fraction(tile(shifted["x"], 0, c), skin) for c in (0, 1)]
    assert np.mean(hands) > 0.12 and np.mean(faces) > 0.25
    assert np.mean(moved) < 0.5 * np.mean(hands)


def test_boxes_are_stable_and_square_over_the_clip(synth):
    """One side per clip; 2-pixel detector noise moves the smoothed centres much less than raw ones."""
    clip = synth["annotations"][0]
    noisy = dict(clip, keypoint=clip["keypoint"] + np.random.default_rng(0).normal(0, 2.0, clip["keypoint"].shape))
    for name in ("r_hand", "face"):
        clean = CropBoxes((name,))(dict(clip))["crop_boxes"][name]
        smooth = CropBoxes((name,))(dict(noisy))["crop_boxes"][name]
        raw = CropBoxes((name,), smooth=0)(dict(noisy))["crop_boxes"][name]
        raw_clean = CropBoxes((name,), smooth=0)(dict(clip))["crop_boxes"][name]
        assert smooth.shape == (clip["total_frames"], 3) and np.ptp(smooth[:, 2]) == 0
        smoothed_error = np.abs(smooth[:, :2] - clean[:, :2]).mean()
        raw_error = np.abs(raw[:, :2] - raw_clean[:, :2]).mean()
        assert smoothed_error < 0.5 * raw_error, (name, smoothed_error, raw_error)


def test_regions_are_found_by_name_in_other_layouts(synth):
    """The same clip in imigue22, openpose67 (hands padded) and coco17 (wrists only) puts the boxes
    near the miga35 ones: within a quarter box for the face, within half a box for the hands."""
    clip = synth["annotations"][0]
    ref = CropBoxes(("r_hand", "l_hand", "face"))(dict(clip))["crop_boxes"]
    for layout in (IMIGUE22, COCO17):
        kp, score = convert(clip["keypoint"], MIGA35, layout, clip["keypoint_score"])
        other = CropBoxes(("r_hand", "l_hand", "face"))(dict(clip, keypoint=kp, keypoint_score=score,
                                                             layout=layout.name))["crop_boxes"]
        for name, limit in (("face", 0.25), ("r_hand", 0.5), ("l_hand", 0.5)):
            dist = np.linalg.norm(other[name][:, :2] - ref[name][:, :2], axis=1) / ref[name][0, 2]
            assert np.median(dist) < limit, (layout.name, name)
    wide = np.zeros(clip["keypoint"].shape[:2] + (OPENPOSE67.num_joints, 2), np.float32)
    wide_score = np.zeros(wide.shape[:-1], np.float32)
    for j, name in enumerate(MIGA35.joint_names):
        target = name.replace("_tip", "_4")
        if target in OPENPOSE67.joint_names:
            wide[..., OPENPOSE67.index(target), :] = clip["keypoint"][..., j, :]
            wide_score[..., OPENPOSE67.index(target)] = clip["keypoint_score"][..., j]
    op = CropBoxes(("r_hand",))(dict(clip, keypoint=wide, keypoint_score=wide_score, layout="openpose67"))
    np.testing.assert_allclose(op["crop_boxes"]["r_hand"], ref["r_hand"], atol=1e-3)


def test_flip_swaps_the_hands_and_mirrors_every_tile(synth):
    clip = synth["annotations"][1]
    plain, flipped = crops(clip), crops(clip, flip=True)
    assert flipped["flipped"] and np.array_equal(plain["rgb_frame_inds"], flipped["rgb_frame_inds"])
    a, b = plain["rgb_crops"], flipped["rgb_crops"]
    s = 48
    np.testing.assert_array_equal(b[..., :s, :s], a[..., :s, s:][..., ::-1])  # right-hand tile = mirrored left
    np.testing.assert_array_equal(b[..., :s, s:], a[..., :s, :s][..., ::-1])
    for cols in (slice(0, s), slice(s, 2 * s)):  # face and upper body: the same tile, mirrored
        np.testing.assert_array_equal(b[..., s:, cols], a[..., s:, cols][..., ::-1])
    assert mirrored("r_hand_wide") == "l_hand_wide" and mirrored("face") == "face"


def test_frames_are_the_skeletons_and_test_clips_stack(synth):
    clip = synth["annotations"][0]
    steps = Compose([CropBoxes(crop_regions("rgb_face")), UniformSample(8, "test", num_clips=2), CropFrames(4),
                     TileCrops("rgb_face", CROP_GRIDS["rgb_face"], 32, False, **PLAIN)])
    out = steps(dict(clip))
    assert out["rgb_face"].shape == (2, 3, 4, 32, 32)
    for k in range(2):
        assert set(out["rgb_frame_inds"][k]) <= set(out["frame_inds"][k])


def test_training_jitter_is_per_clip_and_seeded(synth):
    clip = synth["annotations"][0]
    first = crops(clip, train=True, rng=np.random.default_rng(3))["rgb_crops"]
    assert np.array_equal(first, crops(clip, train=True, rng=np.random.default_rng(3))["rgb_crops"])
    assert not np.array_equal(first, crops(clip, train=True, rng=np.random.default_rng(4))["rgb_crops"])


# ----------------------------------------------------------------------------- bad input


def test_joint_missing_throughout_gives_a_named_warning_and_a_blank_tile(synth):
    clip = synth["annotations"][0]
    score = clip["keypoint_score"].copy()
    score[..., [MIGA35.index("r_wrist"), *range(25, 30)]] = 0.0
    with pytest.warns(RegionMissingWarning, match=r"clip .*'r_hand'.*r_wrist"):
        out = crops(dict(clip, keypoint_score=score))
    assert out["crop_boxes"]["r_hand"] is None
    assert np.abs(tile(out["rgb_crops"], 0, 0)).max() == 0  # the mean colour (0 here), not a wrong crop
    assert np.abs(tile(out["rgb_crops"], 0, 1)).max() > 0


def test_hands_leaving_the_frame_give_a_named_warning(synth):
    clip = synth["annotations"][0]
    kp = clip["keypoint"].copy()
    t = clip["total_frames"]
    hand = [MIGA35.index("r_wrist"), *range(25, 30)]
    kp[0, t // 2:, hand, 1] += SIZE[1]  # the right hand drops below the frame for the second half
    with pytest.warns(RegionOutsideWarning, match=r"'r_hand' is outside the frame"):
        out = crops(dict(clip, keypoint=kp))
    assert out["crop_lost"]["r_hand"][-1] and not out["crop_lost"]["r_hand"][0]
    # A detector that loses the hand at the bottom edge instead (score 0 from mid-clip) is caught too.
    score = clip["keypoint_score"].copy()
    kp = clip["keypoint"].copy()
    kp[0, :t // 2, hand, 1] = SIZE[1] - 2
    score[0, t // 2:, hand] = 0
    with pytest.warns(RegionOutsideWarning):
        crops(dict(clip, keypoint=kp, keypoint_score=score))


def test_video_shorter_than_skeleton_and_other_aspect_are_data_errors(synth, tmp_path):
    from microgesture.data.video import video_info, write_video

    clip = synth["annotations"][0]
    total = video_info(clip["video_file"]).num_frames
    late = dict(clip, start_frame=total - clip["total_frames"] // 2)
    with pytest.raises(DataError, match="shorter than its labels") as err:
        crops(late)
    assert clip["video_file"] in str(err.value)
    square = tmp_path / "square.mp4"
    write_video(square, (np.zeros((96, 96, 3), np.uint8) for _ in range(total)), 25)
    with pytest.raises(DataError, match="another aspect ratio") as err:
        crops(dict(clip, video_file=str(square)))
    assert str(square) in str(err.value)


def test_half_resolution_video_gets_scaled_boxes(synth, tmp_path):
    """Keypoints from a 192x144 detection placed on a 96x72 copy of the video: the same tiles, roughly."""
    import cv2

    from microgesture.data.video import read_frames, video_info, write_video

    clip = synth["annotations"][0]
    total = video_info(clip["video_file"]).num_frames
    frames = read_frames(clip["video_file"], list(range(total)))
    small = tmp_path / "small.mp4"
    write_video(small, (cv2.resize(f, (96, 72), interpolation=cv2.INTER_AREA) for f in frames), 25)
    full, half = crops(clip, grid_name="rgb_face", size=24), crops(dict(clip, video_file=str(small)),
                                                                   grid_name="rgb_face", size=24)
    assert np.abs(full["rgb_face"] - half["rgb_face"]).mean() < 0.06


def test_bad_settings_are_config_errors():
    with pytest.raises(ConfigError, match="unknown region"):
        CropBoxes(("left_foot",))
    with pytest.raises(ConfigError, match="multiple of 2"):
        TileCrops("rgb_crops", CROP_GRIDS["rgb_crops"], 95, False, **PLAIN)
    with pytest.raises(ConfigError, match="square"):
        TileCrops("x", (("face", "r_hand"),), 96, False, **PLAIN)
    with pytest.raises(ConfigError, match="not a crop modality"):
        crop_regions("rgb")
    with pytest.raises(ConfigError, match="before UniformSample"):
        Compose([UniformSample(4, "test"), CropBoxes(("face",))])(dict(
            keypoint=np.zeros((1, 8, 35, 2), np.float32), keypoint_score=np.ones((1, 8, 35), np.float32),
            layout="miga35", img_shape=(144, 192), normalized=True))


# ----------------------------------------------------------------------------- appearance


def test_colour_matrix_identity_and_hue_keeps_luminance():
    np.testing.assert_allclose(colour_matrix(1.0, 1.0, 0.0), np.eye(3), atol=1e-9)
    rgb = np.array([0.8, 0.3, 0.1])
    turned = colour_matrix(1.0, 1.0, 1.0) @ rgb
    luma = np.array([0.299, 0.587, 0.114])
    assert abs(luma @ turned - luma @ rgb) < 1e-9 and np.abs(turned - rgb).max() > 0.1
    grey = colour_matrix(1.0, 0.0, 0.3) @ rgb
    np.testing.assert_allclose(grey, np.full(3, luma @ rgb), atol=1e-9)


def test_colour_jitter_is_one_draw_per_clip():
    rng = np.random.default_rng(0)
    frame = rng.random((3, 1, 8, 8)).astype(np.float32)
    clip = np.concatenate([frame, frame, rng.random((3, 1, 8, 8)).astype(np.float32)], axis=1)
    jitter = ColourJitter("v", **PLAIN, brightness=0.3, contrast=0.3, saturation=0.5, hue=0.5, grayscale=0.0)
    out = jitter({"v": clip}, np.random.default_rng(1))["v"]
    np.testing.assert_array_equal(out[:, 0], out[:, 1])  # equal frames stay equal: one transform per clip
    assert np.abs(out - clip).mean() > 0.01
    again = jitter({"v": clip}, np.random.default_rng(1))["v"]
    np.testing.assert_array_equal(out, again)
    grey = ColourJitter("v", **PLAIN, grayscale=1.0)({"v": clip}, np.random.default_rng(1))["v"]
    np.testing.assert_allclose(grey[0], grey[1], atol=1e-6)
    with pytest.raises(TypeError, match="Generator"):
        jitter({"v": clip}, None)


def test_random_erase_is_the_same_rectangle_in_every_frame():
    clip = np.zeros((3, 4, 32, 32), np.float32)
    out = RandomErase("v", **PLAIN, p=1.0)({"v": clip}, np.random.default_rng(2))["v"]
    changed = np.abs(out).sum(0) > 0
    assert changed[0].any() and all(np.array_equal(changed[0], changed[t]) for t in range(4))
    assert 0.02 * 32 * 32 - 8 <= changed[0].sum() <= 0.15 * 32 * 32 + 8


def test_erase_clothing_paints_the_torso_only(synth):
    clip = synth["annotations"][0]
    steps = Compose([CropBoxes(("torso",)), UniformSample(8, "test"), CropFrames(4)])
    sample = steps(dict(clip))
    out = EraseClothing(p=1.0)(dict(sample), np.random.default_rng(0))
    changed = (out["video_frames"] != sample["video_frames"]).any(-1)
    assert changed.any()
    ys, xs = np.nonzero(changed[0])
    cx, cy, side = sample["crop_boxes"]["torso"][sample["rgb_frame_inds"][0]]
    assert abs(xs.mean() - cx) < side / 2 and abs(ys.mean() - cy) < side / 2


# ----------------------------------------------------------------------------- pipeline and config


def test_pipeline_makes_crops_beside_the_skeleton(synth):
    clip = synth["annotations"][0]
    aug = VideoAugment(0.3, 0.3, 0.4, 0.5, 0.2, 0.5, 0.5, 0.1)
    video = {m: VideoInput(4, 48, (0.45,) * 3, (0.225,) * 3, augment=aug) for m in ("rgb_crops", "rgb_face")}
    for train in (False, True):
        pipe = build_pipeline(["joint", "rgb_crops", "rgb_face"], layout="imigue22", num_frames=8, train=train,
                              video=video, video_root=synth["meta"]["video_root"])
        out = pipe(dict(clip), np.random.default_rng(0))
        assert out["joint"].shape[-2] == IMIGUE22.num_joints
        assert out["rgb_crops"].shape == (3, 4, 48, 48) and out["rgb_face"].shape == (3, 4, 48, 48)
        assert set(out["rgb_frame_inds"]) <= set(out["frame_inds"])
    names = [type(s).__name__ for s in pipe.transforms]
    assert names[0] == "CropBoxes" and names.index("CropBoxes") < names.index("UniformSample")
    assert {"EraseClothing", "ColourJitter", "RandomErase"} <= set(names)


def test_config_appearance_section_is_checked_and_reaches_the_pipeline():
    from microgesture.train.config import load_config
    from microgesture.train.run import video_inputs

    cfg = load_config("configs/synthetic/rgb_crops.yaml", ["data.rgb.appearance.hue=0.25"])
    spec = video_inputs(cfg)["rgb_crops"]
    assert (spec.num_frames, spec.size) == (8, 96) and spec.augment.hue == 0.25 and spec.augment.box_jitter == 0.1
    with pytest.raises(ConfigError, match="data.rgb.appearance.hue"):
        load_config("configs/synthetic/rgb_crops.yaml", ["data.rgb.appearance.hue=2"])
    with pytest.raises(ConfigError, match="model.streams.rgb_crops.encoder"):
        load_config("configs/synthetic/rgb_crops.yaml", ["model.streams.rgb_crops={encoder: agcn}"])


def test_real_imigue_skeletons_place_boxes_inside_the_frame(shared_data):
    """iMiGUE video 298 (1280x720): OpenPose's 67 joints and the MiGA 35-joint CSV give the same
    hand and face boxes, inside the frame, without fallbacks."""
    from microgesture.data.formats.miga import read_skeleton
    from microgesture.data.formats.openpose import read_openpose_folder

    _, _, op = read_openpose_folder(shared_data / "imigue" / "openpose_json_298")[:3]
    _, mg = read_skeleton(shared_data / "imigue" / "miga_layout" / "0298" / "0298_light_hand.csv")
    regions = ("r_hand", "l_hand", "face", "upper_body")
    boxes = {}
    for layout, joints in (("openpose67", op), ("miga35", mg)):
        clip = dict(keypoint=joints[None, :, :, :2].astype(np.float32), keypoint_score=joints[None, :, :, 2].astype(
            np.float32), layout=layout, img_shape=(720, 1280), frame_dir="0298")
        with warnings.catch_warnings():
            warnings.simplefilter("error", RegionMissingWarning)
            out = CropBoxes(regions)(clip)
        boxes[layout] = out["crop_boxes"]
        for name in regions:
            b = out["crop_boxes"][name]
            assert (b[:, 0] > 0).all() and (b[:, 0] < 1280).all() and (b[:, 1] > 0).all() and (b[:, 1] < 720).all()
        assert 60 < boxes[layout]["face"][0, 2] < 400 and boxes[layout]["r_hand"][0, 2] < boxes[layout]["face"][0, 2]
    for name in ("r_hand", "l_hand", "face"):
        gap = np.linalg.norm(boxes["openpose67"][name][:, :2] - boxes["miga35"][name][:, :2], axis=1)
        assert np.median(gap) < 0.25 * boxes["miga35"][name][0, 2], name


@pytest.mark.slow
def test_imigue_mvit_crops_recipe_builds_and_runs_a_forward(synth):
    """configs/imigue/mvit_crops.yaml on CPU: the crop clip is MViTv2-S's 16x224x224, the model
    (random weights) gives finite logits; the CMTF recipe over it loads."""
    import torch

    from microgesture.train.build import build_model, token_width
    from microgesture.train.config import load_config
    from microgesture.train.run import video_inputs

    cfg = load_config("configs/imigue/mvit_crops.yaml", ["model.streams.rgb_crops.weights=null"])
    spec = video_inputs(cfg)["rgb_crops"]
    assert (spec.num_frames, spec.size) == (16, 224)
    pipe = build_pipeline(["rgb_crops"], layout=cfg.data.layout, num_frames=cfg.data.num_frames, train=False,
                          video=video_inputs(cfg), video_root=synth["meta"]["video_root"])
    clip = pipe(dict(synth["annotations"][0]))["rgb_crops"]
    assert clip.shape == (3, 16, 224, 224)
    model = build_model(cfg.model, {"mg": 32}, cfg.data.layout).eval()
    with torch.no_grad():
        logits = model({"rgb_crops": torch.from_numpy(clip)[None]})["mg"]
    assert logits.shape == (1, 32) and torch.isfinite(logits).all()
    fusion = load_config("configs/imigue/cmtf_crops.yaml")
    assert list(fusion.model.streams) == ["joint", "bone", "rgb_crops"]
    assert token_width(fusion.model.streams["rgb_crops"]) == 768


def test_crops_command_writes_a_sheet_per_clip_and_names_unknown_clips(synth, tmp_path, capsys):
    from microgesture.cli import main

    ann = synth["meta"]["path"]
    clip = synth["annotations"][0]["frame_dir"]
    assert main(["crops", str(ann), clip, "--out", str(tmp_path / "sheets"), "--modality", "rgb_crops", "rgb_face",
                 "--size", "32", "--frames", "4"]) == 0
    import cv2

    sheet = cv2.imread(str(tmp_path / "sheets" / f"{clip}.png"))
    assert sheet.shape == (64, 4 * 32, 3)
    assert main(["crops", str(ann), "9999_9", "--out", str(tmp_path / "x")]) == 2
    assert "no clip '9999_9'" in capsys.readouterr().err
