"""Encoder and fusion kinds: each one's config class, builder and card.

A card is timm's `pretrained_cfg` for an encoder kind: what it reads (the modality kind, face
crops only or not), its input spec and token width from its config, its token layout, the config
keys that shape its network, and its builder. Reading a card does not load torch (only calling
`spec` or `build` does, through models/). Everything in the engine that depends on the kind of
an encoder or fusion asks `encoder_card` / `fusion_card`, never the kind's name, so a new kind
is a file in models/ plus a config class and a card here; an unknown kind is an error naming the
known ones. tests/test_cards.py checks every card against the model it builds.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from microgesture.errors import ConfigError

if TYPE_CHECKING:  # only for annotations: reading a card must not load torch
    from torch.nn import Module

    from microgesture.models.base import InputSpec


def check_positive(prefix: str, **values: float) -> None:
    for name, value in values.items():
        if value <= 0:
            raise ConfigError(f"{prefix + '.' if prefix else ''}{name}: must be > 0, got {value}")


def check_probability(prefix: str, **values: float) -> None:
    for name, value in values.items():
        if not 0 <= value < 1:
            raise ConfigError(f"{prefix}.{name}: must be in [0, 1), got {value}")


@dataclass(frozen=True)
class EncoderCard:
    """What an encoder kind is, read without building it.

    `config`: its config class (the YAML's `encoder:` value is the class's default `encoder`).
    `reads`: the modality kind it reads (domain/modalities.py); `face`: face streams only.
    `token_layout`, `width(cfg)` and `spec(cfg)`: the built encoder's `token_layout`,
    `embed_dim` and `input_spec`. `build(cfg, num_classes, layout)`: the encoder.
    `architecture`: config keys that change the network (a checkpoint must match them);
    `added`: those added after checkpoints were written, with the value older checkpoints had.
    `clip`: (frames, size) of video clips when neither the spec nor data.rgb fixes them.
    """

    config: type
    reads: Literal["skeleton", "video", "heatmap"]
    token_layout: Literal["time_joint", "sequence"]
    build: Callable[[Any, int, str], Module]
    spec: Callable[[Any], InputSpec]
    width: Callable[[Any], int]
    architecture: tuple[str, ...]
    face: bool = False
    added: Mapping[str, Any] = field(default_factory=dict)
    clip: tuple[int, int] | None = None

    @property
    def kind(self) -> str:
        return self.config.encoder


def _class_spec(module: str, name: str) -> Callable[[Any], InputSpec]:
    """The spec an encoder class carries for any config (imported on use: it loads torch)."""
    return lambda cfg: getattr(importlib.import_module(module), name).input_spec


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
        check_positive(prefix, base_channels=self.base_channels, num_person=self.num_person)
        check_probability(prefix, dropout=self.dropout)


def _build_agcn(cfg: AGCNConfig, num_classes: int, layout: str) -> Module:
    from microgesture.models.agcn import build_agcn

    return build_agcn(num_classes, layout, in_channels=3, base_channels=cfg.base_channels,
                      num_person=cfg.num_person, attention=cfg.attention, similarity=cfg.similarity,
                      dropout=cfg.dropout, weights=cfg.weights)


def _agcn_spec(cfg: AGCNConfig) -> InputSpec:
    from microgesture.models.base import InputSpec

    return InputSpec("skeleton", channels=3)


AGCN_CARD = EncoderCard(
    config=AGCNConfig, reads="skeleton", token_layout="time_joint", build=_build_agcn, spec=_agcn_spec,
    width=lambda cfg: 4 * cfg.base_channels,  # channels double twice over the 10 blocks
    architecture=("base_channels", "attention", "similarity", "num_person"))


@dataclass
class LightRGBConfig:
    """A light (2+1)D RGB encoder for CPUs (any clip size)."""

    encoder: Literal["light"] = "light"
    width: int = 32
    depth: int = 3
    dropout: float = 0.3
    checkpoint: str | None = None

    def check(self, prefix: str) -> None:
        check_positive(prefix, width=self.width, depth=self.depth)
        check_probability(prefix, dropout=self.dropout)


def _build_light(cfg: LightRGBConfig, num_classes: int, layout: str) -> Module:
    from microgesture.models.light_rgb import build_light_rgb

    return build_light_rgb(num_classes, width=cfg.width, depth=cfg.depth, dropout=cfg.dropout)


LIGHT_RGB_CARD = EncoderCard(
    config=LightRGBConfig, reads="video", token_layout="sequence", build=_build_light,
    spec=_class_spec("microgesture.models.light_rgb", "LightRGBEncoder"),
    width=lambda cfg: cfg.width * 2 ** (cfg.depth - 1), architecture=("width", "depth"),
    clip=(16, 96))  # it takes any clip: 16 frames of 96x96 unless data.rgb says otherwise


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
        check_probability(prefix, dropout=self.dropout)


def _build_mvit(cfg: MViTConfig, num_classes: int, layout: str) -> Module:
    from microgesture.models.mvit import build_mvit_v2_s

    return build_mvit_v2_s(num_classes, weights=cfg.weights, kinetics=cfg.kinetics, freeze=cfg.freeze,
                           unfreeze_blocks=cfg.unfreeze_blocks, dropout=cfg.dropout)


MVIT_CARD = EncoderCard(
    config=MViTConfig, reads="video", token_layout="sequence", build=_build_mvit,
    spec=_class_spec("microgesture.models.mvit", "MViTEncoder"), width=lambda cfg: 768, architecture=())


@dataclass
class PoseC3DConfig:
    """PoseC3D's SlowOnly 3D CNN over heatmap volumes (R50: base 32, blocks 4-6-3; arXiv 2104.13586).

    `in_channels`: the volume's channels; None takes them from data.heatmap and data.layout when
    the config is loaded. `recompute_stem`: recompute the full-resolution stem and first stage in
    the backward pass instead of storing them (less memory, about 1/6 more compute).
    """

    encoder: Literal["posec3d"] = "posec3d"
    base_channels: int = 32
    stage_blocks: tuple[int, ...] = (4, 6, 3)
    in_channels: int | None = None
    dropout: float = 0.5
    recompute_stem: bool = False
    weights: str | None = None  # a PYSKL/MMAction2 PoseC3D checkpoint or our own
    checkpoint: str | None = None

    def check(self, prefix: str) -> None:
        check_positive(prefix, base_channels=self.base_channels)
        if not self.stage_blocks or min(self.stage_blocks) < 1:
            raise ConfigError(f"{prefix}.stage_blocks: need at least one stage of >= 1 blocks, got "
                              f"{list(self.stage_blocks)}")
        if self.in_channels is not None:
            check_positive(prefix, in_channels=self.in_channels)
        check_probability(prefix, dropout=self.dropout)


def _build_posec3d(cfg: PoseC3DConfig, num_classes: int, layout: str) -> Module:
    from microgesture.models.posec3d import build_posec3d

    return build_posec3d(num_classes, _heatmap_channels(cfg), base_channels=cfg.base_channels,
                         stage_blocks=cfg.stage_blocks, dropout=cfg.dropout, recompute_stem=cfg.recompute_stem,
                         weights=cfg.weights)


def _heatmap_channels(cfg: PoseC3DConfig) -> int:
    if cfg.in_channels is None:
        raise ConfigError("model.streams.*.in_channels: unknown; load the config with load_config, which takes "
                          "them from data.heatmap and data.layout")
    return cfg.in_channels


def _posec3d_spec(cfg: PoseC3DConfig) -> InputSpec:
    from microgesture.models.base import InputSpec

    return InputSpec("heatmap", channels=_heatmap_channels(cfg), min_size=8)


POSEC3D_CARD = EncoderCard(
    config=PoseC3DConfig, reads="heatmap", token_layout="sequence", build=_build_posec3d, spec=_posec3d_spec,
    width=lambda cfg: cfg.base_channels * 4 * 2 ** (len(cfg.stage_blocks) - 1),  # bottleneck x4, doubling per stage
    architecture=("base_channels", "stage_blocks", "in_channels"))


@dataclass
class SwinFaceConfig:
    """SwinFace (Swin-T on 112x112 faces) per frame of a face clip; tokens [N, T, 512]."""

    encoder: Literal["swinface"] = "swinface"
    weights: str | None = None  # the official SwinFace checkpoint (four parts), or a backbone state dict
    freeze: Literal["none", "all", "partial"] = "all"
    unfreeze_stages: int = 1  # with freeze: partial
    tokens: Literal["embedding", "expression"] = "embedding"  # recognition embedding or expression features
    dropout: float = 0.0
    checkpoint: str | None = None

    def check(self, prefix: str) -> None:
        check_probability(prefix, dropout=self.dropout)
        if not 0 <= self.unfreeze_stages <= 4:
            raise ConfigError(f"{prefix}.unfreeze_stages: must be in 0..4 (Swin-T has 4 stages), "
                              f"got {self.unfreeze_stages}")


def _build_swinface(cfg: SwinFaceConfig, num_classes: int, layout: str) -> Module:
    from microgesture.models.swinface import build_swinface

    return build_swinface(num_classes, weights=cfg.weights, freeze=cfg.freeze, unfreeze_stages=cfg.unfreeze_stages,
                          tokens=cfg.tokens, dropout=cfg.dropout)


SWINFACE_CARD = EncoderCard(
    config=SwinFaceConfig, reads="video", face=True, token_layout="sequence", build=_build_swinface,
    spec=_class_spec("microgesture.models.swinface", "SwinFaceEncoder"),
    width=lambda cfg: 512, architecture=("tokens",),  # both token kinds are 512 wide
    clip=(16, 112))  # 16 frames unless data.rgb says otherwise; the size is fixed by its spec


@dataclass
class LightFaceConfig:
    """A light per-frame CNN face encoder for CPUs (any face size >= 32)."""

    encoder: Literal["light_face"] = "light_face"
    width: int = 16
    depth: int = 3
    dropout: float = 0.3
    frame_norm: bool = False  # standardise each frame per channel (lighting, colour casts)
    checkpoint: str | None = None

    def check(self, prefix: str) -> None:
        check_positive(prefix, width=self.width, depth=self.depth)
        check_probability(prefix, dropout=self.dropout)


def _build_light_face(cfg: LightFaceConfig, num_classes: int, layout: str) -> Module:
    from microgesture.models.light_face import build_light_face

    return build_light_face(num_classes, width=cfg.width, depth=cfg.depth, dropout=cfg.dropout,
                            frame_norm=cfg.frame_norm)


LIGHT_FACE_CARD = EncoderCard(
    config=LightFaceConfig, reads="video", face=True, token_layout="sequence", build=_build_light_face,
    spec=_class_spec("microgesture.models.light_face", "LightFaceEncoder"),
    width=lambda cfg: cfg.width * 2 ** (cfg.depth - 1), architecture=("width", "depth", "frame_norm"),
    added={"frame_norm": False},  # checkpoints written before frame_norm existed ran without it
    clip=(16, 96))  # it takes any face size: as the light RGB encoder, unless data.rgb says otherwise

EncoderConfig = AGCNConfig | LightRGBConfig | MViTConfig | PoseC3DConfig | SwinFaceConfig | LightFaceConfig
ENCODER_CARDS: dict[str, EncoderCard] = {card.kind: card for card in (
    AGCN_CARD, LIGHT_RGB_CARD, MVIT_CARD, POSEC3D_CARD, SWINFACE_CARD, LIGHT_FACE_CARD)}


def encoder_card(kind: str) -> EncoderCard:
    """The card of encoder kind `kind` (a ConfigError naming the known kinds otherwise)."""
    if kind not in ENCODER_CARDS:
        raise ConfigError(f"encoder {kind!r}: unknown; known: {', '.join(ENCODER_CARDS)}")
    return ENCODER_CARDS[kind]


@dataclass
class FusionConfig:
    """How several streams are combined: Cross-Modal Token Fusion, InterFusion (face and context,
    models/interfusion.py), concatenation of pooled embeddings, or late fusion (the streams' own
    logits averaged, trained jointly)."""

    kind: Literal["cmtf", "interfusion", "concat", "late"] = "cmtf"
    width: int = 256
    depth: int = 2
    heads: int = 4
    mode: Literal["cross", "joint"] = "cross"
    dropout: float = 0.1
    modality_dropout: float = 0.1
    hidden: int = 512  # concat only
    queries: int = 4  # interfusion only: learned video-query tokens

    def check(self, prefix: str) -> None:
        check_positive(prefix, width=self.width, depth=self.depth, heads=self.heads, hidden=self.hidden,
                       queries=self.queries)
        if self.width % self.heads:
            raise ConfigError(f"{prefix}.heads: width {self.width} is not divisible by {self.heads} heads")
        check_probability(prefix, modality_dropout=self.modality_dropout, dropout=self.dropout)


# FusionConfig keys that change the fused network (for every kind: checkpoints compare them all).
FUSION_ARCHITECTURE = ("width", "depth", "heads", "mode", "hidden", "queries")


@dataclass(frozen=True)
class FusionCard:
    """A fusion kind: `build(cfg, dims, layouts)` gives a module over {stream: tokens} with
    `embed_dim`, or the string "late" (the streams' own logits are averaged)."""

    kind: str
    build: Callable[[FusionConfig, dict[str, int], dict[str, str]], Module | str]


def _build_cmtf(cfg: FusionConfig, dims: dict[str, int], layouts: dict[str, str]) -> Module:
    from microgesture.models.cmtf import CrossModalTokenFusion

    return CrossModalTokenFusion(dims, layouts, width=cfg.width, depth=cfg.depth, heads=cfg.heads,
                                 dropout=cfg.dropout, modality_dropout=cfg.modality_dropout, mode=cfg.mode)


def _build_interfusion(cfg: FusionConfig, dims: dict[str, int], layouts: dict[str, str]) -> Module:
    from microgesture.models.interfusion import InterFusion

    return InterFusion(dims, width=cfg.width, depth=cfg.depth, heads=cfg.heads, queries=cfg.queries,
                       dropout=cfg.dropout, modality_dropout=cfg.modality_dropout)


def _build_concat(cfg: FusionConfig, dims: dict[str, int], layouts: dict[str, str]) -> Module:
    from microgesture.models.concat import ConcatFusion

    return ConcatFusion(dims, hidden=cfg.hidden, dropout=cfg.dropout, modality_dropout=cfg.modality_dropout)


FUSION_CARDS: dict[str, FusionCard] = {card.kind: card for card in (
    FusionCard("cmtf", _build_cmtf), FusionCard("interfusion", _build_interfusion),
    FusionCard("concat", _build_concat), FusionCard("late", lambda cfg, dims, layouts: "late"))}


def fusion_card(kind: str) -> FusionCard:
    """The card of fusion kind `kind` (a ConfigError naming the known kinds otherwise)."""
    if kind not in FUSION_CARDS:
        raise ConfigError(f"fusion {kind!r}: unknown; known: {', '.join(FUSION_CARDS)}")
    return FUSION_CARDS[kind]
