"""Config -> model, through each encoder's and fusion's card (train/cards.py, no registry).

`input_specs(model_cfg)` says what each stream's encoder reads without building it and
`video_inputs(cfg)` how its clips are loaded (the data side reads them); `build_model` builds the
Recognizer a config names; `stream_encoders`, `encoders_meta` and `attach_encoders` are a fusion's
encoders as its config names them (for the token cache, train/extract.py, and for scoring).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from microgesture.data.cache import encoder_meta
from microgesture.data.transforms.pipelines import VideoAugment, VideoInput
from microgesture.errors import ConfigError, DataError
from microgesture.models.base import InputSpec
from microgesture.train.cards import EncoderCard, EncoderConfig, FusionConfig, encoder_card, fusion_card
from microgesture.train.config import ExperimentConfig, ModelConfig, TaskConfig
from microgesture.typed_config import to_dict


def input_specs(cfg: ModelConfig) -> dict[str, InputSpec]:
    return {name: encoder_card(enc.encoder).spec(enc) for name, enc in cfg.streams.items()}


def video_inputs(cfg: ExperimentConfig) -> dict[str, VideoInput]:
    """How each video stream's clips are loaded: the encoder's input spec, with data.rgb filling its gaps."""
    out = {}
    for name, spec in input_specs(cfg.model).items():
        if spec.kind != "video":
            continue
        r, card = cfg.data.rgb, encoder_card(cfg.model.streams[name].encoder)
        frames = r.num_frames or spec.frames or _open_clip(card, name)[0]
        size = r.size or spec.size or _open_clip(card, name)[1]
        problems = spec.check(frames, size)
        if problems:
            raise ConfigError(f"data.rgb: the {card.kind} encoder of stream {name!r} {'; '.join(problems)} "
                              f"(data.rgb.num_frames / data.rgb.size)")
        out[name] = VideoInput(frames, size, tuple(spec.mean), tuple(spec.std), r.resize,
                               VideoAugment(**to_dict(r.appearance)))
    return out


def clip_shapes(cfg: ExperimentConfig) -> dict[str, tuple[int, ...]]:
    """One clip's shape per stream, as the data side makes it: skeletons [M, T, V, C], heatmap volumes
    [K, T, H, W], video [3, T, S, S] (for example inputs: checks, benchmarks)."""
    from microgesture.domain.layouts import get_layout

    videos = video_inputs(cfg)
    out: dict[str, tuple[int, ...]] = {}
    for name, spec in input_specs(cfg.model).items():
        if spec.kind == "skeleton":
            joints = get_layout(cfg.data.layout).num_joints
            out[name] = (cfg.model.streams[name].num_person, cfg.data.num_frames, joints, spec.channels)
        elif spec.kind == "heatmap":
            h = cfg.data.heatmap
            out[name] = (spec.channels, h.num_frames or cfg.data.num_frames, h.size, h.size)
        else:
            out[name] = (3, videos[name].num_frames, videos[name].size, videos[name].size)
    return out


def _open_clip(card: EncoderCard, name: str) -> tuple[int, int]:
    """The card's clip for an encoder whose spec leaves frames or size open (no silent default)."""
    if card.clip is None:
        raise ConfigError(f"data.rgb: the {card.kind} encoder of stream {name!r} fixes no clip frames or size, "
                          "and its card gives none; set data.rgb.num_frames and data.rgb.size")
    return card.clip


def token_width(cfg: EncoderConfig) -> int:
    """The token width an encoder config gives, without building the encoder."""
    return encoder_card(cfg.encoder).width(cfg)


def build_encoder(name: str, cfg: EncoderConfig, num_classes: int, layout: str, *, init: bool = True) -> nn.Module:
    """One stream's encoder; with `init`, its `checkpoint` (a trained run) is copied in."""
    encoder = encoder_card(cfg.encoder).build(cfg, num_classes, layout)
    if init and cfg.checkpoint is not None:
        load_trained_encoder(encoder, cfg.checkpoint, name)
    return encoder


def _fusion(cfg: FusionConfig, dims: dict[str, int], layouts: dict[str, str]) -> nn.Module | str:
    return fusion_card(cfg.kind).build(cfg, dims, layouts)


def token_layouts(cfg: ModelConfig) -> dict[str, str]:
    return {name: encoder_card(enc.encoder).token_layout for name, enc in cfg.streams.items()}


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


def stream_encoders(cfg: ExperimentConfig, num_classes: int) -> dict[str, nn.Module]:
    """Each stream's encoder as its config names it: a trained run (`checkpoint`) or pretrained `weights`."""
    return {name: build_encoder(name, enc, num_classes, cfg.data.layout) for name, enc in cfg.model.streams.items()}


def encoders_meta(cfg: ExperimentConfig) -> dict[str, Any]:
    """The token cache manifest's description of each stream's encoder (its config, checkpoint and hash)."""
    video = video_inputs(cfg)
    meta = {}
    for name, enc in cfg.model.streams.items():
        config = {**to_dict(enc), "layout": cfg.data.layout, "num_frames": cfg.data.num_frames}
        for key in ("checkpoint", "weights", "dropout"):  # files are identified by content; no dropout at eval
            config.pop(key, None)
        if name in video:  # augmentation is for training only: tokens are extracted without it
            config["video"] = {k: v for k, v in to_dict(video[name]).items() if k != "augment"}
        if encoder_card(enc.encoder).reads == "heatmap":  # the volumes its tokens came from (not the training crop)
            config["heatmap"] = {k: v for k, v in to_dict(cfg.data.heatmap).items() if k != "crop_area"}
        meta[name] = encoder_meta(name, config, enc.checkpoint or getattr(enc, "weights", None))
    return meta


def attach_encoders(module: Any, cfg: ExperimentConfig) -> None:
    """Give a fusion trained on cached tokens the encoders its config names, so it reads raw clips.

    The encoders' checkpoint files must be the ones the tokens came from (same SHA-256 as
    recorded when the fusion was trained), else a DataError says which differs.
    """
    recorded = module.hparams.get("encoders") or {}
    current = encoders_meta(cfg)
    for name, meta in recorded.items():
        now = current.get(name, {})
        if meta.get("checkpoint_sha256") != now.get("checkpoint_sha256"):
            raise DataError(now.get("checkpoint") or meta.get("checkpoint"),
                            f"encoder {name!r}: this is not the checkpoint the fusion's tokens came from "
                            f"(sha {str(meta.get('checkpoint_sha256'))[:12]}, now {str(now.get('checkpoint_sha256'))[:12]})")
    encoders = stream_encoders(cfg, module.num_classes)
    module.model.attach_encoders(encoders)
