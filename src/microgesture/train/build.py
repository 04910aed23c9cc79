"""Config -> model. One explicit builder per encoder and fusion kind (dicts, no registry).

`input_specs(model_cfg)` says what each stream's encoder reads without building it (the data
side loads clips from it); `build_model` builds the Recognizer a config names.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from microgesture.errors import ConfigError, DataError
from microgesture.models.base import InputSpec
from microgesture.train.config import (
    AGCNConfig,
    EncoderConfig,
    FusionConfig,
    LightFaceConfig,
    LightRGBConfig,
    ModelConfig,
    MViTConfig,
    PoseC3DConfig,
    SwinFaceConfig,
    TaskConfig,
)


def _agcn(cfg: AGCNConfig, num_classes: int, layout: str, in_channels: int = 3) -> nn.Module:
    from microgesture.models.agcn import build_agcn

    return build_agcn(num_classes, layout, in_channels=in_channels, base_channels=cfg.base_channels,
                      num_person=cfg.num_person, attention=cfg.attention, similarity=cfg.similarity,
                      dropout=cfg.dropout, weights=cfg.weights)


def _light(cfg: LightRGBConfig, num_classes: int, layout: str) -> nn.Module:
    from microgesture.models.light_rgb import build_light_rgb

    return build_light_rgb(num_classes, width=cfg.width, depth=cfg.depth, dropout=cfg.dropout)


def _mvit(cfg: MViTConfig, num_classes: int, layout: str) -> nn.Module:
    from microgesture.models.mvit import build_mvit_v2_s

    return build_mvit_v2_s(num_classes, weights=cfg.weights, kinetics=cfg.kinetics, freeze=cfg.freeze,
                           unfreeze_blocks=cfg.unfreeze_blocks, dropout=cfg.dropout)


def _posec3d(cfg: PoseC3DConfig, num_classes: int, layout: str) -> nn.Module:
    from microgesture.models.posec3d import build_posec3d

    return build_posec3d(num_classes, _heatmap_channels(cfg), base_channels=cfg.base_channels,
                         stage_blocks=cfg.stage_blocks, dropout=cfg.dropout, recompute_stem=cfg.recompute_stem,
                         weights=cfg.weights)


def _heatmap_channels(cfg: PoseC3DConfig) -> int:
    if cfg.in_channels is None:
        raise ConfigError("model.streams.*.in_channels: unknown; load the config with load_config, which takes "
                          "them from data.heatmap and data.layout")
    return cfg.in_channels


def _swinface(cfg: SwinFaceConfig, num_classes: int, layout: str) -> nn.Module:
    from microgesture.models.swinface import build_swinface

    return build_swinface(num_classes, weights=cfg.weights, freeze=cfg.freeze, unfreeze_stages=cfg.unfreeze_stages,
                          tokens=cfg.tokens, dropout=cfg.dropout)


def _light_face(cfg: LightFaceConfig, num_classes: int, layout: str) -> nn.Module:
    from microgesture.models.light_face import build_light_face

    return build_light_face(num_classes, width=cfg.width, depth=cfg.depth, dropout=cfg.dropout,
                            frame_norm=cfg.frame_norm)


ENCODERS: dict[str, Callable[..., nn.Module]] = {"agcn": _agcn, "light": _light, "mvit": _mvit,
                                                 "posec3d": _posec3d, "swinface": _swinface,
                                                 "light_face": _light_face}


def _spec_of(cfg: EncoderConfig) -> InputSpec:
    """An encoder's input spec without building it (the class attribute, or AGCN's channels)."""
    if cfg.encoder == "agcn":
        return InputSpec("skeleton", channels=3)
    if cfg.encoder == "mvit":
        from microgesture.models.mvit import MViTEncoder

        return MViTEncoder.input_spec
    if cfg.encoder == "posec3d":
        return InputSpec("heatmap", channels=_heatmap_channels(cfg), min_size=8)
    if cfg.encoder == "swinface":
        from microgesture.models.swinface import SwinFaceEncoder

        return SwinFaceEncoder.input_spec
    if cfg.encoder == "light_face":
        from microgesture.models.light_face import LightFaceEncoder

        return LightFaceEncoder.input_spec
    from microgesture.models.light_rgb import LightRGBEncoder

    return LightRGBEncoder.input_spec


def input_specs(cfg: ModelConfig) -> dict[str, InputSpec]:
    return {name: _spec_of(enc) for name, enc in cfg.streams.items()}


def token_width(cfg: EncoderConfig) -> int:
    """The token width an encoder config gives, without building the encoder."""
    if cfg.encoder == "agcn":
        return 4 * cfg.base_channels
    if cfg.encoder == "mvit":
        return 768
    if cfg.encoder == "posec3d":
        return cfg.base_channels * 4 * 2 ** (len(cfg.stage_blocks) - 1)
    if cfg.encoder == "swinface":
        return 512
    return cfg.width * 2 ** (cfg.depth - 1)  # light RGB and light face


def build_encoder(name: str, cfg: EncoderConfig, num_classes: int, layout: str, *, init: bool = True) -> nn.Module:
    """One stream's encoder; with `init`, its `checkpoint` (a trained run) is copied in."""
    encoder = ENCODERS[cfg.encoder](cfg, num_classes, layout)
    if init and cfg.checkpoint is not None:
        load_trained_encoder(encoder, cfg.checkpoint, name)
    return encoder


def _fusion(cfg: FusionConfig, dims: dict[str, int], layouts: dict[str, str]) -> nn.Module | str:
    if cfg.kind == "late":
        return "late"
    if cfg.kind == "concat":
        from microgesture.models.concat import ConcatFusion

        return ConcatFusion(dims, hidden=cfg.hidden, dropout=cfg.dropout, modality_dropout=cfg.modality_dropout)
    if cfg.kind == "interfusion":
        from microgesture.models.interfusion import InterFusion

        return InterFusion(dims, width=cfg.width, depth=cfg.depth, heads=cfg.heads, queries=cfg.queries,
                           dropout=cfg.dropout, modality_dropout=cfg.modality_dropout)
    from microgesture.models.cmtf import CrossModalTokenFusion

    return CrossModalTokenFusion(dims, layouts, width=cfg.width, depth=cfg.depth, heads=cfg.heads,
                                 dropout=cfg.dropout, modality_dropout=cfg.modality_dropout, mode=cfg.mode)


def token_layouts(cfg: ModelConfig) -> dict[str, str]:
    return {name: "time_joint" if enc.encoder == "agcn" else "sequence" for name, enc in cfg.streams.items()}


def build_model(cfg: ModelConfig, tasks: dict[str, int], layout: str, *, cached: bool = False,
                init_encoders: bool = True, task: TaskConfig | None = None) -> nn.Module:
    """The Recognizer a config names (models/recognizer.py); `cached` reads extracted tokens instead of clips.

    `tasks`: {task name: outputs}, the first served by a single encoder's own head.
    `init_encoders=False` skips copying the trained runs named by `checkpoint` into the encoders
    (when a whole checkpoint of this model is about to be loaded, those files are not needed).
    `task`: the task config's video-level options (attention over a video's clips, the MG
    distribution as an emotion feature).
    """
    from microgesture.models.recognizer import Recognizer

    dims = {name: token_width(enc) for name, enc in cfg.streams.items()}
    fusion = None if cfg.fusion is None else _fusion(cfg.fusion, dims, token_layouts(cfg))
    first = next(iter(tasks.values()))
    head_dropout = cfg.fusion.dropout if isinstance(fusion, nn.Module) else _stream_dropout(cfg)
    video = _video_options(task, tasks)
    if cached:
        return Recognizer(tasks, fusion=fusion, dims=dims, head_dropout=head_dropout, **video)
    encoders = {name: build_encoder(name, enc, first, layout, init=init_encoders) for name, enc in cfg.streams.items()}
    if isinstance(fusion, nn.Module):
        for encoder in encoders.values():
            encoder.reset_classifier(0)  # the fused embedding is classified, not each stream
    return Recognizer(tasks, encoders=encoders, fusion=fusion, head_dropout=head_dropout, **video)


def _video_options(task: TaskConfig | None, tasks: dict[str, int]) -> dict:
    if task is None or "emotion" not in tasks:
        return {}
    out: dict = {}
    if task.mg_feature and "mg" in tasks:
        out["task_features"] = {"emotion": "mg"}
    if task.video_pool == "attention":
        out.update(video_pool="attention", video_tasks=("emotion",))
    return out


def _stream_dropout(cfg: ModelConfig) -> float:
    return max(enc.dropout for enc in cfg.streams.values())


def load_trained_encoder(encoder: nn.Module, checkpoint: str | Path, name: str) -> None:
    """Copy the weights of a trained microgesture run's encoder `name` into `encoder` (its head is dropped).

    The run's encoder of the same name is used, or its only encoder when it has one under another name.
    """
    from microgesture.train.checkpoint import read_run_checkpoint

    state = _encoder_state(read_run_checkpoint(checkpoint)["state_dict"], name)
    own = encoder.state_dict()
    shaped = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    body = [k for k in own if not k.startswith("head")]
    missing = [k for k in body if k not in shaped]
    if missing:
        raise DataError(checkpoint, f"not a run of this encoder ({name}): {len(missing)} weights missing or shaped "
                                    f"differently, e.g. {missing[0]!r}")
    with torch.no_grad():
        for key, value in shaped.items():
            if not key.startswith("head"):
                own[key].copy_(value)


def _encoder_state(state: dict, name: str) -> dict:
    """Encoder `name`'s weights in a run: `model.encoders.<name>.*`, else the run's only encoder."""
    names = sorted({k.split(".")[2] for k in state if k.startswith("model.encoders.")})
    pick = name if name in names else names[0] if len(names) == 1 else None
    prefix = f"model.encoders.{pick}."
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
