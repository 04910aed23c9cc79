"""The experiment config: what `microgesture train CONFIG.yaml` reads. See configs/ for examples.

A model is a set of named streams, each a modality the data pipeline makes (`joint`, `bone`,
`joint_motion`, `bone_motion`, `rgb`, `heatmap`, `face`) read by an encoder (`agcn`, `light`,
`mvit`; `posec3d` for heatmaps; for faces `swinface`, `light_face`), plus a fusion when there are several (`cmtf`, `interfusion`,
`concat`, `late`). The task says what is predicted (`mg`: the
clip's micro-gesture class; `emotion`: the video's win/lose label, clip outputs averaged per
video; `mg+emotion`: both), which loss is used and which validation metric picks the best
checkpoint. Configs written for version 0.1 (`model.arch`, `model.skeleton`, `model.rgb`) are
converted on loading (train/compat.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from microgesture.domain.heatmaps import HeatmapInput
from microgesture.domain.layouts import LAYOUTS
from microgesture.domain.modalities import MODALITIES
from microgesture.errors import ConfigError
from microgesture.train.cards import (  # the encoder and fusion sections live with their cards
    AGCNConfig,
    EncoderConfig,
    FusionConfig,
    LightFaceConfig,
    LightRGBConfig,
    MViTConfig,
    PoseC3DConfig,
    SwinFaceConfig,
    check_positive as _positive,
    check_probability as _probability,
    encoder_card,
)
from microgesture.train.precision import check_precision
from microgesture.typed_config import apply_overrides, from_dict, read_yaml


@dataclass
class SynthConfig:
    """Generate the embedded synthetic dataset (once, cached under `root`) instead of reading files."""

    root: str = "runs/data/synthetic"
    subjects: int = 12
    videos_per_subject: int = 3
    seed: int = 0
    size: tuple[int, int] = (192, 144)
    video: bool = True
    val_fraction: float = 0.2

    def check(self, prefix: str) -> None:
        _positive(prefix, subjects=self.subjects, videos_per_subject=self.videos_per_subject)


@dataclass
class AugmentConfig:
    rotate_deg: float = 10.0
    scale: tuple[float, float] = (0.9, 1.1)
    shift: float = 0.05
    flip_p: float = 0.0  # MG classes are not all left/right symmetric in meaning; opt in


@dataclass
class AppearanceConfig:
    """Appearance augmentation of the video streams in training (data/transforms/appearance.py).

    Everything is off by default; one draw per clip. box_jitter moves and scales the crop boxes
    of the crop modalities (rgb_crops, rgb_hands, rgb_face) by up to this fraction of their side.
    """

    brightness: float = 0.0
    contrast: float = 0.0
    saturation: float = 0.0
    hue: float = 0.0  # fraction of pi
    grayscale: float = 0.0  # probability
    erase: float = 0.0  # probability of one randomly coloured rectangle
    erase_clothing: float = 0.0  # probability of painting part of the torso (crop modalities)
    box_jitter: float = 0.1

    def check(self, prefix: str) -> None:
        for name in ("brightness", "contrast", "saturation", "hue", "grayscale", "erase", "erase_clothing"):
            value = getattr(self, name)
            if not 0 <= value <= 1:
                raise ConfigError(f"{prefix}.{name}: must be in [0, 1], got {value}")
        if not 0 <= self.box_jitter < 0.5:
            raise ConfigError(f"{prefix}.box_jitter: must be in [0, 0.5), got {self.box_jitter}")


@dataclass
class RGBDataConfig:
    """RGB clips, from the skeleton stream's own sampled frames so they never drift.

    Unset values come from the encoder's input spec (MViTv2-S: 16 frames of 224x224); an encoder
    that takes any size (the light encoder) uses 16 frames of 96x96 by default.
    """

    num_frames: int | None = None
    size: int | None = None  # crop size
    resize: int | None = None  # short side before cropping; default size * 8/7
    appearance: AppearanceConfig = field(default_factory=AppearanceConfig)

    def check(self, prefix: str) -> None:
        for name in ("num_frames", "size", "resize"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ConfigError(f"{prefix}.{name}: must be > 0, got {value}")


@dataclass
class DataConfig:
    annotations: str | None = None
    synthetic: SynthConfig | None = None
    video_root: str | None = None  # where relative video paths in the annotation file point (default: its folder)
    layout: str = "miga35"
    num_frames: int = 32
    test_clips: int = 1
    batch_size: int = 16
    eval_batch_size: int = 32
    # DataLoader worker processes; "auto": one fewer than the CPUs this process may use, at most 8
    # (train/datamodule.py: loader_workers). Augmentation draws from (seed, epoch, index), so the
    # batches, and a resumed run, are the same with any number of workers (dropout's draws are not).
    num_workers: int | Literal["auto"] = "auto"
    train_split: str = "train"
    val_split: str = "val"
    test_split: str = "test"
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    rgb: RGBDataConfig = field(default_factory=RGBDataConfig)
    heatmap: HeatmapInput = field(default_factory=HeatmapInput)  # heatmap volumes (PoseC3D), see docs/heatmaps.md
    cache: str | None = None  # a token cache from `microgesture extract`: a fusion trains on it
    # Training order: "shuffle" (each clip once an epoch), or drawn with replacement so that class c
    # comes up with probability ~ 1 (class_balanced) or ~ sqrt(n_c) (square_root) (data/samplers.py).
    sampler: Literal["shuffle", "class_balanced", "square_root"] = "shuffle"

    def check(self, prefix: str) -> None:
        if self.annotations is not None and self.synthetic is not None:
            raise ConfigError(f"{prefix}.annotations: give data.annotations or data.synthetic, not both "
                              "(--set data.synthetic=null to train on an annotation file)")
        if self.layout not in LAYOUTS:
            raise ConfigError(f"{prefix}.layout: {self.layout!r} is not one of {' | '.join(map(repr, LAYOUTS))}")
        _positive(prefix, num_frames=self.num_frames, test_clips=self.test_clips,
                  batch_size=self.batch_size, eval_batch_size=self.eval_batch_size)
        if self.num_workers != "auto" and self.num_workers < 0:
            raise ConfigError(f"{prefix}.num_workers: must be >= 0 or 'auto', got {self.num_workers}")


def _default_streams() -> dict[str, EncoderConfig]:
    return {"joint": AGCNConfig()}


@dataclass
class ModelConfig:
    """`streams`: modality -> encoder, in order; `fusion`: needed with two streams or more."""

    streams: dict[str, EncoderConfig] = field(default_factory=_default_streams)
    fusion: FusionConfig | None = None

    def check(self, prefix: str) -> None:
        if not self.streams:
            raise ConfigError(f"{prefix}.streams: name at least one stream, e.g. joint: {{encoder: agcn}}")
        if len(self.streams) > 1 and self.fusion is None:
            raise ConfigError(f"{prefix}.fusion: {len(self.streams)} streams need a fusion "
                              "(kind: cmtf, interfusion, concat or late)")


FACE_MODALITIES = ("face",)

MG_MONITORS = {"val_top1": "max", "val_top5": "max", "val_macro_f1": "max", "val_mean_class_accuracy": "max"}
EMOTION_MONITORS = {"val_emotion_accuracy": "max", "val_emotion_f1": "max", "val_emotion_auc": "max"}


def monitors(kind: str) -> dict[str, str]:
    """The validation metrics a task logs that can pick the best checkpoint, with their direction."""
    out = {"val_loss": "min"}
    if "mg" in kind.split("+"):
        out.update(MG_MONITORS)
    if "emotion" in kind.split("+"):
        out.update(EMOTION_MONITORS)
    return out


@dataclass
class TaskConfig:
    """What is predicted and how the best checkpoint is chosen.

    kind: "mg" (the clip's MG class), "emotion" (the video's win/lose label; clips carry their
    video's label and are averaged per video for evaluation) or "mg+emotion" (both heads, losses
    added with `emotion_weight`). monitor: the validation metric that picks best.ckpt (default
    val_top1 for MG, val_emotion_auc for emotion).
    """

    kind: Literal["mg", "emotion", "mg+emotion"] = "mg"
    monitor: str | None = None
    emotion_weight: float = 1.0
    # Emotion per video: "mean" trains on single clips and averages clip outputs per video;
    # "attention" trains on bags of `clips_per_video` clips of one video, pooled by attention (MIL).
    video_pool: Literal["mean", "attention"] = "mean"
    clips_per_video: int = 8
    mg_feature: bool = False  # mg+emotion: the emotion head also reads the (video's) MG class distribution

    @property
    def best_metric(self) -> str:
        return self.monitor or ("val_top1" if self.kind != "emotion" else "val_emotion_auc")

    def check(self, prefix: str) -> None:
        known = monitors(self.kind)
        if self.monitor is not None and self.monitor not in known:
            raise ConfigError(f"{prefix}.monitor: {self.monitor!r} is not a validation metric of task "
                              f"{self.kind!r}; one of {', '.join(known)}")
        if self.emotion_weight < 0:
            raise ConfigError(f"{prefix}.emotion_weight: must be >= 0, got {self.emotion_weight}")
        _positive(prefix, clips_per_video=self.clips_per_video)
        if self.video_pool == "attention" and "emotion" not in self.kind:
            raise ConfigError(f"{prefix}.video_pool: attention over a video's clips serves the emotion task; "
                              f"kind is {self.kind!r}")
        if self.mg_feature and self.kind != "mg+emotion":
            raise ConfigError(f"{prefix}.mg_feature: the MG distribution as an emotion feature needs "
                              f"kind: mg+emotion, not {self.kind!r}")


@dataclass
class OSEConfig:
    """Orthogonal semantic embedding loss on the embedding(s) the heads see (train/ose.py).

    Each class has a learned prototype direction; a clip's embedding is pulled to its class's
    prototype, pushed below cosine `margin` from every other class's, and the prototypes are
    pushed towards an orthogonal set (`orthogonality` weights that term). The sum is scaled by
    `weight` and added to the task loss.
    """

    weight: float = 0.1
    margin: float = 0.2
    orthogonality: float = 1.0

    def check(self, prefix: str) -> None:
        if self.weight < 0 or self.orthogonality < 0:
            raise ConfigError(f"{prefix}.weight / orthogonality: must be >= 0")
        if not -1 <= self.margin < 1:
            raise ConfigError(f"{prefix}.margin: a cosine in [-1, 1), got {self.margin}")


@dataclass
class OptimConfig:
    optimizer: Literal["sgd", "adamw"] = "sgd"
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    scheduler: Literal["cosine", "none"] = "cosine"
    warmup_epochs: int = 0
    # Loss weights from training counts n_c (train/module.py `class_weights`): square-root smoothed
    # (arXiv 2606.13030) w_c ~ 1/sqrt(n_c); inverse 1/n_c; class_balanced (1 - beta) / (1 - beta^n_c),
    # the effective number of samples (Cui et al. 2019); all normalised to mean 1.
    class_weighting: Literal["none", "sqrt", "inverse", "class_balanced"] = "none"
    class_balance_beta: float = 0.999
    label_smoothing: float = 0.0
    ose: OSEConfig | None = None  # the orthogonal semantic embedding loss (train/ose.py); None: off

    def check(self, prefix: str) -> None:
        _positive(prefix, lr=self.lr)
        _probability(prefix, label_smoothing=self.label_smoothing, class_balance_beta=self.class_balance_beta)


@dataclass
class TrainerConfig:
    max_epochs: int = 30
    accelerator: str = "auto"
    devices: int | list[int] | str = "auto"  # int first: "2" stays a number
    strategy: str = "auto"
    num_nodes: int = 1
    # "auto": bf16-mixed where the hardware runs bf16 fast (AMX CPUs, bf16 GPUs), else 32-true
    # (train/precision.py); or any Lightning precision such as 32-true or bf16-mixed.
    precision: str = "32-true"
    seed: int = 0
    log_every_n_steps: int = 10
    progress_bar: bool = True
    check_val_every_n_epoch: int = 1
    # torch.compile the network for training (state dict names unchanged). Off by default: on a
    # 2-core CPU it did not pay for its compile time (docs/speed.md).
    compile: bool = False

    def check(self, prefix: str) -> None:
        _positive(prefix, max_epochs=self.max_epochs, num_nodes=self.num_nodes)
        check_precision(self.precision)


@dataclass
class AdaptConfig:
    """Cross-modal pseudo-labelling (CMPL, arXiv 2606.13030) on unlabelled target clips (train/adapt.py).

    Each round, every stream's model predicts the target clips; a clip becomes a pseudo-label when
    the streams agree and the mean confidence of the agreed class passes its class's threshold
    (`threshold` scaled per class by how often the class is confidently predicted, FlexMatch-style,
    never below `min_threshold`); each class keeps at most `cap` x the mean count per class (the
    most confident first); then every stream is fine-tuned `epochs` epochs at `lr` on the source
    training clips plus the pseudo-labels.
    """

    rounds: int = 2
    epochs: int = 4
    lr: float = 0.01
    threshold: float = 0.8
    min_threshold: float = 0.4
    cap: float = 2.0

    def check(self, prefix: str) -> None:
        _positive(prefix, rounds=self.rounds, epochs=self.epochs, lr=self.lr, cap=self.cap)
        _probability(prefix, threshold=self.threshold, min_threshold=self.min_threshold)
        if self.min_threshold > self.threshold:
            raise ConfigError(f"{prefix}.min_threshold: {self.min_threshold} is above threshold {self.threshold}")


def _default_data() -> DataConfig:
    return DataConfig(synthetic=SynthConfig())


@dataclass
class ExperimentConfig:
    name: str = "experiment"
    task: TaskConfig = field(default_factory=TaskConfig)
    data: DataConfig = field(default_factory=_default_data)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    adapt: AdaptConfig | None = None  # `microgesture adapt` (CMPL) settings


def check_experiment(cfg: ExperimentConfig) -> None:
    """Checks across sections: data for every stream, cached tokens only for fusions."""
    model, data = cfg.model, cfg.data
    if data.annotations is None and data.synthetic is None:
        raise ConfigError("data.annotations: give an annotation file (or a data.synthetic section)")
    for name, enc in model.streams.items():
        if name not in MODALITIES:
            raise ConfigError(f"model.streams.{name}: unknown modality; known: {', '.join(MODALITIES)}")
        kind = MODALITIES[name]
        card = encoder_card(enc.encoder)
        reads = card.reads
        if card.face and name not in FACE_MODALITIES:
            raise ConfigError(f"model.streams.{name}.encoder: {enc.encoder!r} reads face crops; "
                              f"use it on a face stream ({', '.join(FACE_MODALITIES)})")
        if kind != reads:
            raise ConfigError(f"model.streams.{name}.encoder: {enc.encoder!r} reads {reads} input, "
                              f"but {name!r} is {kind} input")
        if kind == "heatmap":
            _heatmap_channels(name, enc, data)
    if cfg.task.video_pool == "attention" and data.test_clips > 1:
        raise ConfigError("data.test_clips: a video-level model (task.video_pool: attention) scores each clip once; "
                          "set data.test_clips=1")
    if data.cache is not None and model.fusion is None:
        raise ConfigError("data.cache: only fusion models train on cached tokens; this model has one stream "
                          "and no fusion")


def _prefer_overridden_source(data: dict, overrides: list[str]) -> dict:
    """`--set data.annotations=FILE` trains on FILE even when the YAML names synthetic data (and
    `--set data.synthetic...` the other way round): the command line wins, as a user expects."""
    keys = {item.split("=", 1)[0].strip() for item in overrides
            if item.split("=", 1)[-1].strip().lower() not in ("null", "~", "none", "")}
    section = data.get("data") if isinstance(data.get("data"), dict) else None
    if section is None:
        return data
    if "data.annotations" in keys:
        section.pop("synthetic", None)
    elif any(k == "data.synthetic" or k.startswith("data.synthetic.") for k in keys):
        section.pop("annotations", None)
    return data


def _heatmap_channels(name: str, enc: PoseC3DConfig, data: DataConfig) -> None:
    """Fill in (or check) a heatmap encoder's input channels from what data.heatmap draws."""
    channels = data.heatmap.channels(data.layout)
    if enc.in_channels is None:
        enc.in_channels = channels  # resolved once, so a saved run config names them
    elif enc.in_channels != channels:
        parts = " + ".join(p for p, on in (("joints", data.heatmap.joints), ("limbs", data.heatmap.limbs)) if on)
        raise ConfigError(f"model.streams.{name}.in_channels: {enc.in_channels}, but data.heatmap draws {channels} "
                          f"channels ({parts} of layout {data.layout})")


def load_config(path: str | Path | None, overrides: list[str] | None = None) -> ExperimentConfig:
    """Read a YAML config (or start from defaults when path is None) and apply `--set` overrides."""
    from microgesture.train.compat import migrate_config

    data = read_yaml(path) if path is not None else {}
    data = _prefer_overridden_source(migrate_config(data), list(overrides or []))
    data = apply_overrides(data, list(overrides or []))
    data = migrate_config(data)  # an override may have used the 0.1 names
    try:
        cfg = from_dict(ExperimentConfig, data)
        check_experiment(cfg)
        return cfg
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}" if path is not None else str(exc)) from None
