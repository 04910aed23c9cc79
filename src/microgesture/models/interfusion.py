"""InterFusion: face tokens over time and context tokens exchange information; learned video
queries gather the evidence into one embedding.

The method paper (arXiv 2512.23291) fuses SwinFace face embeddings with MViTv2-S context
embeddings in an "InterFusion" module for the emotion track, but does not publish its internals.
This is our design:

1. **Embedding.** Each stream's tokens (face: one per frame [N, T, D_f] with a [N, T] mask of
   frames without a face; context: the whole-frame video encoder's [N, L, D_c]; a skeleton's
   [N, T', V, D] grid is flattened) are layer-normalised, projected to `width`, and get a learned
   stream embedding and learned 1-D positions (sliced, or interpolated when a stream is longer
   than the table). Each stream has a learned null token that is never masked, so a clip
   without any face (or a dropped stream) needs no special path and cannot produce NaNs.
2. **Interleaved layers** (`depth` of them), pre-norm, no weights shared between streams:
   a. *intra*: self-attention within each stream (the face over time, the context over its
      space-time tokens);
   b. *inter*: bidirectional cross-attention, face <- context and context <- face, both read
      from the state after (a), so the exchange is symmetric;
   c. a feed-forward block per stream;
   d. *query*: `queries` learned video-query tokens cross-attend to every valid token of both
      streams, then attend to each other and go through a feed-forward block. The queries carry
      over from layer to layer, so each layer's query step reads better-mixed streams and refines
      what the previous one gathered (a latent bottleneck, as in Perceiver-style readers).
3. **Output.** The queries after the last layer, averaged and layer-normalised: [N, width].
4. **Stream dropout** (`modality_dropout`): in training a sample loses one whole stream (never
   its last) with this probability, so the fusion also learns from either stream alone and
   cannot lean on the easier one.

Compared with CMTF (models/cmtf.py), which pools once at the end with one query, the queries
here take part in every layer, and the face mask over frames is part of the contract. A clip's
embedding is classified per clip; models/video_pool.py pools clip embeddings into a video's.
Masks follow `nn.MultiheadAttention.key_padding_mask`: True marks a token to ignore; masked
tokens are zeroed before anything else, so their values (even NaN) cannot leak.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from microgesture.errors import ConfigError
from microgesture.models.cmtf import CrossLayer
from microgesture.models.layers import (
    Attention,
    drop_streams,
    feed_forward,
    padding_mask,
    stretch_positions,
    with_null,
)

Tokens = Mapping[str, torch.Tensor | None]


class _QueryBlock(nn.Module):
    def __init__(self, width: int, heads: int, dropout: float, mlp_ratio: float):
        super().__init__()
        self.read = Attention(width, heads, dropout, cross=True)
        self.self_attn = Attention(width, heads, dropout, cross=False)
        self.norm_ffn = nn.LayerNorm(width)
        self.ffn = feed_forward(width, mlp_ratio, dropout)


class InterLayer(nn.Module):
    """One interleaved layer: intra + inter (bidirectional) + FFN per stream (CMTF's cross layer,
    models/cmtf.py), then the query step."""

    def __init__(self, names: list[str], width: int, heads: int, dropout: float, mlp_ratio: float = 4.0):
        super().__init__()
        self.exchange = CrossLayer(names, width, heads, dropout, mlp_ratio)
        self.query = _QueryBlock(width, heads, dropout, mlp_ratio)

    def forward(self, xs: dict[str, torch.Tensor], pads: dict[str, torch.Tensor],
                queries: torch.Tensor) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        xs = self.exchange(xs, pads)
        every = torch.cat(list(xs.values()), 1)
        every_pad = torch.cat([pads[m] for m in xs], 1)
        q = self.query
        queries = queries + q.read(queries, every_pad, every)
        no_pad = torch.zeros(queries.shape[:2], dtype=torch.bool, device=queries.device)
        queries = queries + q.self_attn(queries, no_pad)
        return xs, queries + q.ffn(q.norm_ffn(queries))


class InterFusion(nn.Module):
    """Fuse named token streams (face and context) into one clip embedding (see module doc).

    `dims[m]`: stream m's token width. `forward(tokens, masks=None) -> [N, width]`: `tokens` maps
    names to [N, L, D] (or [N, T', V, D]) tensors or None (missing); `masks` maps names to padding
    masks [N, L] (True = ignore; for the face, the frames without a face). With a 512-d face and
    a 768-d context stream, width 256, depth 2 and 4 queries the module has 7.18M parameters.
    """

    def __init__(
        self,
        dims: Mapping[str, int],
        *,
        width: int = 256,
        depth: int = 2,
        heads: int = 4,
        queries: int = 4,
        dropout: float = 0.1,
        modality_dropout: float = 0.0,
        max_tokens: int = 1024,
        mlp_ratio: float = 4.0,
    ):
        super().__init__()
        _check_config(dims, width, heads, depth, queries, modality_dropout)
        self.names, self.dims = list(dims), dict(dims)
        self.embed_dim = width
        self.modality_dropout = modality_dropout
        self.proj = nn.ModuleDict({m: nn.Sequential(nn.LayerNorm(d), nn.Linear(d, width)) for m, d in dims.items()})
        self.stream = nn.ParameterDict({m: nn.Parameter(torch.zeros(width)) for m in self.names})
        self.null = nn.ParameterDict({m: nn.Parameter(torch.zeros(width)) for m in self.names})
        self.pos = nn.ParameterDict({m: nn.Parameter(torch.zeros(max_tokens, width)) for m in self.names})
        self.queries = nn.Parameter(torch.zeros(queries, width))
        self.layers = nn.ModuleList(InterLayer(self.names, width, heads, dropout, mlp_ratio) for _ in range(depth))
        self.out_norm = nn.LayerNorm(width)
        for p in [*self.stream.values(), *self.null.values(), *self.pos.values(), self.queries]:
            nn.init.trunc_normal_(p, std=0.02)

    def _embed(self, name: str, tokens: torch.Tensor, pad: torch.Tensor | None):
        dim = self.dims[name]
        if tokens.dim() == 4:  # a time-joint grid: one sequence
            if pad is not None and pad.dim() == 2:
                pad = pad[:, :, None].expand(-1, -1, tokens.shape[2])
            tokens, pad = tokens.flatten(1, 2), None if pad is None else pad.flatten(1)
        if tokens.dim() != 3 or tokens.shape[-1] != dim:
            raise ValueError(f"{name} tokens must be [N, L, {dim}] (or [N, T', V, {dim}]), got {list(tokens.shape)}")
        pad = padding_mask(pad, tokens.shape[:2], f"{name} mask", tokens.device)
        x = self.proj[name](torch.where(pad[..., None], 0.0, tokens))
        return x + stretch_positions(self.pos[name], tokens.shape[1]) + self.stream[name], pad


    def forward_features(self, tokens: Tokens, masks: Mapping[str, torch.Tensor] | None = None):
        """(streams {name: [N, 1 + L, width]}, their masks, queries [N, Q, width]) after the last layer."""
        unknown = sorted(set(tokens) - set(self.names))
        if unknown:
            raise ValueError(f"InterFusion was built for streams {self.names}, got {unknown}")
        masks = masks or {}
        embedded = {m: self._embed(m, t, masks.get(m)) for m, t in tokens.items() if t is not None}
        if not embedded:
            raise ValueError(f"InterFusion needs at least one stream; every one of {self.names} is missing")
        sizes = {x.shape[0] for x, _ in embedded.values()}
        if len(sizes) > 1:
            raise ValueError(f"batch sizes differ between streams: {sorted(sizes)}")
        n, device = sizes.pop(), next(iter(embedded.values()))[0].device
        if self.training and self.modality_dropout > 0 and len(embedded) > 1:
            embedded = drop_streams(embedded, self.modality_dropout)
        xs, pads = {}, {}
        for m in self.names:
            x, pad = embedded.get(m, (None, None))
            xs[m], pads[m] = with_null(self.null[m] + self.stream[m], x, pad, n, device)
        queries = self.queries.expand(n, -1, -1)
        for layer in self.layers:
            xs, queries = layer(xs, pads, queries)
        return xs, pads, queries

    def pool(self, queries: torch.Tensor) -> torch.Tensor:
        return self.out_norm(queries.mean(1))

    def forward(self, tokens: Tokens, masks: Mapping[str, torch.Tensor] | None = None) -> torch.Tensor:
        return self.pool(self.forward_features(tokens, masks)[2])


def _check_config(dims, width, heads, depth, queries, modality_dropout) -> None:
    if len(dims) < 2:
        raise ConfigError(f"InterFusion exchanges information between streams: it needs two or more, got {list(dims)}")
    if width % heads:
        raise ConfigError(f"width ({width}) must be divisible by heads ({heads})")
    if depth < 1:
        raise ConfigError(f"depth must be >= 1 (the queries read the streams in each layer), got {depth}")
    if queries < 1:
        raise ConfigError(f"queries must be >= 1, got {queries}")
    if not 0.0 <= modality_dropout <= 1.0:
        raise ConfigError(f"modality_dropout is a probability in [0, 1], got {modality_dropout}")
