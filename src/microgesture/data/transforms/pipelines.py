"""Standard pipelines (presets, as torchvision's reference presets): the transforms that make a
sample's named modalities, composed in order.

    UniformSample -> SelectLayout -> Normalize -> [RandomFlip -> RandomAffine when training]
      -> FormatStream per skeleton modality (joint, bone, joint_motion, bone_motion)
      -> VideoFile -> RGBClip (rgb, from the skeleton's sampled frames)
      -> PersonBox -> [RandomBoxCrop when training] -> HeatmapVolume (heatmap, from the same keypoints)
      -> FaceClip (face and face_missing, from the face track at the same frames)
      -> VideoFile -> CropFrames -> [EraseClothing] -> TileCrops (rgb_crops, rgb_hands, rgb_face:
         skeleton-guided crops, whose boxes `CropBoxes` places on the whole clip before sampling)
      -> [ColourJitter -> RandomErase] per video modality when training with appearance augmentation

Sampling comes first so the statistics of Normalize describe the frames the network sees, and
the work is done on few frames; the augmentations act in the neck-centred, shoulder-width frame;
every modality is made from the same sampled (and flipped) frames, so they stay aligned.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from microgesture.data.transforms.appearance import ColourJitter, EraseClothing, RandomErase
from microgesture.data.transforms.core import Compose, Transform
from microgesture.data.transforms.crops import CROP_GRIDS, CropBoxes, CropFrames, TileCrops, crop_regions
from microgesture.data.transforms.face import FaceClip
from microgesture.data.transforms.features import FormatStream
from microgesture.data.transforms.geometry import Normalize, RandomAffine, RandomFlip, SelectLayout
from microgesture.data.transforms.heatmap import HeatmapInput, HeatmapVolume, PersonBox, RandomBoxCrop
from microgesture.data.transforms.rgb import RGBClip, VideoFile
from microgesture.data.transforms.sampling import UniformSample
from microgesture.domain.modalities import MODALITIES
from microgesture.errors import ConfigError


@dataclass(frozen=True)
class Augment:
    flip_p: float = 0.5
    rotate_deg: float = 10.0
    scale: tuple[float, float] = (0.9, 1.1)
    shift: float = 0.1


@dataclass(frozen=True)
class VideoAugment:
    """Training-time appearance augmentation of a video modality (appearance.py); off by default.

    colour jitter strengths, grey and erasing probabilities, the torso erasing probability
    (crop modalities only) and the crop boxes' jitter (crop modalities only).
    """

    brightness: float = 0.0
    contrast: float = 0.0
    saturation: float = 0.0
    hue: float = 0.0
    grayscale: float = 0.0
    erase: float = 0.0
    erase_clothing: float = 0.0
    box_jitter: float = 0.1


@dataclass(frozen=True)
class VideoInput:
    """How a video modality is loaded: frames, crop size, short side before cropping, normalisation."""

    num_frames: int
    size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    resize: int | None = None
    augment: VideoAugment = VideoAugment()


def skeleton_steps(*, layout: str, num_frames: int, train: bool, num_clips: int = 1,
                   augment: Augment = Augment()) -> list[Transform]:
    """UniformSample -> SelectLayout -> Normalize -> [RandomFlip -> RandomAffine].

    The augmentations are used only when `train` and left out when they would do nothing
    (flip_p 0; rotate_deg 0 with scale (1, 1) and shift 0).
    """
    steps: list[Transform] = [
        UniformSample(num_frames, "train" if train else "test", num_clips),
        SelectLayout(layout),
        Normalize(),
    ]
    a = augment
    if train and a.flip_p > 0:
        steps.append(RandomFlip(a.flip_p))
    if train and (a.rotate_deg > 0 or tuple(a.scale) != (1.0, 1.0) or a.shift > 0):
        steps.append(RandomAffine(a.rotate_deg, tuple(a.scale), a.shift))
    return steps


@dataclass(frozen=True)
class PipelineOptions:
    """What the per-modality steps may need beyond the modality's name."""

    train: bool
    video: Mapping[str, VideoInput]
    video_root: str | None = None
    with_score: bool = True
    heatmap: HeatmapInput = HeatmapInput()
    layout: str | None = None


def _skeleton_stream(name: str, opt: PipelineOptions) -> list[Transform]:
    return [FormatStream(name, opt.with_score)]


def _video_spec(name: str, opt: PipelineOptions) -> VideoInput:
    spec = opt.video.get(name)
    if spec is None:
        raise ConfigError(f"modality {name!r} is video: say how to load it (frames, size, normalisation)")
    return spec


def _appearance(name: str, spec: VideoInput, train: bool) -> list[Transform]:
    a, mean, std = spec.augment, tuple(spec.mean), tuple(spec.std)
    steps: list[Transform] = []
    if train and (a.brightness or a.contrast or a.saturation or a.hue or a.grayscale):
        steps.append(ColourJitter(name, mean, std, a.brightness, a.contrast, a.saturation, a.hue, a.grayscale))
    if train and a.erase > 0:
        steps.append(RandomErase(name, mean, std, a.erase))
    return steps


def _video_clip(name: str, opt: PipelineOptions) -> list[Transform]:
    spec = _video_spec(name, opt)
    if name != "rgb":
        raise ConfigError(f"modality {name!r}: no pipeline step makes it yet")
    return [VideoFile(opt.video_root), RGBClip(spec.size, spec.num_frames, opt.train, tuple(spec.mean),
                                               tuple(spec.std), spec.resize), *_appearance(name, spec, opt.train)]


def _crop_clip(name: str, opt: PipelineOptions) -> list[Transform]:
    """Skeleton-guided crops (crops.py): full-resolution frames, regions tiled into one clip."""
    spec = _video_spec(name, opt)
    steps: list[Transform] = [VideoFile(opt.video_root), CropFrames(spec.num_frames)]
    if opt.train and spec.augment.erase_clothing > 0:
        steps.append(EraseClothing(spec.augment.erase_clothing))
    steps.append(TileCrops(name, CROP_GRIDS[name], spec.size, opt.train, tuple(spec.mean), tuple(spec.std),
                           spec.augment.box_jitter if opt.train else 0.0))
    return steps + _appearance(name, spec, opt.train)


def _crop_boxes(name: str, opt: PipelineOptions) -> list[Transform]:
    torso = ("torso",) if opt.train and _video_spec(name, opt).augment.erase_clothing > 0 else ()
    return [CropBoxes(crop_regions(name) + torso)]


def _heatmap_volume(name: str, opt: PipelineOptions) -> list[Transform]:
    h = opt.heatmap
    if opt.layout is not None:  # refuse a layout without limbs now, not at the first sample
        h.channels(opt.layout)
    steps: list[Transform] = [PersonBox(h.margin)]
    if opt.train and tuple(h.crop_area) != (1.0, 1.0):
        steps.append(RandomBoxCrop(tuple(h.crop_area)))
    return steps + [HeatmapVolume(name, h.size, h.sigma, h.joints, h.limbs, h.num_frames)]


# The steps that make each modality after sampling and geometry; by the modality's kind unless
# the modality has steps of its own.
STEPS_BY_KIND: dict[str, Callable[[str, PipelineOptions], list[Transform]]] = {
    "skeleton": _skeleton_stream,
    "video": _video_clip,
    "heatmap": _heatmap_volume,
}


def _face_clip(name: str, opt: PipelineOptions) -> list[Transform]:
    spec = opt.video.get(name)
    if spec is None:
        raise ConfigError(f"modality {name!r} is video: say how to load it (frames, size, normalisation)")
    return [FaceClip(spec.size, spec.num_frames, tuple(spec.mean), tuple(spec.std), opt.video_root)]


STEPS_BY_MODALITY: dict[str, Callable[[str, PipelineOptions], list[Transform]]] = {
    "face": _face_clip, **{name: _crop_clip for name in CROP_GRIDS}
}
# Steps a modality needs on the whole clip, in pixels, before sampling (e.g. crop boxes placed from
# the clip's joint extent); they run first, in the order of the requested modalities.
CLIP_STEPS_BY_MODALITY: dict[str, Callable[[str, PipelineOptions], list[Transform]]] = {
    name: _crop_boxes for name in CROP_GRIDS
}


def build_pipeline(
    modalities: Sequence[str],
    *,
    layout: str,
    num_frames: int,
    train: bool,
    num_clips: int = 1,
    augment: Augment = Augment(),
    video: Mapping[str, VideoInput] | None = None,
    video_root: str | None = None,
    with_score: bool = True,
    heatmap: HeatmapInput = HeatmapInput(),
) -> Compose:
    """The pipeline that makes each of `modalities` (see module doc); `video` gives each video modality's
    input, `heatmap` how heatmap volumes are drawn."""
    unknown = [m for m in modalities if m not in MODALITIES]
    if unknown:
        raise ConfigError(f"unknown modality {unknown[0]!r}; known: {', '.join(MODALITIES)}")
    opt = PipelineOptions(train, dict(video or {}), video_root, with_score, heatmap, layout)
    steps = [s for m in modalities if m in CLIP_STEPS_BY_MODALITY for s in CLIP_STEPS_BY_MODALITY[m](m, opt)]
    steps += skeleton_steps(layout=layout, num_frames=num_frames, train=train, num_clips=num_clips, augment=augment)
    # Skeleton streams first: later steps (crops, heatmaps) may read the sampled keypoints too.
    ordered = sorted(modalities, key=lambda m: MODALITIES[m] != "skeleton")
    for m in ordered:
        make = STEPS_BY_MODALITY.get(m) or STEPS_BY_KIND.get(MODALITIES[m])
        if make is None:
            raise ConfigError(f"modality {m!r} ({MODALITIES[m]}): no pipeline step makes it")
        steps += make(m, opt)
    return Compose(steps)


def skeleton_pipeline(
    *,
    layout: str,
    num_frames: int,
    stream: str = "joint",
    train: bool,
    num_clips: int = 1,
    flip_p: float = 0.5,
    rotate_deg: float = 10.0,
    scale: tuple[float, float] = (0.9, 1.1),
    shift: float = 0.1,
    with_score: bool = True,
) -> Compose:
    """One skeleton stream (`sample[stream]`): the skeleton steps, then FormatStream(stream).

    Call the result as ``pipeline(clip, rng)``; a test pipeline needs no rng.
    """
    augment = Augment(flip_p, rotate_deg, tuple(scale), shift)
    return build_pipeline([stream], layout=layout, num_frames=num_frames, train=train, num_clips=num_clips,
                          augment=augment, with_score=with_score)
