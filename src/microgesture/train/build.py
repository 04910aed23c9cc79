"""Config -> model. One explicit function, no registry: each architecture is one branch."""

from __future__ import annotations

from torch import nn

from microgesture.train.config import ModelConfig


def build_model(cfg: ModelConfig, num_classes: int, layout: str) -> nn.Module:
    """Build the network a config names. The model's `inputs` says which batch keys it consumes."""
    if cfg.arch == "agcn":
        from microgesture.models.agcn import build_agcn

        model = build_agcn(
            num_classes,
            layout,
            base_channels=cfg.base_channels,
            attention=cfg.attention,
            dropout=cfg.dropout,
            weights=cfg.weights,
        )
        model.inputs = ("skeleton",)
        return model
    raise ValueError(f"model.arch {cfg.arch!r} has no builder")
