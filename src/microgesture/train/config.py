"""The experiment config: what `microgesture train CONFIG.yaml` reads. See configs/ for examples."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from microgesture.config import apply_overrides, from_dict, read_yaml
from microgesture.errors import ConfigError

Stream = Literal["joint", "bone", "joint_motion", "bone_motion"]


def _positive(prefix: str, **values: float) -> None:
    for name, value in values.items():
        if value <= 0:
            raise ConfigError(f"{prefix + '.' if prefix else ''}{name}: must be > 0, got {value}")


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
    """RGB clips: frames taken from the skeleton stream's own sampled frames, so they never drift."""

    num_frames: int = 16
    size: int = 96  # crop size; MViTv2-S needs 224
    resize: int | None = None  # short side before cropping; default size * 8/7

    def check(self, prefix: str) -> None:
        _positive(prefix, num_frames=self.num_frames, size=self.size)


@dataclass
class DataConfig:
    annotations: str | None = None
    synthetic: SynthConfig | None = None
    layout: Literal["miga35", "imigue22"] = "miga35"
    num_frames: int = 32
    test_clips: int = 1
    batch_size: int = 16
    eval_batch_size: int = 32
    num_workers: int = 0
    train_split: str = "train"
    val_split: str = "val"
    test_split: str = "test"
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    rgb: RGBDataConfig | None = None  # needed by models that read RGB clips
    cache: str | None = None  # a token cache from `microgesture extract`: fusion trains on it

    def check(self, prefix: str) -> None:
        if (self.annotations is None) == (self.synthetic is None):
            raise ConfigError(f"{prefix}.annotations: give exactly one of data.annotations or data.synthetic")
        _positive(prefix, num_frames=self.num_frames, test_clips=self.test_clips,
                  batch_size=self.batch_size, eval_batch_size=self.eval_batch_size)
        if self.num_workers < 0:
            raise ConfigError(f"{prefix}.num_workers: must be >= 0")


@dataclass
class SkeletonModelConfig:
    """The 2s-AGCN skeleton encoder (one stream)."""

    stream: Stream = "joint"
    base_channels: int = 64
    attention: bool = False  # AAGCN attention blocks (needed for PYSKL/MMAction2 1.x AAGCN weights)
    similarity: Literal["softmax", "tanh"] | None = None  # None: softmax, or tanh with attention
    dropout: float = 0.0
    weights: str | None = None  # foreign (PYSKL/MMAction2) or own weights to start from
    checkpoint: str | None = None  # a trained microgesture run whose skeleton encoder to reuse

    def check(self, prefix: str) -> None:
        _positive(prefix, base_channels=self.base_channels)
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"{prefix}.dropout: must be in [0, 1), got {self.dropout}")


@dataclass
class RGBModelConfig:
    """The RGB encoder: a light (2+1)D net for CPUs, or torchvision's MViTv2-S (16x224x224 only)."""

    encoder: Literal["light", "mvit"] = "light"
    width: int = 32  # light encoder only
    depth: int = 3  # light encoder only
    dropout: float = 0.3
    weights: str | None = None  # MViTv2-S: a local torchvision file such as mvit_v2_s-ae3be167.pth
    kinetics: bool = False  # MViTv2-S: torchvision's Kinetics-400 weights through the hub cache
    freeze: Literal["none", "all", "partial"] = "none"
    unfreeze_blocks: int = 2
    checkpoint: str | None = None  # a trained microgesture run whose RGB encoder to reuse

    def check(self, prefix: str) -> None:
        _positive(prefix, width=self.width, depth=self.depth)


@dataclass
class FusionConfig:
    """Cross-Modal Token Fusion (arch cmtf) or concatenation of pooled embeddings (arch concat)."""

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
        if not 0 <= self.modality_dropout < 1:
            raise ConfigError(f"{prefix}.modality_dropout: must be in [0, 1)")


@dataclass
class ModelConfig:
    """`arch` picks the task model; the sections configure its parts."""

    arch: Literal["skeleton", "rgb", "cmtf", "concat"] = "skeleton"
    skeleton: SkeletonModelConfig = field(default_factory=SkeletonModelConfig)
    rgb: RGBModelConfig = field(default_factory=RGBModelConfig)
    fusion: FusionConfig = field(default_factory=FusionConfig)

    @property
    def uses_rgb(self) -> bool:
        return self.arch != "skeleton"

    @property
    def uses_skeleton(self) -> bool:
        return self.arch != "rgb"


@dataclass
class OptimConfig:
    optimizer: Literal["sgd", "adamw"] = "sgd"
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    scheduler: Literal["cosine", "none"] = "cosine"
    warmup_epochs: int = 0
    # Seed B's square-root smoothed weighting: w_c ~ 1/sqrt(n_c), normalised to mean 1.
    class_weighting: Literal["none", "sqrt", "inverse"] = "none"
    label_smoothing: float = 0.0

    def check(self, prefix: str) -> None:
        _positive(prefix, lr=self.lr)
        if not 0 <= self.label_smoothing < 1:
            raise ConfigError(f"{prefix}.label_smoothing: must be in [0, 1)")


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
    data: DataConfig = field(default_factory=_default_data)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)


def _check_experiment(cfg: ExperimentConfig) -> None:
    model, data = cfg.model, cfg.data
    if model.arch in ("cmtf", "concat") and data.cache is not None:
        return  # cached tokens replace both inputs
    if data.cache is not None:
        raise ConfigError(f"data.cache: only fusion models (cmtf, concat) train on cached tokens, not {model.arch!r}")
    if model.uses_rgb and data.rgb is None:
        raise ConfigError(f"data.rgb: model.arch {model.arch!r} reads RGB clips; add a data.rgb section")
    if model.uses_rgb and model.rgb.encoder == "mvit" and (data.rgb.num_frames, data.rgb.size) != (16, 224):
        raise ConfigError("data.rgb: MViTv2-S takes exactly 16 frames of 224x224 (num_frames: 16, size: 224)")


def load_config(path: str | Path | None, overrides: list[str] | None = None) -> ExperimentConfig:
    """Read a YAML config (or start from defaults when path is None) and apply `--set` overrides."""
    data = read_yaml(path) if path is not None else {}
    data = apply_overrides(data, list(overrides or []))
    try:
        cfg = from_dict(ExperimentConfig, data)
        _check_experiment(cfg)
        return cfg
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}" if path is not None else str(exc)) from None
