"""Pooling a video's clip embeddings into one video embedding (multiple-instance learning).

A video-level label (iMiGUE's win/lose) belongs to the whole interview, not to each clip; a
model that sees K clips of one video at once can learn which clips carry the evidence.
`AttentionMIL` is the gated attention pooling of Ilse, Tomczak and Welling ("Attention-based
Deep Multiple Instance Learning", ICML 2018): a weight per clip from tanh(V h) * sigmoid(U h),
softmax over the video's valid clips, weighted mean. `mean` pooling is the baseline.
`VideoPool` applies one pooling per named embedding (one name for a fused embedding, one per
stream for late fusion). Masks: True marks a padded clip slot to ignore.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import torch
from torch import nn

from microgesture.errors import ConfigError

PoolKind = Literal["mean", "attention"]


class AttentionMIL(nn.Module):
    """[B, K, D] clip embeddings + pad mask [B, K] -> ([B, D] video embedding, [B, K] clip weights)."""

    def __init__(self, dim: int, hidden: int = 128, dropout: float = 0.0):
        super().__init__()
        self.value = nn.Linear(dim, hidden)
        self.gate = nn.Linear(dim, hidden)
        self.score = nn.Linear(hidden, 1)
        self.drop = nn.Dropout(dropout)

    def weights(self, clips: torch.Tensor, pad: torch.Tensor) -> torch.Tensor:
        h = self.drop(torch.tanh(self.value(clips)) * torch.sigmoid(self.gate(clips)))
        logits = self.score(h).squeeze(-1).float().masked_fill(pad, float("-inf"))
        return torch.softmax(logits, dim=1).to(clips.dtype)

    def forward(self, clips: torch.Tensor, pad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        clips = clips.masked_fill(pad[..., None], 0.0)  # whatever a padded slot holds cannot leak
        w = self.weights(clips, pad)
        return (w[..., None] * clips).sum(1), w


def masked_clip_mean(clips: torch.Tensor, pad: torch.Tensor) -> torch.Tensor:
    """Mean of [B, K, D] over the valid clips of each video."""
    keep = (~pad).to(clips.dtype)[..., None]
    return clips.masked_fill(pad[..., None], 0.0).sum(1) / keep.sum(1).clamp(min=1.0)


class VideoPool(nn.Module):
    """`forward({name: [B, K, D]}, pad [B, K]) -> {name: [B, D]}` with `kind` pooling per name."""

    def __init__(self, dims: Mapping[str, int], kind: PoolKind = "attention", hidden: int = 128,
                 dropout: float = 0.0):
        super().__init__()
        if kind not in ("mean", "attention"):
            raise ConfigError(f"video pooling must be 'mean' or 'attention', got {kind!r}")
        self.kind = kind
        self.attn = nn.ModuleDict({m: AttentionMIL(d, hidden, dropout) for m, d in dims.items()}
                                  if kind == "attention" else {})

    def _check(self, clips: torch.Tensor, pad: torch.Tensor, name: str) -> None:
        if clips.dim() != 3 or tuple(pad.shape) != tuple(clips.shape[:2]):
            raise ValueError(f"{name}: clip embeddings must be [B, K, D] with a [B, K] mask, got "
                             f"{list(clips.shape)} and {list(pad.shape)}")
        if bool(pad.all(1).any()):
            raise ValueError(f"{name}: a video in the batch has no valid clip")

    def forward(self, clips: Mapping[str, torch.Tensor], pad: torch.Tensor) -> dict[str, torch.Tensor]:
        out = {}
        for name, x in clips.items():
            self._check(x, pad, name)
            out[name] = self.attn[name](x, pad)[0] if self.kind == "attention" else masked_clip_mean(x, pad)
        return out

    def clip_weights(self, clips: Mapping[str, torch.Tensor], pad: torch.Tensor) -> dict[str, torch.Tensor]:
        """Each clip's share of its video's embedding (uniform over valid clips for mean pooling)."""
        if self.kind == "mean":
            keep = (~pad).float()
            w = keep / keep.sum(1, keepdim=True).clamp(min=1.0)
            return {name: w for name in clips}
        return {name: self.attn[name].weights(x, pad) for name, x in clips.items()}
