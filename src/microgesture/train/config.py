"""The experiment config: what `microgesture train CONFIG.yaml` reads. See configs/ for examples.

A model is a set of named streams, each a modality the data pipeline makes (`joint`, `bone`,
`joint_motion`, `bone_motion`, `rgb`) read by an encoder (`agcn`, `light`, `mvit`), plus a fusion
when there are several (`cmtf`, `concat`, `late`). The task says what is predicted (`mg`: the
clip's micro-gesture class; `emotion`: the video's win/lose label, clip outputs averaged per
video; `mg+emotion`: both), which loss is used and which validation metric picks the best
checkpoint. Configs written for version 0.1 (`model.arch`, `model.skeleton`, `model.rgb`) are
converted on loading (train/compat.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from microgesture.domain.layouts import LAYOUTS
from microgesture.domain.modalities import MODALITIES
from microgesture.errors import ConfigError
from microgesture.typed_config import apply_overrides, from_dict, read_yaml


def _positive(prefix: str, **values: float) -> None:
    for name, value in values.items():
        if value <= 0:
            raise ConfigError(f"{prefix + '.' if prefix else ''}{name}: must be > 0, got {value}")


def _probability(prefix: str, **values: float) -> None:
    for name, value in values.items():
        if not 0 <= value < 1:
            raise ConfigError(f"{prefix}.{name}: must be in [0, 1), got {value}")


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
class RGBDataConfig:
    """RGB clips, from the skeleton stream's own sampled frames so they never drift.

    Unset values come from the encoder's input spec (MViTv2-S: 16 frames of 224x224); an encoder
    that takes any size (the light encoder) uses 16 frames of 96x96 by default.
    """

    num_frames: int | None = None
    size: int | None = None  # crop size
    resize: int | None = None  # short side before cropping; default size * 8/7

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
    num_workers: int = 0
    train_split: str = "train"
    val_split: str = "val"
    test_split: str = "test"
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    rgb: RGBDataConfig = field(default_factory=RGBDataConfig)
    cache: str | None = None  # a token cache from `microgesture extract`: a fusion trains on it

    def check(self, prefix: str) -> None:
        if self.annotations is not None and self.synthetic is not None:
            raise ConfigError(f"{prefix}.annotations: give data.annotations or data.synthetic, not both "
                              "(--set data.synthetic=null to train on an annotation file)")
        if self.layout not in LAYOUTS:
            raise ConfigError(f"{prefix}.layout: {self.layout!r} is not one of {' | '.join(map(repr, LAYOUTS))}")
        _positive(prefix, num_frames=self.num_frames, test_clips=self.test_clips,
                  batch_size=self.batch_size, eval_batch_size=self.eval_batch_size)
        if self.num_workers < 0:
            raise ConfigError(f"{prefix}.num_workers: must be >= 0")


@dataclass
class AGCNConfig:
    """2s-AGCN / AAGCN skeleton encoder (one stream: the modality it reads is the stream's name)."""

    encoder: Literal["agcn"] = "agcn"
    base_channels: int = 64
    attention: bool = False  # AAGCN attention blocks (needed for PYSKL/MMAction2 1.x AAGCN weights)
    similarity: Literal["softmax", "tanh"] | None = None  # None: softmax, or tanh with attention
    num_person: int = 1
    dropout: float = 0.0
    weights: str | None = None  # foreign (PYSKL/MMAction2) or own weights to start from
    checkpoint: str | None = None  # a trained microgesture run whose encoder to reuse

    def check(self, prefix: str) -> None:
        _positive(prefix, base_channels=self.base_channels, num_person=self.num_person)
        _probability(prefix, dropout=self.dropout)


@dataclass
class LightRGBConfig:
    """A light (2+1)D RGB encoder for CPUs (any clip size)."""

    encoder: Literal["light"] = "light"
    width: int = 32
    depth: int = 3
    dropout: float = 0.3
    checkpoint: str | None = None

    def check(self, prefix: str) -> None:
        _positive(prefix, width=self.width, depth=self.depth)
        _probability(prefix, dropout=self.dropout)


@dataclass
class MViTConfig:
    """torchvision's MViTv2-S (16x224x224 clips only)."""

    encoder: Literal["mvit"] = "mvit"
    dropout: float = 0.5
    weights: str | None = None  # a local torchvision file such as mvit_v2_s-ae3be167.pth
    kinetics: bool = False  # torchvision's Kinetics-400 weights through the hub cache
    freeze: Literal["none", "all", "partial"] = "none"
    unfreeze_blocks: int = 2
    checkpoint: str | None = None

    def check(self, prefix: str) -> None:
        _probability(prefix, dropout=self.dropout)


EncoderConfig = AGCNConfig | LightRGBConfig | MViTConfig


@dataclass
class FusionConfig:
    """How several streams are combined: Cross-Modal Token Fusion, concatenation of pooled
    embeddings, or late fusion (the streams' own logits averaged, trained jointly)."""

    kind: Literal["cmtf", "concat", "late"] = "cmtf"
    width: int = 256
    depth: int = 2
    heads: int = 4
    mode: Literal["cross", "joint"] = "cross"
    dropout: float = 0.1
    modality_dropout: float = 0.1
    hidden: int = 512  # concat only

    def check(self, prefix: str) -> None:
        _positive(prefix, width=self.width, depth=self.depth, heads=self.heads, hidden=self.hidden)
        if self.width % self.heads:
            raise ConfigError(f"{prefix}.heads: width {self.width} is not divisible by {self.heads} heads")
        _probability(prefix, modality_dropout=self.modality_dropout, dropout=self.dropout)


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
                              "(kind: cmtf, concat or late)")


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


@dataclass
class OptimConfig:
    optimizer: Literal["sgd", "adamw"] = "sgd"
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    scheduler: Literal["cosine", "none"] = "cosine"
    warmup_epochs: int = 0
    # Square-root smoothed weighting (arXiv 2606.13030): w_c ~ 1/sqrt(n_c), normalised to mean 1.
    class_weighting: Literal["none", "sqrt", "inverse"] = "none"
    label_smoothing: float = 0.0

    def check(self, prefix: str) -> None:
        _positive(prefix, lr=self.lr)
        _probability(prefix, label_smoothing=self.label_smoothing)


@dataclass
class TrainerConfig:
    max_epochs: int = 30
    accelerator: str = "auto"
    devices: int | list[int] | str = "auto"  # int first: "2" stays a number
    strategy: str = "auto"
    num_nodes: int = 1
    precision: str = "32-true"
    seed: int = 0
    log_every_n_steps: int = 10
    progress_bar: bool = True
    check_val_every_n_epoch: int = 1

    def check(self, prefix: str) -> None:
        _positive(prefix, max_epochs=self.max_epochs, num_nodes=self.num_nodes)


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


def check_experiment(cfg: ExperimentConfig) -> None:
    """Checks across sections: data for every stream, cached tokens only for fusions."""
    model, data = cfg.model, cfg.data
    if data.annotations is None and data.synthetic is None:
        raise ConfigError("data.annotations: give an annotation file (or a data.synthetic section)")
    for name, enc in model.streams.items():
        if name not in MODALITIES:
            raise ConfigError(f"model.streams.{name}: unknown modality; known: {', '.join(MODALITIES)}")
        kind = MODALITIES[name]
        reads = "skeleton" if enc.encoder == "agcn" else "video"
        if kind != reads:
            raise ConfigError(f"model.streams.{name}.encoder: {enc.encoder!r} reads {reads} input, "
                              f"but {name!r} is {kind} input")
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
