"""Cross-Modal Token Fusion (CMTF) of any number of named token streams.

The method paper (arXiv 2512.23291) names the module but not its internals; this is our design:

1. Each modality's tokens are layer-normalised (encoders differ wildly in scale) and projected
   to `width`; a learned modality embedding and a position embedding are added. Sequence tokens
   ([N, L, D], video encoders) get 1-D positions, learned or sinusoidal; time-joint tokens
   ([N, T', V, D], skeleton encoders) get factorised time + joint positions, the time table
   shared by every skeleton stream because they come from the same frames. Tables longer than
   needed are sliced, shorter ones linearly interpolated, so any token count works.
2. Each modality gets a learned "null" token that is never masked. Cross-attention always has
   a key to attend to, so a missing modality (None, fully masked, or dropped) needs no special
   path and never produces NaNs: it is simply the null token, and training with modality
   dropout teaches the model what "absent" means.
3. `depth` pre-norm layers. mode="cross": per modality self-attention, then cross-attention
   from each modality to the tokens of all the others, computed from the same state (the
   exchange is symmetric), then an FFN; no weights are shared between modalities. mode="joint":
   one transformer over the concatenated tokens (modality embeddings tell them apart). Cross is
   the default: its cost grows with the products of the streams' lengths rather than the
   square of their sum, and each stream keeps its own parameters.
4. A learned query attends over all valid tokens (attention pooling) into one `width`-d
   embedding, which the task heads (models/recognizer.py) classify.

Masks follow `nn.MultiheadAttention.key_padding_mask`: True marks a token to ignore. Masked
tokens are zeroed before anything else, so their values (even NaN) cannot leak.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import torch
from torch import nn

from microgesture.errors import ConfigError
from microgesture.models.base import TokenLayout
from microgesture.models.layers import (
    Attention,
    AttentionPool,
    drop_streams,
    feed_forward,
    padding_mask,
    sinusoidal,
    stretch_positions,
    with_null,
)

Tokens = Mapping[str, torch.Tensor | None]


class _Stream(nn.Module):
    """One modality's sublayers inside a cross layer."""

    def __init__(self, width: int, heads: int, dropout: float, mlp_ratio: float):
        super().__init__()
        self.self_attn = Attention(width, heads, dropout, cross=False)
        self.cross_attn = Attention(width, heads, dropout, cross=True)
        self.norm_ffn = nn.LayerNorm(width)
        self.ffn = feed_forward(width, mlp_ratio, dropout)


class CrossLayer(nn.Module):
    def __init__(self, names: list[str], width: int, heads: int, dropout: float, mlp_ratio: float = 4.0):
        super().__init__()
        self.streams = nn.ModuleDict({m: _Stream(width, heads, dropout, mlp_ratio) for m in names})

    def forward(self, xs: dict[str, torch.Tensor], pads: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        xs = {m: x + self.streams[m].self_attn(x, pads[m]) for m, x in xs.items()}
        # Every direction reads the same (pre-update) state: the exchange is symmetric.
        updated = {}
        for m, x in xs.items():
            others = [o for o in xs if o != m]
            context = torch.cat([xs[o] for o in others], 1)
            pad = torch.cat([pads[o] for o in others], 1)
            updated[m] = x + self.streams[m].cross_attn(x, pad, context)
        return {m: x + self.streams[m].ffn(self.streams[m].norm_ffn(x)) for m, x in updated.items()}


class JointLayer(nn.Module):
    def __init__(self, names: list[str], width: int, heads: int, dropout: float, mlp_ratio: float = 4.0):
        super().__init__()
        self.attn = Attention(width, heads, dropout, cross=False)
        self.norm_ffn = nn.LayerNorm(width)
        self.ffn = feed_forward(width, mlp_ratio, dropout)

    def forward(self, xs: dict[str, torch.Tensor], pads: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        names = list(xs)
        x, pad = torch.cat([xs[m] for m in names], 1), torch.cat([pads[m] for m in names], 1)
        x = x + self.attn(x, pad)
        x = x + self.ffn(self.norm_ffn(x))
        return dict(zip(names, x.split([xs[m].shape[1] for m in names], dim=1)))


class CrossModalTokenFusion(nn.Module):
    """Fuse named token streams into one embedding (see module doc).

    `dims[m]` is modality m's token width, `layouts[m]` its token layout ("sequence" [N, L, D]
    or "time_joint" [N, T', V, D]; a time-joint stream may also come flattened as [N, L, D]).
    `forward(tokens, masks=None) -> [N, width]`: `tokens` maps names to tensors or None (missing);
    `masks` maps names to padding masks ([N, L]; time-joint streams [N, T', V] or whole frames
    [N, T']). With two modalities (768-d and 256-d), width 256 and depth 2 the module has 5.02M
    parameters (mode="joint": 2.39M).
    """

    def __init__(
        self,
        dims: Mapping[str, int],
        layouts: Mapping[str, TokenLayout],
        *,
        width: int = 256,
        depth: int = 2,
        heads: int = 4,
        dropout: float = 0.1,
        modality_dropout: float = 0.0,
        max_tokens: int = 512,
        max_joints: int = 128,
        mode: Literal["cross", "joint"] = "cross",
        seq_pos: Literal["learned", "sinusoidal"] = "learned",
        mlp_ratio: float = 4.0,
    ):
        super().__init__()
        _check_config(dims, layouts, width, heads, depth, modality_dropout, mode, seq_pos)
        self.names = list(dims)
        self.dims, self.layouts = dict(dims), dict(layouts)
        self.embed_dim = width
        self.modality_dropout, self.mode, self.seq_pos_kind = modality_dropout, mode, seq_pos
        self.max_joints = max_joints
        self.proj = nn.ModuleDict({m: nn.Sequential(nn.LayerNorm(d), nn.Linear(d, width)) for m, d in dims.items()})
        self.modality = nn.ParameterDict({m: nn.Parameter(torch.zeros(width)) for m in self.names})
        self.null = nn.ParameterDict({m: nn.Parameter(torch.zeros(width)) for m in self.names})
        sequences = [m for m in self.names if layouts[m] == "sequence"]
        grids = [m for m in self.names if layouts[m] == "time_joint"]
        self.seq_pos = nn.ParameterDict(
            {m: nn.Parameter(torch.zeros(max_tokens, width)) for m in sequences} if seq_pos == "learned" else {}
        )
        self.time_pos = nn.Parameter(torch.zeros(max_tokens, width)) if grids else None
        self.joint_pos = nn.ParameterDict({m: nn.Parameter(torch.zeros(max_joints, width)) for m in grids})
        layer = CrossLayer if mode == "cross" else JointLayer
        self.layers = nn.ModuleList(layer(self.names, width, heads, dropout, mlp_ratio) for _ in range(depth))
        self.attn_pool = AttentionPool(width, heads)
        for p in [*self.modality.values(), *self.null.values(), *self.seq_pos.values(), *self.joint_pos.values(),
                  self.time_pos]:
            if p is not None:
                nn.init.trunc_normal_(p, std=0.02)

    # -- inputs ---------------------------------------------------------------------------
    def _embed(self, name: str, tokens: torch.Tensor, pad: torch.Tensor | None):
        dim = self.dims[name]
        if tokens.shape[-1] != dim or tokens.dim() not in (3, 4) or (tokens.dim() == 4 and self.layouts[name] != "time_joint"):
            shape = "[N, T', V, D] or [N, L, D]" if self.layouts[name] == "time_joint" else "[N, L, D]"
            raise ValueError(f"{name} tokens must be {shape} with D = {dim}, got {list(tokens.shape)}")
        if tokens.dim() == 4:
            n, t, v, _ = tokens.shape
            if v > self.max_joints:
                raise ValueError(f"{name} tokens have {v} joints, more than max_joints={self.max_joints}")
            if pad is not None and pad.dim() == 2:  # whole frames padded
                pad = pad[:, :, None].expand(-1, -1, v)
            pad = padding_mask(pad, (n, t, v), f"{name} mask", tokens.device).flatten(1)
            pos = (stretch_positions(self.time_pos, t)[:, None] + self.joint_pos[name][:v][None]).flatten(0, 1)
            tokens = tokens.flatten(1, 2)
        else:
            pad = padding_mask(pad, tokens.shape[:2], f"{name} mask", tokens.device)
            pos = self._sequence_positions(name, tokens.shape[1], tokens.device)
        x = self.proj[name](torch.where(pad[..., None], 0.0, tokens))
        return x + pos + self.modality[name], pad

    def _sequence_positions(self, name: str, length: int, device) -> torch.Tensor:
        if self.layouts[name] == "time_joint":  # a flattened skeleton sequence: time positions
            return stretch_positions(self.time_pos, length)
        if name in self.seq_pos:
            return stretch_positions(self.seq_pos[name], length)
        return sinusoidal(length, self.embed_dim, device)

    def _with_null(self, name: str, x: torch.Tensor | None, pad: torch.Tensor | None, n: int, device):
        return with_null(self.null[name] + self.modality[name], x, pad, n, device)

    # -- model API ------------------------------------------------------------------------
    def forward_features(self, tokens: Tokens, masks: Mapping[str, torch.Tensor] | None = None):
        """Fused tokens [N, M + sum of lengths, width] (null tokens first in each stream) and their mask."""
        unknown = sorted(set(tokens) - set(self.names))
        if unknown:
            raise ValueError(f"CMTF was built for modalities {self.names}, got {unknown}")
        masks = masks or {}
        embedded = {m: self._embed(m, t, masks.get(m)) for m, t in tokens.items() if t is not None}
        if not embedded:
            raise ValueError(f"CMTF needs at least one modality; every one of {self.names} is missing")
        sizes = {x.shape[0] for x, _ in embedded.values()}
        if len(sizes) > 1:
            raise ValueError(f"batch sizes differ between modalities: {sorted(sizes)}")
        n, device = sizes.pop(), next(iter(embedded.values()))[0].device
        if self.training and self.modality_dropout > 0 and len(embedded) > 1:
            embedded = self._drop(embedded)
        xs, pads = {}, {}
        for m in self.names:
            x, pad = embedded.get(m, (None, None))
            xs[m], pads[m] = self._with_null(m, x, pad, n, device)
        for layer in self.layers:
            xs = layer(xs, pads)
        return torch.cat([xs[m] for m in self.names], 1), torch.cat([pads[m] for m in self.names], 1)

    def _drop(self, embedded: dict[str, tuple[torch.Tensor, torch.Tensor]]):
        return drop_streams(embedded, self.modality_dropout)

    def pool(self, tokens: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.attn_pool(tokens, mask)

    def forward(self, tokens: Tokens, masks: Mapping[str, torch.Tensor] | None = None) -> torch.Tensor:
        fused, mask = self.forward_features(tokens, masks)
        return self.pool(fused, mask)


def _check_config(dims, layouts, width, heads, depth, modality_dropout, mode, seq_pos) -> None:
    if len(dims) < 1 or set(dims) != set(layouts):
        raise ConfigError(f"CMTF needs token widths and layouts for the same modalities, got {sorted(dims)} "
                          f"and {sorted(layouts)}")
    bad = {m: lay for m, lay in layouts.items() if lay not in ("sequence", "time_joint")}
    if bad:
        raise ConfigError(f"token layouts must be 'sequence' or 'time_joint', got {bad}")
    if width % heads or width % 2:
        raise ConfigError(f"width ({width}) must be even and divisible by heads ({heads})")
    if depth < 0:
        raise ConfigError(f"depth must be >= 0, got {depth}")
    if not 0.0 <= modality_dropout <= 1.0:
        raise ConfigError(f"modality_dropout is a probability in [0, 1], got {modality_dropout}")
    if mode not in ("cross", "joint"):
        raise ConfigError(f"mode must be 'cross' or 'joint', got {mode!r}")
    if seq_pos not in ("learned", "sinusoidal"):
        raise ConfigError(f"seq_pos must be 'learned' or 'sinusoidal', got {seq_pos!r}")
