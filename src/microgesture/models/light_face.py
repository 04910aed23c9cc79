"""A light face encoder for CPUs: a small per-frame CNN, then a temporal convolution over frames.

For the synthetic face-track videos and the demo, where SwinFace (28.9M parameters, about a
second a frame on a CPU) is far too heavy. It reads face clips [N, 3, T, S, S] (any S >= 32,
normalised like SwinFace's input, (x / 255 - 0.5) / 0.5, so the same data pipeline serves both)
and gives one token per frame [N, T, embed_dim] (token_layout "sequence"), like the SwinFace
encoder, so fusion modules and the missing-face mask treat both alike.

Per frame: a 3x3 stride-2 stem, then `depth` residual stages (3x3 convs, stride 2, channels
doubling from `width`), global average pooling. Over time: a residual depthwise temporal
convolution (kernel 3) that lets each frame's token see its neighbours (expressions are
movements), computed after zeroing the tokens of frames without a face so those never leak.
At width 16, depth 3 the encoder has 78k parameters and tokens of 64 channels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from microgesture.errors import ConfigError
from microgesture.models.base import FrameEncoderHead, InputSpec
from microgesture.models.layers import StridedPointwiseConv2d
from microgesture.models.swinface import FACE_MEAN, FACE_STD

MIN_SIZE = 32


def _conv_bn(cin: int, cout: int, stride: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout)]


class ResidualStage(nn.Module):
    """Two 3x3 convs (the first with stride 2) and a 1x1 strided shortcut (subsampling, then 1x1:
    the strided 1x1 kernel of oneDNN's AVX2 gradient is broken below 8 input channels)."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.body = nn.Sequential(*_conv_bn(cin, cout, 2), nn.ReLU(inplace=True), *_conv_bn(cout, cout, 1))
        self.shortcut = nn.Sequential(StridedPointwiseConv2d(cin, cout, 2), nn.BatchNorm2d(cout))
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.body(x) + self.shortcut(x))


class LightFaceEncoder(FrameEncoderHead, nn.Module):
    """[N, 3, T, S, S] face clips -> tokens [N, T, embed_dim] -> masked mean -> head."""

    num_prefix_tokens = 0
    token_layout = "sequence"
    input_spec = InputSpec("video", channels=3, min_size=MIN_SIZE, mean=FACE_MEAN, std=FACE_STD)

    def __init__(self, num_classes: int, width: int = 16, depth: int = 3, dropout: float = 0.3,
                 frame_norm: bool = False):
        super().__init__()
        self.frame_norm = frame_norm
        layers: list[nn.Module] = [*_conv_bn(3, width, 2), nn.ReLU(inplace=True)]
        cin = width
        for stage in range(depth):
            cout = width * 2**stage
            layers.append(ResidualStage(cin, cout))
            cin = cout
        self.frames = nn.Sequential(*layers)
        self.temporal = nn.Conv1d(cin, cin, 3, padding=1, groups=cin)
        self.norm = nn.LayerNorm(cin)
        self.embed_dim = cin
        self.dropout = dropout
        self.num_classes = num_classes
        self.head = self._make_head(num_classes)

    def forward_features(self, x: torch.Tensor, missing: torch.Tensor | None = None) -> torch.Tensor:
        """Tokens [N, T, embed_dim]; frames marked `missing` [N, T] (True = no face) give zero tokens."""
        if x.dim() != 5 or x.shape[1] != 3 or min(x.shape[3:]) < MIN_SIZE:
            raise ValueError(f"light face encoder expects face clips [N, 3, T, S, S] with S >= {MIN_SIZE}, "
                             f"got {list(x.shape)}")
        n, _, t = x.shape[:3]
        if missing is not None and tuple(missing.shape) != (n, t):
            raise ValueError(f"face_missing must be [N, T] = {[n, t]}, got {list(missing.shape)}")
        frames = x.transpose(1, 2).reshape(n * t, 3, *x.shape[3:])
        if self.frame_norm:  # each frame's channels to zero mean, unit variance: lighting and colour casts go
            frames = F.instance_norm(frames, eps=1e-3)
        fmap = self.frames(frames.contiguous(memory_format=torch.channels_last))
        tokens = fmap.mean((2, 3)).view(n, t, -1)
        if missing is not None:
            tokens = tokens.masked_fill(missing.to(torch.bool)[..., None], 0.0)
        tokens = tokens + self.temporal(tokens.transpose(1, 2)).transpose(1, 2)
        tokens = self.norm(tokens)
        if missing is not None:
            tokens = tokens.masked_fill(missing.to(torch.bool)[..., None], 0.0)
        return tokens


def build_light_face(num_classes: int, *, width: int = 16, depth: int = 3, dropout: float = 0.3,
                     frame_norm: bool = False) -> LightFaceEncoder:
    """Light face encoder; embed_dim = width * 2**(depth - 1) (64 by default). `frame_norm`
    standardises each frame per channel first (removes a video's lighting gain and colour cast)."""
    if num_classes < 0:
        raise ConfigError(f"num_classes must be >= 0, got {num_classes}")
    if width < 4 or depth < 1:
        raise ConfigError(f"need width >= 4 and depth >= 1; got {width}, {depth}")
    return LightFaceEncoder(num_classes, width, depth, dropout, frame_norm)
