"""Building blocks shared by the models: attention sublayers, attention pooling, position tables,
padding masks, masked means, null tokens and modality dropout (the fusion modules'), and a strided
1x1 convolution that oneDNN's CPU kernels compute right (the CNN encoders').

Masks follow `nn.MultiheadAttention.key_padding_mask`: True marks a token to ignore.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def stretch_positions(table: torch.Tensor, length: int) -> torch.Tensor:
    """The first `length` rows of a position table, or the table stretched when it is too short."""
    if length <= table.shape[0]:
        return table[:length]
    return F.interpolate(table.T[None], size=length, mode="linear", align_corners=True)[0].T


def sinusoidal(length: int, dim: int, device: torch.device | None = None) -> torch.Tensor:
    """Fixed sine/cosine positions [length, dim] (dim even), as in the original Transformer."""
    pos = torch.arange(length, dtype=torch.float32, device=device)[:, None]
    freq = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32, device=device) * (-math.log(1e4) / dim))
    table = torch.zeros(length, dim, device=device)
    table[:, 0::2] = torch.sin(pos * freq)
    table[:, 1::2] = torch.cos(pos * freq)
    return table


def feed_forward(width: int, ratio: float, dropout: float) -> nn.Sequential:
    hidden = int(width * ratio)
    return nn.Sequential(nn.Linear(width, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, width),
                         nn.Dropout(dropout))


class Attention(nn.Module):
    """Pre-norm attention sublayer returning only the residual update (self- or cross-attention)."""

    def __init__(self, width: int, heads: int, dropout: float, cross: bool):
        super().__init__()
        self.norm_q = nn.LayerNorm(width)
        self.norm_kv = nn.LayerNorm(width) if cross else None
        self.attn = nn.MultiheadAttention(width, heads, dropout=dropout, batch_first=True)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, pad: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        q = self.norm_q(x)
        kv = q if self.norm_kv is None else self.norm_kv(context)
        return self.drop(self.attn(q, kv, kv, key_padding_mask=pad, need_weights=False)[0])


class AttentionPool(nn.Module):
    """A learned query attends over the valid tokens: [N, L, D] -> [N, D]."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        self.query = nn.Parameter(torch.zeros(1, 1, width))
        self.norm = nn.LayerNorm(width)
        self.attn = nn.MultiheadAttention(width, heads, batch_first=True)
        self.out_norm = nn.LayerNorm(width)
        nn.init.trunc_normal_(self.query, std=0.02)

    def forward(self, tokens: torch.Tensor, pad: torch.Tensor | None = None) -> torch.Tensor:
        kv = self.norm(tokens)
        query = self.query.expand(tokens.shape[0], -1, -1)
        pooled = self.attn(query, kv, kv, key_padding_mask=pad, need_weights=False)[0][:, 0]
        return self.out_norm(pooled)


def padding_mask(mask: torch.Tensor | None, shape, name: str, device) -> torch.Tensor:
    """A boolean padding mask of `shape` (all False when None); ValueError naming `name` otherwise."""
    if mask is None:
        return torch.zeros(tuple(shape), dtype=torch.bool, device=device)
    if tuple(mask.shape) != tuple(shape):
        raise ValueError(f"{name} must have shape {list(shape)} (True = padding), got {list(mask.shape)}")
    return mask.to(device=device, dtype=torch.bool)


def masked_mean(tokens: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Mean of [N, L, D] tokens over the positions where `mask` [N, L] (True = ignore) is False; 0 when none."""
    if mask is None:
        return tokens.mean(1)
    keep = (~mask.to(torch.bool)).to(tokens.dtype)[..., None]
    return (tokens * keep).sum(1) / keep.sum(1).clamp(min=1.0)


def drop_modalities(present: torch.Tensor, p: float) -> torch.Tensor:
    """Which modality to hide per sample: [N, M] bool, True = drop.

    With probability `p`, a sample that has at least two modalities present loses one of them,
    chosen uniformly among the present ones; a sample never loses its last modality.
    """
    n, m = present.shape
    eligible = present.sum(1) >= 2
    drop = eligible & (torch.rand(n, device=present.device) < p)
    # A uniform choice among the present modalities: the largest random key among them.
    keys = torch.rand(n, m, device=present.device).masked_fill(~present, -1.0)
    choice = F.one_hot(keys.argmax(1), m).bool()
    return choice & drop[:, None]


def with_null(null: torch.Tensor, x: torch.Tensor | None, pad: torch.Tensor | None, n: int, device):
    """A stream's tokens [N, L, D] with its never-masked null token [D] first (only the null token
    when the stream is missing), and the padding mask to match."""
    token = null.expand(n, 1, -1)
    no_pad = torch.zeros(n, 1, dtype=torch.bool, device=device)
    if x is None:
        return token, no_pad
    return torch.cat([token, x], 1), torch.cat([no_pad, pad], 1)


def drop_streams(embedded: dict[str, tuple[torch.Tensor, torch.Tensor]], p: float):
    """Modality dropout on embedded streams {name: (tokens, pad)}: a dropped stream is fully masked."""
    names = list(embedded)
    present = torch.stack([~embedded[m][1].all(1) for m in names], 1)
    drop = drop_modalities(present, p)
    return {m: (x, pad | drop[:, i, None]) for i, (m, (x, pad)) in enumerate(embedded.items())}


class TaskHead(nn.Module):
    """Dropout + a linear classifier per named embedding; the logits are averaged over the names.

    One name is an ordinary classifier; several are late fusion of per-modality classifiers.
    """

    def __init__(self, dims: dict[str, int], num_outputs: int, dropout: float = 0.0):
        super().__init__()
        self.drop = nn.Dropout(dropout)
        self.fc = nn.ModuleDict({name: nn.Linear(dim, num_outputs) for name, dim in dims.items()})
        self.num_outputs = num_outputs

    def forward(self, embeddings: dict[str, torch.Tensor]) -> torch.Tensor:
        logits = [fc(self.drop(embeddings[name])) for name, fc in self.fc.items()]
        return torch.stack(logits).mean(0)


class StridedPointwiseConv2d(nn.Conv2d):
    """A 1x1 convolution with stride s, computed as what it is: every s-th pixel, then a stride-1 1x1
    convolution. Same weights, same names, same result as `nn.Conv2d(cin, cout, 1, s)`.

    Why: oneDNN's AVX2 kernel for the weight gradient of a strided 1x1 convolution on channels_last
    input with fewer than 8 input channels hangs, crashes or returns wrong gradients (oneDNN issue
    6035; tests/test_kernels.py). The stride-1 kernel and the copy of the subsampled pixels are fine.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int, bias: bool = False):
        super().__init__(in_channels, out_channels, 1, stride, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        sh, sw = self.stride
        return F.conv2d(x[:, :, ::sh, ::sw], self.weight, self.bias)
