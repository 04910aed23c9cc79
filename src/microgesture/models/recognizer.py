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

Frames a modality lacks (a face clip's frames without a face) come as `{m}_missing` [N, T]
(True = missing) beside `{m}`; encoders, pooling and token fusions then ignore them.

Two options serve video-level tasks (emotion):
- `task_features={"emotion": "mg"}`: the emotion head also reads the MG head's class
  probabilities (detached: a feature, not a second path into the MG head); per video, their
  mean over the video's clips, i.e. the video's MG distribution.
- `video_pool` ("mean" or "attention", models/video_pool.py) with `video_tasks`: `forward(inputs,
  clip_pad=...)` takes bags of K clips per video ([B, K, ...] inputs, [B, K] pad mask); clip
  tasks give [B, K, outputs], video tasks pool the clip embeddings per video and give [B, outputs].
With either option every task has a head of its own (the encoders' classifiers are removed).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from microgesture.models.concat import ConcatFusion
from microgesture.models.layers import TaskHead
from microgesture.models.video_pool import VideoPool

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
        task_features: Mapping[str, str] | None = None,
        video_pool: str | None = None,
        video_tasks: Sequence[str] = (),
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
        self.task_features = _check_task_features(task_features, self.tasks)
        self.video_tasks = tuple(video_tasks)
        unknown = [t for t in self.video_tasks if t not in self.tasks]
        if unknown or (video_pool is None) != (not self.video_tasks):
            raise ValueError(f"video_tasks {list(video_tasks)} need a video_pool and must be among the tasks "
                             f"{list(self.tasks)}")
        first = next(iter(self.tasks))
        self.own_heads = (self.encoders is not None and not isinstance(fusion, nn.Module) and video_pool is None
                          and not self.task_features)
        if self.encoders is not None and not self.own_heads:
            for encoder in self.encoders.values():
                encoder.reset_classifier(0)  # every task has a head of its own
        embed = {"fused": fusion.embed_dim} if isinstance(fusion, nn.Module) else self.dims
        self.heads = nn.ModuleDict({
            task: TaskHead({**embed, **self._feature_dims(task)}, n, head_dropout) for task, n in self.tasks.items()
            if not (self.own_heads and task == first)
        })
        self.video_pool = VideoPool(embed, video_pool) if video_pool is not None else None

    def _feature_dims(self, task: str) -> dict[str, int]:
        source = self.task_features.get(task)
        return {} if source is None else {f"{source}_probs": self.tasks[source]}

    @property
    def _token_fusion(self) -> bool:
        """A fusion that reads tokens (CMTF, InterFusion), as opposed to pooled embeddings (concat, late, none)."""
        return isinstance(self.fusion, nn.Module) and not isinstance(self.fusion, ConcatFusion)

    @property
    def input_keys(self) -> tuple[str, ...]:
        """The batch keys this model reads (besides the optional `mask_keys`)."""
        if self.encoders is not None:
            return tuple(self.modalities)
        suffix = "tokens" if self._token_fusion else "embedding"
        return tuple(f"{m}_{suffix}" for m in self.modalities)

    @property
    def mask_keys(self) -> tuple[str, ...]:
        """Optional batch keys: `{m}_missing` [N, T], frames a modality lacks (True = missing)."""
        return tuple(f"{m}_missing" for m in self.modalities)

    def masks(self, inputs: Inputs) -> dict[str, torch.Tensor]:
        return {m: inputs[f"{m}_missing"].to(torch.bool) for m in self.modalities if f"{m}_missing" in inputs}

    def tokens(self, inputs: Inputs) -> dict[str, torch.Tensor]:
        """Each modality's tokens: from its encoder, or cached (`{m}_tokens`)."""
        if self.encoders is None:
            return {m: inputs[f"{m}_tokens"] for m in self.modalities}
        masks = self.masks(inputs)
        return {m: self.encoders[m].forward_features(inputs[m], *_mask_arg(masks, m)) for m in self.modalities}

    def embed(self, inputs: Inputs, tokens: dict[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
        """The named embeddings the heads read: {"fused": [N, D]} or {modality: [N, D_m]}."""
        masks = self.masks(inputs)
        if self._token_fusion:
            return {"fused": self.fusion(self.tokens(inputs) if tokens is None else tokens, masks)}
        if self.encoders is None:
            pooled = {m: inputs[f"{m}_embedding"] for m in self.modalities}
        else:
            tokens = self.tokens(inputs) if tokens is None else tokens
            pooled = {m: self.encoders[m].pool(t, *_mask_arg(masks, m)) for m, t in tokens.items()}
        return {"fused": self.fusion(pooled)} if isinstance(self.fusion, ConcatFusion) else pooled

    @property
    def embed_dims(self) -> dict[str, int]:
        """The widths of the embeddings `embed` returns, by name."""
        return {"fused": self.fusion.embed_dim} if isinstance(self.fusion, nn.Module) else dict(self.dims)

    def forward(self, inputs: Inputs, clip_pad: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """{task: logits [N, outputs]}; with `clip_pad` [B, K] (bags of clips per video), clip tasks give
        [B, K, outputs] and video tasks [B, outputs]."""
        if clip_pad is not None:
            return self._forward_video(inputs, clip_pad.to(torch.bool))
        return self.forward_and_embed(inputs, need_embedding=False)[0]

    def forward_and_embed(self, inputs: Inputs, need_embedding: bool = True
                          ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """({task: logits}, the named embeddings the heads saw), from one pass of the encoders."""
        out = {}
        embedding: dict[str, torch.Tensor] = {}
        if self.own_heads:
            tokens = self.tokens(inputs)
            masks = self.masks(inputs)
            first = next(iter(self.tasks))
            out[first] = torch.stack([self.encoders[m].forward_head(t, **_mask_kw(masks, m))
                                      for m, t in tokens.items()]).mean(0)
            if len(self.heads) or need_embedding:
                embedding = self.embed(inputs, tokens)
        else:
            embedding = self.embed(inputs)
        for task in self._head_order():
            out[task] = self.heads[task]({**embedding, **self._features(task, out)})
        return {task: out[task] for task in self.tasks}, embedding

    def _forward_video(self, inputs: Inputs, pad: torch.Tensor) -> dict[str, torch.Tensor]:
        if self.video_pool is None:
            raise ValueError("bags of clips (clip_pad) need a recognizer built with a video_pool")
        valid = ~pad
        flat = self.embed({k: v[valid] for k, v in inputs.items()})  # only the real clips are computed
        grid = {name: _scatter(e, valid) for name, e in flat.items()}
        videos = self.video_pool(grid, pad)
        out: dict[str, torch.Tensor] = {}
        for task in self._head_order():
            if task in self.video_tasks:
                out[task] = self.heads[task]({**videos, **self._features(task, out, valid)})
            else:
                out[task] = _scatter(self.heads[task]({**flat, **self._features(task, out)}), valid)
        return {task: out[task] for task in self.tasks}

    def _head_order(self) -> list[str]:
        """Tasks with heads, those reading another task's probabilities after it."""
        plain = [t for t in self.heads if t not in self.task_features]
        return plain + [t for t in self.heads if t in self.task_features]

    def _features(self, task: str, out: dict[str, torch.Tensor], valid: torch.Tensor | None = None):
        source = self.task_features.get(task)
        if source is None:
            return {}
        probs = torch.softmax(out[source].detach().float(), -1).to(out[source].dtype)
        if valid is not None:  # [B, K, C] per clip -> the video's class distribution
            keep = valid.to(probs.dtype)[..., None]
            probs = (probs * keep).sum(1) / keep.sum(1).clamp(min=1.0)
        return {f"{source}_probs": probs}

    def clip_weights(self, inputs: Inputs, clip_pad: torch.Tensor) -> dict[str, torch.Tensor]:
        """Each clip's share of its video's pooled embedding(s): {name: [B, K]}."""
        valid = ~clip_pad.to(torch.bool)
        flat = self.embed({k: v[valid] for k, v in inputs.items()})
        return self.video_pool.clip_weights({n: _scatter(e, valid) for n, e in flat.items()}, ~valid)

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


def _mask_arg(masks: dict[str, torch.Tensor], m: str) -> tuple[torch.Tensor, ...]:
    """The mask as an extra positional argument, only for modalities that have one (face encoders)."""
    return (masks[m],) if m in masks else ()


def _mask_kw(masks: dict[str, torch.Tensor], m: str) -> dict[str, torch.Tensor]:
    return {"mask": masks[m]} if m in masks else {}


def _scatter(values: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """[M, ...] rows of the valid slots back into a [B, K, ...] grid (zeros elsewhere)."""
    out = values.new_zeros(*valid.shape, *values.shape[1:])
    out[valid] = values
    return out


def _check_task_features(task_features: Mapping[str, str] | None, tasks: dict[str, int]) -> dict[str, str]:
    out = dict(task_features or {})
    for task, source in out.items():
        if task not in tasks or source not in tasks or task == source or source in out:
            raise ValueError(f"task_features {out}: each task reads one other task's probabilities, both among "
                             f"{list(tasks)}, without chains")
    return out
