"""Cross-Modal Token Fusion (CMTF) of RGB and skeleton tokens, and a concatenation baseline.

The seed paper names the module but not its internals; this is our design:

1. Each modality's tokens are layer-normalised (encoders differ wildly in scale) and projected
   to `width`; a learned modality embedding and a position embedding are added (RGB: 1-D,
   learned or sinusoidal; skeleton [N, T', V, C]: factorised time + joint; a flattened
   skeleton sequence uses 1-D time positions). Tables longer than needed are sliced, shorter
   ones linearly interpolated, so any token count works.
2. Each modality gets a learned "null" token that is never masked. Cross-attention always has
   a key to attend to, so a missing modality (None, fully masked, or dropped) needs no special
   path and never produces NaNs: it is simply the null token, and training with modality
   dropout teaches the model what "absent" means.
3. `depth` pre-norm layers. mode="cross": per modality self-attention, then bidirectional
   cross-attention computed from the same state (RGB queries skeleton, skeleton queries RGB),
   then an FFN; weights are not shared between the streams. mode="joint": one transformer over
   the concatenated tokens (modality embeddings tell them apart). Cross is the default: its
   cost grows with L_rgb * L_skel instead of (L_rgb + L_skel)^2, and each stream keeps its
   own parameters.
4. A learned query attends over all valid tokens of both streams (attention pooling) into one
   `width`-d embedding; dropout + linear classifier.

Masks follow `nn.MultiheadAttention.key_padding_mask`: True marks a token to ignore.
Masked tokens are zeroed before anything else, so their values (even NaN) cannot leak.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from microgesture.errors import ConfigError

RGB, SKEL = 0, 1


def _positions(table: torch.Tensor, length: int) -> torch.Tensor:
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


def _ffn(width: int, ratio: float, dropout: float) -> nn.Sequential:
    hidden = int(width * ratio)
    return nn.Sequential(nn.Linear(width, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, width),
                         nn.Dropout(dropout))


class _Attention(nn.Module):
    """Pre-norm attention sublayer returning only the residual update."""

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


class _Stream(nn.Module):
    """One modality's sublayers inside a cross layer."""

    def __init__(self, width: int, heads: int, dropout: float, mlp_ratio: float):
        super().__init__()
        self.self_attn = _Attention(width, heads, dropout, cross=False)
        self.cross_attn = _Attention(width, heads, dropout, cross=True)
        self.norm_ffn = nn.LayerNorm(width)
        self.ffn = _ffn(width, mlp_ratio, dropout)


class CrossLayer(nn.Module):
    def __init__(self, width: int, heads: int, dropout: float, mlp_ratio: float = 4.0):
        super().__init__()
        self.rgb = _Stream(width, heads, dropout, mlp_ratio)
        self.skel = _Stream(width, heads, dropout, mlp_ratio)

    def forward(self, r, s, r_pad, s_pad):
        r = r + self.rgb.self_attn(r, r_pad)
        s = s + self.skel.self_attn(s, s_pad)
        # Both directions read the same (pre-update) state: the exchange is symmetric.
        r, s = r + self.rgb.cross_attn(r, s_pad, s), s + self.skel.cross_attn(s, r_pad, r)
        r = r + self.rgb.ffn(self.rgb.norm_ffn(r))
        s = s + self.skel.ffn(self.skel.norm_ffn(s))
        return r, s


class JointLayer(nn.Module):
    def __init__(self, width: int, heads: int, dropout: float, mlp_ratio: float = 4.0):
        super().__init__()
        self.attn = _Attention(width, heads, dropout, cross=False)
        self.norm_ffn = nn.LayerNorm(width)
        self.ffn = _ffn(width, mlp_ratio, dropout)

    def forward(self, r, s, r_pad, s_pad):
        x, pad = torch.cat([r, s], 1), torch.cat([r_pad, s_pad], 1)
        x = x + self.attn(x, pad)
        x = x + self.ffn(self.norm_ffn(x))
        return x[:, : r.shape[1]], x[:, r.shape[1]:]


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


class CrossModalTokenFusion(nn.Module):
    """Fuse RGB tokens [N, L_rgb, rgb_dim] with skeleton tokens [N, T', V, skel_dim] or [N, L_s, skel_dim].

    `forward(rgb_tokens, skel_tokens, rgb_mask=None, skel_mask=None) -> logits`; either modality
    may be None. Masks are True where a token is padding: rgb_mask [N, L_rgb]; skel_mask
    [N, T', V], [N, T'] (whole frames) or [N, L_s]. With the defaults (width=256, depth=2,
    768-d RGB, 256-d skeleton, 32 classes) the module has 5.03M parameters (mode="joint": 2.40M).
    """

    def __init__(
        self,
        rgb_dim: int,
        skel_dim: int,
        num_classes: int,
        *,
        width: int = 256,
        depth: int = 2,
        heads: int = 4,
        dropout: float = 0.1,
        modality_dropout: float = 0.0,
        max_tokens: int = 512,
        max_joints: int = 64,
        mode: Literal["cross", "joint"] = "cross",
        rgb_pos: Literal["learned", "sinusoidal"] = "learned",
        mlp_ratio: float = 4.0,
    ):
        super().__init__()
        _check_config(width, heads, depth, modality_dropout, mode, rgb_pos)
        self.rgb_dim, self.skel_dim = rgb_dim, skel_dim
        self.num_classes, self.embed_dim = num_classes, width
        self.modality_dropout, self.mode, self.rgb_pos = modality_dropout, mode, rgb_pos
        self.max_joints = max_joints
        self.rgb_proj = nn.Sequential(nn.LayerNorm(rgb_dim), nn.Linear(rgb_dim, width))
        self.skel_proj = nn.Sequential(nn.LayerNorm(skel_dim), nn.Linear(skel_dim, width))
        self.modality = nn.Parameter(torch.zeros(2, width))
        self.null = nn.Parameter(torch.zeros(2, width))
        self.rgb_pos_table = nn.Parameter(torch.zeros(max_tokens, width)) if rgb_pos == "learned" else None
        self.time_pos = nn.Parameter(torch.zeros(max_tokens, width))
        self.joint_pos = nn.Parameter(torch.zeros(max_joints, width))
        layer = CrossLayer if mode == "cross" else JointLayer
        self.layers = nn.ModuleList(layer(width, heads, dropout, mlp_ratio) for _ in range(depth))
        self.attn_pool = AttentionPool(width, heads)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(width, num_classes))
        for p in (self.modality, self.null, self.rgb_pos_table, self.time_pos, self.joint_pos):
            if p is not None:
                nn.init.trunc_normal_(p, std=0.02)

    # -- inputs ---------------------------------------------------------------------------
    def _embed_rgb(self, tokens: torch.Tensor, pad: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        if tokens.dim() != 3 or tokens.shape[-1] != self.rgb_dim:
            raise ValueError(f"rgb_tokens must be [N, L, {self.rgb_dim}], got {list(tokens.shape)}")
        pad = _mask(pad, tokens.shape[:2], "rgb_mask", tokens.device)
        x = self.rgb_proj(torch.where(pad[..., None], 0.0, tokens))
        length = x.shape[1]
        pos = (_positions(self.rgb_pos_table, length) if self.rgb_pos_table is not None
               else sinusoidal(length, x.shape[-1], x.device))
        return x + pos + self.modality[RGB], pad

    def _embed_skel(self, tokens: torch.Tensor, pad: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        if tokens.dim() not in (3, 4) or tokens.shape[-1] != self.skel_dim:
            raise ValueError(
                f"skel_tokens must be [N, T', V, {self.skel_dim}] or [N, L, {self.skel_dim}], got {list(tokens.shape)}"
            )
        if tokens.dim() == 3:
            pad = _mask(pad, tokens.shape[:2], "skel_mask", tokens.device)
            pos = _positions(self.time_pos, tokens.shape[1])
        else:
            n, t, v, _ = tokens.shape
            if v > self.max_joints:
                raise ValueError(f"skel_tokens have {v} joints, more than max_joints={self.max_joints}")
            if pad is not None and pad.dim() == 2:  # whole frames padded
                pad = pad[:, :, None].expand(-1, -1, v)
            pad = _mask(pad, (n, t, v), "skel_mask", tokens.device).flatten(1)
            pos = (_positions(self.time_pos, t)[:, None] + self.joint_pos[:v][None]).flatten(0, 1)
            tokens = tokens.flatten(1, 2)
        x = self.skel_proj(torch.where(pad[..., None], 0.0, tokens))
        return x + pos + self.modality[SKEL], pad

    def _drop_modalities(self, r_pad: torch.Tensor, s_pad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per sample, with probability p hide one whole modality; only where both are present."""
        both = ~r_pad.all(1) & ~s_pad.all(1)
        drop = both & (torch.rand(both.shape, device=both.device) < self.modality_dropout)
        drop_rgb = torch.rand(both.shape, device=both.device) < 0.5
        r_pad = r_pad | (drop & drop_rgb)[:, None]
        s_pad = s_pad | (drop & ~drop_rgb)[:, None]
        return r_pad, s_pad

    def _with_null(self, x: torch.Tensor | None, pad: torch.Tensor | None, which: int, n: int):
        null = (self.null[which] + self.modality[which]).expand(n, 1, -1)
        if x is None:
            return null, torch.zeros(n, 1, dtype=torch.bool, device=null.device)
        no_pad = torch.zeros(n, 1, dtype=torch.bool, device=x.device)
        return torch.cat([null, x], 1), torch.cat([no_pad, pad], 1)

    # -- model API ------------------------------------------------------------------------
    def forward_features(self, rgb_tokens, skel_tokens, rgb_mask=None, skel_mask=None):
        """Fused tokens [N, 2 + L_rgb + L_skel, width] (null tokens first) and their padding mask."""
        if rgb_tokens is None and skel_tokens is None:
            raise ValueError("CMTF needs at least one modality; both rgb_tokens and skel_tokens are None")
        r = r_pad = s = s_pad = None
        if rgb_tokens is not None:
            r, r_pad = self._embed_rgb(rgb_tokens, rgb_mask)
        if skel_tokens is not None:
            s, s_pad = self._embed_skel(skel_tokens, skel_mask)
        if r is not None and s is not None:
            if r.shape[0] != s.shape[0]:
                raise ValueError(f"batch sizes differ: rgb {r.shape[0]}, skeleton {s.shape[0]}")
            if self.training and self.modality_dropout > 0:
                r_pad, s_pad = self._drop_modalities(r_pad, s_pad)
        n = (r if r is not None else s).shape[0]
        r, r_pad = self._with_null(r, r_pad, RGB, n)
        s, s_pad = self._with_null(s, s_pad, SKEL, n)
        for layer in self.layers:
            r, s = layer(r, s, r_pad, s_pad)
        return torch.cat([r, s], 1), torch.cat([r_pad, s_pad], 1)

    def pool(self, tokens: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.attn_pool(tokens, mask)

    def forward_head(self, tokens: torch.Tensor, mask: torch.Tensor | None = None,
                     pre_logits: bool = False) -> torch.Tensor:
        pooled = self.pool(tokens, mask)
        return pooled if pre_logits else self.head(pooled)

    def forward(self, rgb_tokens, skel_tokens, rgb_mask=None, skel_mask=None) -> torch.Tensor:
        tokens, mask = self.forward_features(rgb_tokens, skel_tokens, rgb_mask, skel_mask)
        return self.forward_head(tokens, mask)


def _mask(mask: torch.Tensor | None, shape, name: str, device) -> torch.Tensor:
    if mask is None:
        return torch.zeros(tuple(shape), dtype=torch.bool, device=device)
    if tuple(mask.shape) != tuple(shape):
        raise ValueError(f"{name} must have shape {list(shape)} (True = padding), got {list(mask.shape)}")
    return mask.to(device=device, dtype=torch.bool)


def _check_config(width, heads, depth, modality_dropout, mode, rgb_pos) -> None:
    if width % heads or width % 2:
        raise ConfigError(f"width ({width}) must be even and divisible by heads ({heads})")
    if depth < 0:
        raise ConfigError(f"depth must be >= 0, got {depth}")
    if not 0.0 <= modality_dropout <= 1.0:
        raise ConfigError(f"modality_dropout is a probability in [0, 1], got {modality_dropout}")
    if mode not in ("cross", "joint"):
        raise ConfigError(f"mode must be 'cross' or 'joint', got {mode!r}")
    if rgb_pos not in ("learned", "sinusoidal"):
        raise ConfigError(f"rgb_pos must be 'learned' or 'sinusoidal', got {rgb_pos!r}")


class ConcatFusion(nn.Module):
    """Baseline: layer-normalised pooled embeddings, concatenated -> MLP -> classes.

    A missing modality (None, or dropped in training with probability `modality_dropout`)
    is a zero vector, which after layer norm is the "average" embedding.
    """

    def __init__(self, rgb_dim: int, skel_dim: int, num_classes: int, *, hidden: int = 512,
                 dropout: float = 0.5, modality_dropout: float = 0.0):
        super().__init__()
        _check_config(2, 1, 0, modality_dropout, "cross", "learned")
        self.rgb_dim, self.skel_dim = rgb_dim, skel_dim
        self.num_classes, self.embed_dim, self.modality_dropout = num_classes, hidden, modality_dropout
        self.rgb_norm, self.skel_norm = nn.LayerNorm(rgb_dim), nn.LayerNorm(skel_dim)
        self.mlp = nn.Sequential(nn.Linear(rgb_dim + skel_dim, hidden), nn.GELU(), nn.Dropout(dropout))
        self.head = nn.Linear(hidden, num_classes)

    def _part(self, emb: torch.Tensor | None, norm: nn.LayerNorm, dim: int, n: int, name: str, device):
        if emb is None:
            return torch.zeros(n, dim, device=device)
        if emb.dim() != 2 or emb.shape != (n, dim):
            raise ValueError(f"{name} must be a pooled embedding [N, {dim}], got {list(emb.shape)}")
        return norm(emb)

    def forward_features(self, rgb_emb: torch.Tensor | None, skel_emb: torch.Tensor | None) -> torch.Tensor:
        if rgb_emb is None and skel_emb is None:
            raise ValueError("ConcatFusion needs at least one modality; both embeddings are None")
        ref = rgb_emb if rgb_emb is not None else skel_emb
        n = ref.shape[0]
        r = self._part(rgb_emb, self.rgb_norm, self.rgb_dim, n, "rgb_emb", ref.device)
        s = self._part(skel_emb, self.skel_norm, self.skel_dim, n, "skel_emb", ref.device)
        if self.training and self.modality_dropout > 0 and rgb_emb is not None and skel_emb is not None:
            drop = torch.rand(n, 1, device=r.device) < self.modality_dropout
            drop_rgb = torch.rand(n, 1, device=r.device) < 0.5
            r = torch.where(drop & drop_rgb, 0.0, r)
            s = torch.where(drop & ~drop_rgb, 0.0, s)
        return torch.cat([r, s], 1)

    def forward_head(self, features: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        hidden = self.mlp(features)
        return hidden if pre_logits else self.head(hidden)

    def forward(self, rgb_emb: torch.Tensor | None, skel_emb: torch.Tensor | None) -> torch.Tensor:
        return self.forward_head(self.forward_features(rgb_emb, skel_emb))
