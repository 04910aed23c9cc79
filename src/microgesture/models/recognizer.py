"""The network a config names: encoders by modality, an optional fusion, a head per task.

    inputs {modality: clip tensor}  --encoders-->  tokens  --fusion-->  embedding  --heads-->  {task: logits}

- One encoder, no fusion: the encoder's own classifier serves the first task (timm's
  `forward_head`), so a single stream is exactly that encoder.
- Several encoders, `fusion="late"`: the first task averages the encoders' own logits.
- A token fusion (CMTF, concatenation): one head per task on the fused embedding.
- Without encoders (`encoders=None`) the model reads what `microgesture extract` cached:
  `{m}_tokens` for CMTF, `{m}_embedding` for concatenation and late fusion.
Every task after the first (e.g. the video's emotion beside the MG class) gets a head of its own
over the same embedding(s). `embed` returns the named embeddings the heads see (for losses on
the embedding, such as the orthogonal semantic embedding loss).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from microgesture.models.concat import ConcatFusion
from microgesture.models.layers import TaskHead

Inputs = Mapping[str, torch.Tensor]


class Recognizer(nn.Module):
    def __init__(
        self,
        tasks: Mapping[str, int],
        *,
        encoders: Mapping[str, nn.Module] | None = None,
        fusion: nn.Module | None = None,
        dims: Mapping[str, int] | None = None,
        head_dropout: float = 0.0,
    ):
        """`tasks`: {name: outputs} in order; `dims`: token widths per modality (needed without encoders)."""
        super().__init__()
        if not tasks:
            raise ValueError("a recognizer needs at least one task")
        self.tasks = dict(tasks)
        self.encoders = nn.ModuleDict(encoders) if encoders is not None else None
        self.fusion = fusion
        self.dims = dict(dims) if dims is not None else {m: e.embed_dim for m, e in (encoders or {}).items()}
        self.modalities = list(self.dims)
        if not self.modalities:
            raise ValueError("a recognizer needs encoders, or the token widths (dims) of cached modalities")
        if self.encoders is not None and len(self.encoders) > 1 and fusion is None:
            raise ValueError("several encoders need a fusion: a token fusion module, or 'late'")
        self.own_heads = self.encoders is not None and not isinstance(fusion, nn.Module)
        first = next(iter(self.tasks))
        embed = {"fused": fusion.embed_dim} if isinstance(fusion, nn.Module) else self.dims
        self.heads = nn.ModuleDict({
            task: TaskHead(embed, n, head_dropout) for task, n in self.tasks.items()
            if not (self.own_heads and task == first)
        })

    @property
    def _token_fusion(self) -> bool:
        """A fusion that reads tokens (CMTF), as opposed to pooled embeddings (concat, late, none)."""
        return isinstance(self.fusion, nn.Module) and not isinstance(self.fusion, ConcatFusion)

    @property
    def input_keys(self) -> tuple[str, ...]:
        """The batch keys this model reads."""
        if self.encoders is not None:
            return tuple(self.modalities)
        suffix = "tokens" if self._token_fusion else "embedding"
        return tuple(f"{m}_{suffix}" for m in self.modalities)

    def tokens(self, inputs: Inputs) -> dict[str, torch.Tensor]:
        """Each modality's tokens: from its encoder, or cached (`{m}_tokens`)."""
        if self.encoders is None:
            return {m: inputs[f"{m}_tokens"] for m in self.modalities}
        return {m: self.encoders[m].forward_features(inputs[m]) for m in self.modalities}

    def embed(self, inputs: Inputs, tokens: dict[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
        """The named embeddings the heads read: {"fused": [N, D]} or {modality: [N, D_m]}."""
        if self._token_fusion:
            return {"fused": self.fusion(self.tokens(inputs) if tokens is None else tokens)}
        if self.encoders is None:
            pooled = {m: inputs[f"{m}_embedding"] for m in self.modalities}
        else:
            tokens = self.tokens(inputs) if tokens is None else tokens
            pooled = {m: self.encoders[m].pool(t) for m, t in tokens.items()}
        return {"fused": self.fusion(pooled)} if isinstance(self.fusion, ConcatFusion) else pooled

    @property
    def embed_dims(self) -> dict[str, int]:
        """The widths of the embeddings `embed` returns, by name."""
        return {"fused": self.fusion.embed_dim} if isinstance(self.fusion, nn.Module) else dict(self.dims)

    def forward_and_embed(self, inputs: Inputs) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """({task: logits}, the named embeddings the heads saw), from one pass of the encoders."""
        tokens = self.tokens(inputs) if self.encoders is not None and not self._token_fusion else None
        embedding = self.embed(inputs, tokens)
        out = {}
        if self.own_heads:
            first = next(iter(self.tasks))
            out[first] = torch.stack([self.encoders[m].forward_head(t) for m, t in tokens.items()]).mean(0)
        out.update({task: head(embedding) for task, head in self.heads.items()})
        return {task: out[task] for task in self.tasks}, embedding

    def forward(self, inputs: Inputs) -> dict[str, torch.Tensor]:
        """{task: logits [N, outputs]}."""
        out = {}
        tokens = self.tokens(inputs) if self.own_heads else None
        first = next(iter(self.tasks))
        if self.own_heads:
            out[first] = torch.stack([self.encoders[m].forward_head(t) for m, t in tokens.items()]).mean(0)
        if len(self.heads):
            embedding = self.embed(inputs, tokens)
            out.update({task: head(embedding) for task, head in self.heads.items()})
        return {task: out[task] for task in self.tasks}

    def attach_encoders(self, encoders: Mapping[str, nn.Module]) -> None:
        """Give a model trained on cached tokens its encoders, so it reads raw clips (heads unchanged)."""
        if self.encoders is not None:
            raise ValueError("this recognizer already has encoders")
        if set(encoders) != set(self.modalities):
            raise ValueError(f"encoders for {sorted(encoders)}, the model reads {sorted(self.modalities)}")
        for encoder in encoders.values():
            encoder.reset_classifier(0)
        ref = next(self.parameters(), None)
        self.encoders = nn.ModuleDict({m: encoders[m] for m in self.modalities}).train(self.training)
        if ref is not None:
            self.encoders.to(ref.device)
