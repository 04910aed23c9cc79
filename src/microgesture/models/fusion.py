"""An RGB + skeleton classifier: two encoders feeding a fusion module (CMTF or concatenation).

With encoders it trains end to end on raw clips (inputs `rgb`, `skeleton`); without them it
trains on tokens cached by `microgesture extract` (inputs `rgb_tokens`, `skeleton_tokens`, or the
pooled `*_embedding`s for concatenation), which is how the seed's frozen-feature recipe runs.
"""

from __future__ import annotations

import torch
from torch import nn

from microgesture.models.cmtf import ConcatFusion, CrossModalTokenFusion


class FusionClassifier(nn.Module):
    def __init__(self, fusion: CrossModalTokenFusion | ConcatFusion, rgb_encoder: nn.Module | None = None,
                 skeleton_encoder: nn.Module | None = None):
        super().__init__()
        if (rgb_encoder is None) != (skeleton_encoder is None):
            raise ValueError("give both encoders (end-to-end) or neither (cached tokens)")
        self.fusion = fusion
        self.rgb_encoder = rgb_encoder
        self.skeleton_encoder = skeleton_encoder
        self.num_classes = fusion.num_classes
        self.pooled = isinstance(fusion, ConcatFusion)
        if rgb_encoder is not None:
            self.inputs = ("rgb", "skeleton")
        elif self.pooled:
            self.inputs = ("rgb_embedding", "skeleton_embedding")
        else:
            self.inputs = ("rgb_tokens", "skeleton_tokens")

    def encode(self, rgb: torch.Tensor, skeleton: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Raw clips -> what the fusion module takes (tokens, or pooled embeddings for concat)."""
        r = self.rgb_encoder.forward_features(rgb)
        s = self.skeleton_encoder.forward_features(skeleton)
        if self.pooled:
            return self.rgb_encoder.pool(r), self.skeleton_encoder.pool(s)
        return r, s

    def forward(self, rgb: torch.Tensor, skeleton: torch.Tensor) -> torch.Tensor:
        if self.rgb_encoder is not None:
            rgb, skeleton = self.encode(rgb, skeleton)
        return self.fusion(rgb, skeleton)
