"""Config -> model. One explicit function per part, no registry.

Every model built here has an `inputs` attribute naming the batch keys it consumes, so the
LightningModule and the data module need not know which architecture they serve.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from microgesture.train.config import ModelConfig, RGBModelConfig, SkeletonModelConfig



def build_skeleton_encoder(cfg: SkeletonModelConfig, num_classes: int, layout: str) -> nn.Module:
    from microgesture.models.agcn import build_agcn

    model = build_agcn(num_classes, layout, base_channels=cfg.base_channels, attention=cfg.attention,
                       similarity=cfg.similarity, dropout=cfg.dropout, weights=cfg.weights)
    model.inputs = ("skeleton",)
    return model


def build_rgb_encoder(cfg: RGBModelConfig, num_classes: int) -> nn.Module:
    if cfg.encoder == "mvit":
        from microgesture.models.mvit import build_mvit_v2_s

        model = build_mvit_v2_s(num_classes, weights=cfg.weights, kinetics=cfg.kinetics, freeze=cfg.freeze,
                                unfreeze_blocks=cfg.unfreeze_blocks, dropout=cfg.dropout)
    else:
        from microgesture.models.light_rgb import build_light_rgb

        model = build_light_rgb(num_classes, width=cfg.width, depth=cfg.depth, dropout=cfg.dropout)
    model.inputs = ("rgb",)
    return model


def encoder_dims(cfg: ModelConfig) -> tuple[int, int]:
    """(rgb token width, skeleton token width) of the configured encoders."""
    rgb = 768 if cfg.rgb.encoder == "mvit" else cfg.rgb.width * 2 ** (cfg.rgb.depth - 1)
    return rgb, 4 * cfg.skeleton.base_channels


def build_model(cfg: ModelConfig, num_classes: int, layout: str, *, cached: bool = False,
                init_encoders: bool = True) -> nn.Module:
    """The network a config names; `cached` builds a fusion model that reads extracted tokens.

    `init_encoders=False` skips copying the single-stream runs' weights into a fusion model's
    encoders (when a fusion checkpoint is about to be loaded, those files are not needed).
    """
    if cfg.arch == "skeleton":
        return build_skeleton_encoder(cfg.skeleton, num_classes, layout)
    if cfg.arch == "rgb":
        return build_rgb_encoder(cfg.rgb, num_classes)
    from microgesture.models.cmtf import ConcatFusion, CrossModalTokenFusion
    from microgesture.models.fusion import FusionClassifier

    rgb_dim, skel_dim = encoder_dims(cfg)
    f = cfg.fusion
    if cfg.arch == "cmtf":
        fusion = CrossModalTokenFusion(rgb_dim, skel_dim, num_classes, width=f.width, depth=f.depth, heads=f.heads,
                                       dropout=f.dropout, modality_dropout=f.modality_dropout, mode=f.mode)
    else:
        fusion = ConcatFusion(rgb_dim, skel_dim, num_classes, hidden=f.hidden, dropout=f.dropout,
                              modality_dropout=f.modality_dropout)
    if cached:
        return FusionClassifier(fusion)
    rgb = build_rgb_encoder(cfg.rgb, num_classes)
    skeleton = build_skeleton_encoder(cfg.skeleton, num_classes, layout)
    for encoder, path in ((rgb, cfg.rgb.checkpoint), (skeleton, cfg.skeleton.checkpoint)):
        if path is not None and init_encoders:
            load_trained_encoder(encoder, path)
    return FusionClassifier(fusion, rgb, skeleton)


def load_trained_encoder(encoder: nn.Module, checkpoint: str | Path) -> None:
    """Copy the weights of a single-stream microgesture run into `encoder` (its head is dropped)."""
    from microgesture.errors import DataError
    from microgesture.train.checkpoint import read_checkpoint

    state = read_checkpoint(checkpoint)["state_dict"]
    state = {k[len("model."):]: v for k, v in state.items() if k.startswith("model.")}
    own = encoder.state_dict()
    shaped = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    body = [k for k in own if not k.startswith("head")]
    missing = [k for k in body if k not in shaped]
    if missing:
        raise DataError(checkpoint, f"not a run of this encoder: {len(missing)} weights missing or shaped "
                                    f"differently, e.g. {missing[0]!r}")
    with torch.no_grad():
        for key, value in shaped.items():
            if not key.startswith("head"):
                own[key].copy_(value)
