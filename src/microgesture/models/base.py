"""The one interface every encoder has (timm's model API), and the input spec it carries.

An encoder turns one modality into tokens and a pooled embedding:

    tokens = encoder.forward_features(x)          # layout `token_layout`, width `embed_dim`
    embedding = encoder.pool(tokens)              # [N, embed_dim]
    logits = encoder.forward_head(tokens)         # [N, num_classes]; pre_logits=True gives the embedding
    encoder.reset_classifier(num_classes)         # a new head (0: none, features only)

`token_layout` says how tokens are arranged, so fusion modules can give them positions:
"time_joint" is [N, T', V, D] (skeleton encoders), "sequence" is [N, L, D] (video encoders; the
first `num_prefix_tokens` are class tokens). `input_spec` says what the encoder reads, as
torchvision's weights carry their transforms: the data side builds its pipeline from it instead
of typing the same numbers again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

import torch

from microgesture.models.layers import masked_mean

TokenLayout = Literal["time_joint", "sequence"]

# Kinetics-400 statistics of video frames on the [0, 1] scale (torchvision's video weights).
KINETICS_MEAN: tuple[float, float, float] = (0.45, 0.45, 0.45)
KINETICS_STD: tuple[float, float, float] = (0.225, 0.225, 0.225)
InputKind = Literal["skeleton", "video", "heatmap"]


@dataclass(frozen=True)
class InputSpec:
    """What an encoder reads.

    kind: "skeleton" ([N, M, T, V, C] joints), "video" ([N, 3, T, H, W] frames) or "heatmap"
    ([N, K, T, H, W] pseudo-heatmaps). frames / size: the only frame count and square size the
    encoder accepts (None: any). mean / std: per-channel normalisation of video frames on the
    [0, 1] scale. channels: C (skeleton), 3 (video) or K (heatmaps).
    """

    kind: InputKind
    channels: int
    frames: int | None = None
    size: int | None = None
    min_size: int = 1
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None

    def check(self, frames: int | None = None, size: int | None = None) -> list[str]:
        """Problems with feeding `frames` frames of `size` x `size` (empty when it fits)."""
        problems = []
        if self.frames is not None and frames is not None and frames != self.frames:
            problems.append(f"takes exactly {self.frames} frames, not {frames}")
        if self.size is not None and size is not None and size != self.size:
            problems.append(f"takes exactly {self.size}x{self.size} frames, not {size}x{size}")
        if size is not None and size < self.min_size:
            problems.append(f"needs frames of at least {self.min_size}x{self.min_size}, not {size}x{size}")
        return problems


@runtime_checkable
class Encoder(Protocol):
    """What the rest of the toolkit relies on (see the module doc); tests/test_encoders.py checks it."""

    embed_dim: int
    num_classes: int
    num_prefix_tokens: int
    token_layout: TokenLayout
    input_spec: InputSpec

    def forward_features(self, x: torch.Tensor) -> torch.Tensor: ...

    def pool(self, tokens: torch.Tensor) -> torch.Tensor: ...

    def forward_head(self, tokens: torch.Tensor, pre_logits: bool = False) -> torch.Tensor: ...

    def reset_classifier(self, num_classes: int) -> None: ...

    def forward(self, x: torch.Tensor) -> torch.Tensor: ...


class FrameEncoderHead:
    """The pooling and head part of the interface for encoders that give one token per frame and
    take a mask of frames without input ([N, T], True = missing: the face encoders). Pooling is
    the mean over the frames present; the head is dropout + linear. The class sets `embed_dim`,
    `dropout`, `num_classes`, `head` and `forward_features(x, missing=None)`."""

    embed_dim: int
    dropout: float
    num_classes: int

    def _make_head(self, num_classes: int) -> torch.nn.Module:
        if num_classes <= 0:
            return torch.nn.Identity()
        return torch.nn.Sequential(torch.nn.Dropout(self.dropout), torch.nn.Linear(self.embed_dim, num_classes))

    def reset_classifier(self, num_classes: int) -> None:
        """A fresh head for `num_classes` (0: none, `forward` returns the embedding)."""
        self.num_classes = num_classes
        ref = next(self.parameters())
        self.head = self._make_head(num_classes).to(device=ref.device, dtype=ref.dtype)

    def pool(self, tokens: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return masked_mean(tokens, mask)

    def forward_head(self, tokens: torch.Tensor, pre_logits: bool = False,
                     mask: torch.Tensor | None = None) -> torch.Tensor:
        pooled = self.pool(tokens, mask)
        return pooled if pre_logits else self.head(pooled)

    def forward(self, x: torch.Tensor, missing: torch.Tensor | None = None) -> torch.Tensor:
        return self.forward_head(self.forward_features(x, missing), mask=missing)
