"""SwinFace face encoder: the published Swin-T for 112x112 faces, its embedding and expression head.

SwinFace (Qian et al., "SwinFace: A Multi-task Transformer for Face Recognition, Expression
Recognition, Age Estimation and Attribute Estimation", arXiv 2308.11509) is one Swin-T backbone
(patch 2, window 7, depths 2-2-6-2, 96 channels doubling per stage: 56, 28, 14, 7 tokens a side)
over (x / 255 - 0.5) / 0.5 normalised 112x112 RGB faces, with

- a 512-d recognition embedding: the final tokens, layer-normalised and averaged, through
  Linear-BN-Linear-BN (`backbone.feature`);
- task branches over the concatenated multi-scale maps (three stages average-pooled to 7x7 plus
  the last stage, 2112 channels): per task a split 3x3 conv to 512 channels, a CBAM channel gate,
  ReLU, global max pooling and BN (the "FAM"), then two Linear-ReLU-Dropout layers (the "TSS")
  and a linear output (the "OM"). Only the expression branch (7 RAF-DB classes, in RAF-DB's
  order: surprise, fear, disgust, happiness, sadness, anger, neutral) is kept here.

The backbone uses the original key names (`patch_embed.proj`, `layers.{i}.blocks.{j}.attn.qkv`,
`layers.{i}.downsample.reduction`, `norm`, `feature.{0..3}` ...), so the official checkpoint, a
dict of four state dicts (`state_dict_backbone`, `state_dict_fam`, `state_dict_tss`,
`state_dict_om`), maps onto it by `checkpoint_filter_fn` (expression branch: FAM/TSS branch 2 and
output layer 3 of the original) and loads with a `LoadReport` (`build_swinface(weights=...)`).

As an encoder of face clips [N, 3, T, 112, 112] it works frame by frame: tokens are the
per-frame 512-d vectors [N, T, 512] (token_layout "sequence"; `tokens="expression"` gives the
expression branch's 512-d features instead of the recognition embedding), and `pool` is their
mean over the frames that have a face. Frames marked missing ([N, T] bool, True = no face) are
never run through the network: their tokens are zero and pooling and fusion ignore them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from microgesture.errors import ConfigError
from microgesture.models.base import FrameEncoderHead, InputSpec
from microgesture.models.weights import FilteredState, IncompatibleCheckpoint, LoadReport, load_weights

FACE_SIZE = 112
FACE_MEAN: tuple[float, float, float] = (0.5, 0.5, 0.5)
FACE_STD: tuple[float, float, float] = (0.5, 0.5, 0.5)
EXPRESSIONS = ("surprise", "fear", "disgust", "happiness", "sadness", "anger", "neutral")
EXPRESSION_TASK = 2  # the expression branch's index among the original's 11 FAM/TSS branches
EXPRESSION_OUTPUT = 3  # and the index of its output layer among the 42 of the OM
PUBLISHED_SPLIT = (47, 93, 186, 186)  # the original's split conv widths for 2112 -> 512 channels
Freeze = Literal["none", "all", "partial"]
Tokens = Literal["embedding", "expression"]


def _relative_index(window: int) -> torch.Tensor:
    """[w*w, w*w]: the index of each (query, key) offset in the relative position bias table."""
    ys, xs = torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij")
    coords = torch.stack([ys.flatten(), xs.flatten()])
    rel = coords[:, :, None] - coords[:, None, :] + (window - 1)
    return rel[0] * (2 * window - 1) + rel[1]


def _shift_mask(size: int, window: int, shift: int) -> torch.Tensor:
    """[windows, w*w, w*w] additive mask: -100 between tokens from different regions after the roll."""
    labels = torch.zeros(size, size)
    bands = (slice(0, -window), slice(-window, -shift), slice(-shift, None))
    for i, rows in enumerate(bands):
        for j, cols in enumerate(bands):
            labels[rows, cols] = 3 * i + j
    windows = _partition(labels[None, :, :, None], window)[..., 0]
    diff = windows[:, None, :] - windows[:, :, None]
    return torch.where(diff != 0, -100.0, 0.0)


def _partition(x: torch.Tensor, window: int) -> torch.Tensor:
    """[B, H, W, C] -> [B * windows, w*w, C], windows in row-major order per image."""
    b, h, w, c = x.shape
    x = x.view(b, h // window, window, w // window, window, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, window * window, c)


def _merge(windows: torch.Tensor, window: int, size: int) -> torch.Tensor:
    """The inverse of `_partition` for square maps of side `size`."""
    n = size // window
    c = windows.shape[-1]
    x = windows.view(-1, n, n, window, window, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, size, size, c)


class WindowAttention(nn.Module):
    """Multi-head self-attention inside windows, with a learned relative position bias."""

    def __init__(self, dim: int, window: int, heads: int):
        super().__init__()
        self.heads, self.window = heads, window
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * window - 1) ** 2, heads))
        self.register_buffer("relative_position_index", _relative_index(window))
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        b, n, c = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4).unbind(0)
        bias = self.relative_position_bias_table[self.relative_position_index.flatten()]
        bias = bias.view(n, n, self.heads).permute(2, 0, 1)  # [heads, n, n]
        if mask is not None:  # windows of one image are consecutive: broadcast the mask per image
            w = mask.shape[0]
            q, k, v = (t.view(b // w, w, self.heads, n, -1) for t in (q, k, v))
            bias = bias[None] + mask[:, None]
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias.to(q.dtype))
        return self.proj(out.reshape(b, self.heads, n, -1).transpose(1, 2).reshape(b, n, c))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class SwinBlock(nn.Module):
    """Pre-norm (shifted) window attention + MLP on a square map of side `size`."""

    def __init__(self, dim: int, size: int, heads: int, window: int, shift: int, mlp_ratio: float = 4.0):
        super().__init__()
        if size <= window:  # one window covers the map: nothing to shift (as in the original)
            window, shift = size, 0
        self.size, self.window, self.shift = size, window, shift
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, window, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        mask = _shift_mask(size, window, shift) if shift else None
        self.register_buffer("attn_mask", mask, persistent=False)  # derived from the geometry, never loaded

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        y = self.norm1(x).view(b, self.size, self.size, c)
        if self.shift:
            y = torch.roll(y, (-self.shift, -self.shift), dims=(1, 2))
        y = _merge(self.attn(_partition(y, self.window), self.attn_mask), self.window, self.size)
        if self.shift:
            y = torch.roll(y, (self.shift, self.shift), dims=(1, 2))
        x = x + y.reshape(b, n, c)
        return x + self.mlp(self.norm2(x))


class PatchMerging(nn.Module):
    """2x2 neighbours concatenated (4C), normalised, projected to 2C."""

    def __init__(self, dim: int, size: int):
        super().__init__()
        self.size = size
        self.norm = nn.LayerNorm(4 * dim)
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, c = x.shape
        x = x.view(b, self.size, self.size, c)
        x = torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], -1)
        return self.reduction(self.norm(x.reshape(b, -1, 4 * c)))


class Stage(nn.Module):
    def __init__(self, dim: int, size: int, depth: int, heads: int, window: int, downsample: bool):
        super().__init__()
        self.blocks = nn.ModuleList(
            SwinBlock(dim, size, heads, window, 0 if i % 2 == 0 else window // 2) for i in range(depth))
        self.downsample = PatchMerging(dim, size) if downsample else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return x if self.downsample is None else self.downsample(x)


class PatchEmbed(nn.Module):
    def __init__(self, patch: int, dim: int):
        super().__init__()
        self.proj = nn.Conv2d(3, dim, patch, patch)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.proj(x).flatten(2).transpose(1, 2))


class SwinFaceBackbone(nn.Module):
    """Swin-T over [B, 3, S, S] faces -> (multi-scale maps [B, 2112, 7, 7], embedding [B, 512])."""

    def __init__(self, img_size: int = FACE_SIZE, patch: int = 2, dim: int = 96, depths: Sequence[int] = (2, 2, 6, 2),
                 heads: Sequence[int] = (3, 6, 12, 24), window: int = 7, embedding_dim: int = 512):
        super().__init__()
        self.img_size = img_size
        size = img_size // patch
        self.patch_embed = PatchEmbed(patch, dim)
        self.layers = nn.ModuleList()
        for i, (depth, h) in enumerate(zip(depths, heads)):
            last = i == len(depths) - 1
            self.layers.append(Stage(dim * 2**i, size // 2**i, depth, h, window, downsample=not last))
        self.num_features = dim * 2 ** (len(depths) - 1)
        self.final_size = size // 2 ** (len(depths) - 1)
        self.map_channels = (*(dim * 2 ** (i + 1) for i in range(len(depths) - 1)), self.num_features)
        self.norm = nn.LayerNorm(self.num_features)
        width = self.num_features
        self.feature = nn.Sequential(nn.Linear(width, width, bias=False), nn.BatchNorm1d(width, eps=2e-5),
                                     nn.Linear(width, embedding_dim, bias=False),
                                     nn.BatchNorm1d(embedding_dim, eps=2e-5))
        self.apply(_init)

    def forward(self, x: torch.Tensor, maps: bool = True) -> tuple[torch.Tensor | None, torch.Tensor]:
        x = self.patch_embed(x)
        local = []
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if maps and i < len(self.layers) - 1:  # every stage but the last, pooled to the final grid
                local.append(self._grid(x))
        fmap = torch.cat([*local, self._grid(x)], 1) if maps else None
        return fmap, self.feature(self.norm(x).mean(1))

    def _grid(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        side = int(round(n ** 0.5))
        x = x.transpose(1, 2).reshape(b, c, side, side)
        k = side // self.final_size
        return x if k == 1 else F.avg_pool2d(x, k)


class SplitConv(nn.Module):
    """Separate 3x3 convolutions over consecutive channel groups, concatenated."""

    def __init__(self, inputs: Sequence[int], outputs: Sequence[int]):
        super().__init__()
        self.inputs = list(inputs)
        self.convs = nn.ModuleList(nn.Conv2d(i, o, 3, padding=1, bias=False) for i, o in zip(inputs, outputs))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([conv(part) for conv, part in zip(self.convs, x.split(self.inputs, 1))], 1)


class ChannelGate(nn.Module):
    """CBAM's channel attention: one MLP over average- and max-pooled channels, summed, sigmoid."""

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        self.mlp = nn.Sequential(nn.Flatten(), nn.Linear(channels, channels // reduction), nn.ReLU(),
                                 nn.Linear(channels // reduction, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = self.mlp(x.mean((2, 3))) + self.mlp(x.amax((2, 3)))
        return x * torch.sigmoid(gate)[:, :, None, None]


class FeatureAttention(nn.Module):
    """One task's FAM branch: split conv -> channel gate -> ReLU -> global max -> BN: [B, C, 7, 7] -> [B, 512]."""

    def __init__(self, inputs: Sequence[int], dim: int = 512):
        super().__init__()
        self.conv = SplitConv(inputs, _split_widths(inputs, dim))
        self.channel_attention = ChannelGate(dim)
        self.norm = nn.BatchNorm1d(dim, eps=2e-5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(F.relu(self.channel_attention(self.conv(x))).amax((2, 3)))


class TaskSubnet(nn.Module):
    def __init__(self, dim: int = 512, dropout: float = 0.5):
        super().__init__()
        self.feature = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Dropout(dropout),
                                     nn.Linear(dim, dim), nn.ReLU(), nn.Dropout(dropout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.feature(x)


class ExpressionBranch(nn.Module):
    """FAM branch -> TSS branch (512-d features) -> 7 expression logits."""

    def __init__(self, map_channels: Sequence[int], dim: int = 512):
        super().__init__()
        self.fam = FeatureAttention(map_channels, dim)
        self.tss = TaskSubnet(dim)
        self.fc = nn.Linear(dim, len(EXPRESSIONS))

    def features(self, maps: torch.Tensor) -> torch.Tensor:
        return self.tss(self.fam(maps))


def _split_widths(inputs: Sequence[int], dim: int) -> tuple[int, ...]:
    if tuple(inputs) == (192, 384, 768, 768) and dim == 512:
        return PUBLISHED_SPLIT
    widths = [max(1, round(dim * i / sum(inputs))) for i in inputs[:-1]]
    return (*widths, dim - sum(widths))


def _init(m: nn.Module) -> None:
    if isinstance(m, nn.Linear):
        nn.init.trunc_normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.LayerNorm):
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)


class SwinFaceEncoder(FrameEncoderHead, nn.Module):
    """Face clips [N, 3, T, 112, 112] -> per-frame tokens [N, T, 512] -> masked mean -> head."""

    num_prefix_tokens = 0
    token_layout = "sequence"
    input_spec = InputSpec("video", channels=3, size=FACE_SIZE, min_size=FACE_SIZE, mean=FACE_MEAN, std=FACE_STD)

    def __init__(self, num_classes: int, *, dim: int = 96, depths: Sequence[int] = (2, 2, 6, 2),
                 heads: Sequence[int] = (3, 6, 12, 24), window: int = 7, embedding_dim: int = 512,
                 expression: bool = True, tokens: Tokens = "embedding", dropout: float = 0.0):
        super().__init__()
        if tokens == "expression" and not expression:
            raise ConfigError("tokens='expression' needs the expression branch (expression=True)")
        self.backbone = SwinFaceBackbone(FACE_SIZE, 2, dim, depths, heads, window, embedding_dim)
        self.expression = ExpressionBranch(self.backbone.map_channels, embedding_dim) if expression else None
        if self.expression is not None:
            self.expression.apply(_init)
        self.tokens = tokens
        self.embed_dim = embedding_dim
        self.dropout = dropout
        self.num_classes = num_classes
        self.head = self._make_head(num_classes)
        self.frozen: list[nn.Module] = []
        self.load_report: LoadReport | None = None

    # -- per frame ------------------------------------------------------------------------
    def frame_features(self, faces: torch.Tensor) -> torch.Tensor:
        """[B, 3, 112, 112] normalised faces -> [B, 512] (the recognition embedding or expression features)."""
        if faces.shape[0] == 1 and self.training:  # BatchNorm cannot train on one sample: pair it with itself
            return self.frame_features(faces.expand(2, -1, -1, -1))[:1]
        maps, embedding = self.backbone(faces, maps=self.tokens == "expression")
        return embedding if self.tokens == "embedding" else self.expression.features(maps)

    def _check(self, x: torch.Tensor, missing: torch.Tensor | None) -> None:
        if x.dim() != 5 or tuple(x.shape[1:2]) + tuple(x.shape[3:]) != (3, FACE_SIZE, FACE_SIZE):
            raise ValueError(f"SwinFace expects face clips [N, 3, T, {FACE_SIZE}, {FACE_SIZE}], got {list(x.shape)}")
        if missing is not None and tuple(missing.shape) != (x.shape[0], x.shape[2]):
            raise ValueError(f"face_missing must be [N, T] = {[x.shape[0], x.shape[2]]}, got {list(missing.shape)}")

    def _per_frame(self, x: torch.Tensor, missing: torch.Tensor | None, fn, width: int) -> torch.Tensor:
        self._check(x, missing)
        n, _, t = x.shape[:3]
        frames = x.transpose(1, 2).reshape(n * t, 3, FACE_SIZE, FACE_SIZE)
        if missing is None:
            return fn(frames).view(n, t, -1)
        keep = ~missing.reshape(-1).to(torch.bool)
        out = frames.new_zeros(n * t, width)
        if keep.any():
            out[keep] = fn(frames[keep]).to(out.dtype)
        return out.view(n, t, width)

    # -- encoder API (pooling and head: FrameEncoderHead) ---------------------------------------
    def forward_features(self, x: torch.Tensor, missing: torch.Tensor | None = None) -> torch.Tensor:
        """Tokens [N, T, 512]: one per frame; frames marked `missing` [N, T] are zeros (never computed)."""
        return self._per_frame(x, missing, self.frame_features, self.embed_dim)

    def expression_logits(self, x: torch.Tensor, missing: torch.Tensor | None = None) -> torch.Tensor:
        """The original's expression head per frame: [N, T, 7] logits in `EXPRESSIONS` order (0 where missing)."""
        if self.expression is None:
            raise ConfigError("this SwinFace encoder was built without its expression branch")

        def logits(faces: torch.Tensor) -> torch.Tensor:
            return self.expression.fc(self.expression.features(self.backbone(faces)[0]))

        return self._per_frame(x, missing, logits, len(EXPRESSIONS))

    # -- fine-tuning ------------------------------------------------------------------------
    def set_freeze(self, freeze: Freeze = "none", unfreeze_stages: int = 1) -> None:
        """"none": everything trains; "all": only the head; "partial": the head, the last
        `unfreeze_stages` Swin stages, the final norm, the embedding layers and the expression branch.
        Frozen parts stay in eval mode (their BatchNorm statistics are kept)."""
        _check_freeze(freeze, unfreeze_stages, len(self.backbone.layers))
        b = self.backbone
        trainable: list[nn.Module] = [self]
        if freeze != "none":
            trainable = [self.head]
        if freeze == "partial":
            first = len(b.layers) - unfreeze_stages
            trainable += [*list(b.layers)[first:], b.norm, b.feature] + ([self.expression] if self.expression else [])
        keep = {id(p) for m in trainable for p in m.parameters()}
        for p in self.parameters():
            p.requires_grad_(id(p) in keep)
        parts = [b.patch_embed, *b.layers, b.norm, b.feature, *([self.expression] if self.expression else [])]
        self.frozen = [m for m in parts if not any(id(p) in keep for p in m.parameters())]
        self.train(self.training)

    def train(self, mode: bool = True) -> SwinFaceEncoder:
        super().train(mode)
        for module in self.frozen:
            module.eval()
        return self


def _check_freeze(freeze: str, unfreeze_stages: int, stages: int) -> None:
    if freeze not in ("none", "all", "partial"):
        raise ConfigError(f"freeze must be 'none', 'all' or 'partial', got {freeze!r}")
    if not 0 <= unfreeze_stages <= stages:
        raise ConfigError(f"unfreeze_stages must be in 0..{stages}, got {unfreeze_stages}")


# -- the official checkpoint ---------------------------------------------------------------
_OWN_MARK = "backbone.patch_embed.proj.weight"
_PARTS = {"state_dict_backbone.": "backbone.", "state_dict_fam.": "fam.", "state_dict_tss.": "tss.",
          "state_dict_om.": "om."}


def checkpoint_filter_fn(state_dict: dict[str, torch.Tensor], model: SwinFaceEncoder) -> FilteredState:
    """Rename a SwinFace checkpoint onto `model`: the official four-part one (flattened by the loader to
    `state_dict_backbone.*`, `state_dict_fam.*` ...), a backbone alone (`patch_embed.*`, `layers.*`),
    or one of ours (any prefix). Parts the encoder does not have are dropped, with a note."""
    own = next((k[: -len(_OWN_MARK)] for k in state_dict
                if k.endswith(_OWN_MARK) and (k == _OWN_MARK or k[-len(_OWN_MARK) - 1] == ".")), None)
    if own is not None:
        return FilteredState({k[len(own):]: v for k, v in state_dict.items() if k.startswith(own)})
    state = {}
    for key, value in state_dict.items():
        part = next((p for p in _PARTS if key.startswith(p)), None)
        state[_PARTS[part] + key[len(part):] if part else "backbone." + key] = value
    if "backbone.patch_embed.proj.weight" not in state:
        return FilteredState(state_dict)  # not SwinFace: the loader reports that nothing matches
    _check_patch(state["backbone.patch_embed.proj.weight"], model)
    out, notes = FilteredState(), []
    dropped = {"head": 0, "mask": 0, "tasks": 0}
    for key, value in state.items():
        target = _target(key, model)
        if target is None:
            dropped["mask" if key.endswith("attn_mask") else "head" if key.startswith("backbone.head.")
                    else "tasks"] += 1
            continue
        out[target] = value
    if dropped["head"]:
        notes.append("backbone.head (768 -> 512) is not used by SwinFace's forward: not loaded")
    if dropped["mask"]:
        notes.append(f"{dropped['mask']} shifted-window attention masks are recomputed from the geometry, not loaded")
    if dropped["tasks"]:
        kept = "the expression branch" if model.expression is not None else "no task branch (expression=False)"
        notes.append(f"{dropped['tasks']} entries of the other task branches (age, gender, attributes ...) "
                     f"are not part of this encoder, which keeps {kept}: not loaded")
    out.notes = notes
    return out


def _target(key: str, model: SwinFaceEncoder) -> str | None:
    if key.startswith("backbone."):
        return None if key.startswith("backbone.head.") or key.endswith("attn_mask") else key
    if model.expression is None:
        return None
    for prefix, new in ((f"fam.nets.{EXPRESSION_TASK}.", "expression.fam."),
                        (f"tss.nets.{EXPRESSION_TASK}.", "expression.tss."),
                        (f"om.output_fcs.{EXPRESSION_OUTPUT}.", "expression.fc.")):
        if key.startswith(prefix):
            return new + key[len(prefix):]
    return None


def _check_patch(weight: torch.Tensor, model: SwinFaceEncoder) -> None:
    expected = tuple(model.backbone.patch_embed.proj.weight.shape)
    if tuple(weight.shape) != expected:
        raise IncompatibleCheckpoint(
            f"patch_embed.proj.weight has shape {tuple(weight.shape)}, SwinFace's is {expected} "
            "(96 channels, 2x2 patches for 112x112 faces): this is another Swin variant")


def build_swinface(
    num_classes: int,
    *,
    weights: str | Path | None = None,
    freeze: Freeze = "none",
    unfreeze_stages: int = 1,
    tokens: Tokens = "embedding",
    expression: bool = True,
    dropout: float = 0.0,
) -> SwinFaceEncoder:
    """The published SwinFace (Swin-T, 112x112, patch 2, window 7; 28.9M backbone parameters).

    weights: an official SwinFace checkpoint (the four-part dict), a backbone state dict, or one
    saved from this encoder; `model.load_report` says what was loaded. freeze: "all" trains only
    the head, "partial" also the last `unfreeze_stages` stages and the embedding/expression layers.
    tokens: "embedding" (the 512-d recognition embedding per frame) or "expression" (the
    expression branch's 512-d features per frame).
    """
    if num_classes < 0:
        raise ConfigError(f"num_classes must be >= 0, got {num_classes}")
    if tokens not in ("embedding", "expression"):
        raise ConfigError(f"tokens must be 'embedding' or 'expression', got {tokens!r}")
    _check_freeze(freeze, unfreeze_stages, 4)
    model = SwinFaceEncoder(num_classes, expression=expression or tokens == "expression", tokens=tokens,
                            dropout=dropout)
    if weights is not None:
        model.load_report = load_weights(model, weights, checkpoint_filter_fn, head="head.")
    model.set_freeze(freeze, unfreeze_stages)
    return model
