"""Baseline fusion: layer-normalised pooled embeddings of named modalities, concatenated -> MLP.

A missing modality (None, or dropped in training with probability `modality_dropout`) is a zero
vector, which after layer norm is the "average" embedding.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from microgesture.errors import ConfigError
from microgesture.models.layers import drop_modalities


class ConcatFusion(nn.Module):
    """`forward({name: [N, dims[name]] or None}) -> [N, hidden]`."""

    def __init__(self, dims: Mapping[str, int], *, hidden: int = 512, dropout: float = 0.5,
                 modality_dropout: float = 0.0):
        super().__init__()
        if not dims:
            raise ConfigError("ConcatFusion needs at least one modality")
        if not 0.0 <= modality_dropout <= 1.0:
            raise ConfigError(f"modality_dropout is a probability in [0, 1], got {modality_dropout}")
        self.names, self.dims = list(dims), dict(dims)
        self.embed_dim, self.modality_dropout = hidden, modality_dropout
        self.norm = nn.ModuleDict({m: nn.LayerNorm(d) for m, d in dims.items()})
        self.mlp = nn.Sequential(nn.Linear(sum(dims.values()), hidden), nn.GELU(), nn.Dropout(dropout))

    def forward_features(self, embeddings: Mapping[str, torch.Tensor | None]) -> torch.Tensor:
        present = {m: e for m, e in embeddings.items() if e is not None}
        unknown = sorted(set(embeddings) - set(self.names))
        if unknown:
            raise ValueError(f"ConcatFusion was built for modalities {self.names}, got {unknown}")
        if not present:
            raise ValueError(f"ConcatFusion needs at least one modality; every one of {self.names} is missing")
        ref = next(iter(present.values()))
        n = ref.shape[0]
        parts = []
        for m in self.names:
            emb = present.get(m)
            if emb is None:
                parts.append(torch.zeros(n, self.dims[m], device=ref.device, dtype=ref.dtype))
                continue
            if emb.dim() != 2 or tuple(emb.shape) != (n, self.dims[m]):
                raise ValueError(f"{m} must be a pooled embedding [N, {self.dims[m]}], got {list(emb.shape)}")
            parts.append(self.norm[m](emb))
        if self.training and self.modality_dropout > 0 and len(present) > 1:
            mask = torch.tensor([m in present for m in self.names], device=ref.device).expand(n, -1)
            drop = drop_modalities(mask, self.modality_dropout)
            parts = [torch.where(drop[:, i, None], 0.0, p) for i, p in enumerate(parts)]
        return torch.cat(parts, 1)

    def forward(self, embeddings: Mapping[str, torch.Tensor | None]) -> torch.Tensor:
        return self.mlp(self.forward_features(embeddings))
