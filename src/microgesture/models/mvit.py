"""MViTv2-S RGB encoder (torchvision) with a token / embedding / head interface.

The encoder holds torchvision's own submodules under their own names, so its state dict
uses torchvision's key names: a torchvision checkpoint (`mvit_v2_s-ae3be167.pth`) and a
checkpoint we saved ourselves load through the same filter.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import torch
from torch import nn
from torchvision.models.video import MViT_V2_S_Weights, mvit_v2_s

from microgesture.errors import ConfigError, DataError
from microgesture.models.base import KINETICS_MEAN, KINETICS_STD, InputSpec
from microgesture.models.weights import FilteredState, IncompatibleCheckpoint, LoadReport, load_weights

# The absolute position embedding of MViTv2-S fixes the input size.
INPUT_FRAMES = 16
INPUT_SIZE = 224
EMBED_DIM = 768
HEAD_KEYS = ("head.1.weight", "head.1.bias")
Freeze = Literal["none", "all", "partial"]


def normalize_clip(clip: torch.Tensor) -> torch.Tensor:
    """[N, 3, T, H, W] floats in [0, 1] -> Kinetics-normalised input for the encoder."""
    shape = (1, 3, 1, 1, 1)
    mean = torch.tensor(KINETICS_MEAN, dtype=clip.dtype, device=clip.device).view(shape)
    std = torch.tensor(KINETICS_STD, dtype=clip.dtype, device=clip.device).view(shape)
    return (clip - mean) / std


class MViTEncoder(nn.Module):
    """MViTv2-S over [N, 3, 16, 224, 224] Kinetics-normalised clips.

    `forward_features` returns the tokens after the last norm, class token first:
    [N, 1 + 8*7*7, 768] = [N, 393, 768]. The class token is kept because it is the
    embedding torchvision's head was trained on; `pool` returns it.
    """

    num_prefix_tokens = 1
    token_layout = "sequence"
    # The Kinetics-400 weights' input: x in [0, 1], then (x - mean) / std per channel.
    input_spec = InputSpec("video", channels=3, frames=INPUT_FRAMES, size=INPUT_SIZE, min_size=INPUT_SIZE,
                           mean=KINETICS_MEAN, std=KINETICS_STD)
    token_grid = (INPUT_FRAMES // 2, INPUT_SIZE // 32, INPUT_SIZE // 32)

    def __init__(self, num_classes: int, dropout: float = 0.5, drop_path: float = 0.2):
        super().__init__()
        tv = mvit_v2_s(num_classes=num_classes, dropout=dropout, stochastic_depth_prob=drop_path)
        self.conv_proj = tv.conv_proj
        self.pos_encoding = tv.pos_encoding
        self.blocks = tv.blocks
        self.norm = tv.norm
        # Not in-place (unlike torchvision): forward_head must not overwrite the caller's tokens.
        self.head = nn.Sequential(nn.Dropout(dropout), tv.head[1])
        self.num_classes = num_classes
        self.embed_dim = EMBED_DIM
        self.frozen: list[nn.Module] = []
        self.load_report: LoadReport | None = None

    def reset_classifier(self, num_classes: int) -> None:
        """A fresh head for `num_classes` (0: none, `forward` returns the embedding)."""
        self.num_classes = num_classes
        dropout = self.head[0].p if isinstance(self.head, nn.Sequential) else 0.5
        head = nn.Sequential(nn.Dropout(dropout), nn.Linear(EMBED_DIM, num_classes)) if num_classes > 0 else nn.Identity()
        self.head = head.to(self.norm.weight)

    def check_input(self, x: torch.Tensor) -> None:
        expected = (3, INPUT_FRAMES, INPUT_SIZE, INPUT_SIZE)
        if x.dim() != 5 or tuple(x.shape[1:]) != expected:
            raise ValueError(
                f"MViTv2-S expects clips of shape [N, 3, {INPUT_FRAMES}, {INPUT_SIZE}, {INPUT_SIZE}] "
                f"(N, channels, frames, height, width), got {list(x.shape)}; "
                "resample to 16 frames and resize/crop to 224x224"
            )

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        x = self.conv_proj(x).flatten(2).transpose(1, 2)
        x = self.pos_encoding(x)
        thw = (self.pos_encoding.temporal_size, *self.pos_encoding.spatial_size)
        for block in self.blocks:
            x, thw = block(x, thw)
        return self.norm(x)

    def pool(self, tokens: torch.Tensor) -> torch.Tensor:
        return tokens[:, 0]

    def forward_head(self, tokens: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        pooled = self.pool(tokens)
        return pooled if pre_logits else self.head(pooled)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def set_freeze(self, freeze: Freeze = "none", unfreeze_blocks: int = 2) -> None:
        """Freeze "none", "all" (only the head trains) or "partial" (+ last `unfreeze_blocks` blocks, norm)."""
        _check_freeze(freeze, unfreeze_blocks, len(self.blocks))
        trainable: list[nn.Module] = [self]
        if freeze != "none":
            first = len(self.blocks) - (unfreeze_blocks if freeze == "partial" else 0)
            trainable = [self.head, *list(self.blocks)[first:]] + ([self.norm] if freeze == "partial" else [])
        keep = {id(p) for m in trainable for p in m.parameters()}
        for p in self.parameters():
            p.requires_grad_(id(p) in keep)
        parts = (self.conv_proj, self.pos_encoding, *self.blocks, self.norm)
        self.frozen = [m for m in parts if not any(id(p) in keep for p in m.parameters())]
        self.train(self.training)

    def train(self, mode: bool = True) -> MViTEncoder:
        super().train(mode)
        # Frozen parts are a fixed feature extractor: keep stochastic depth off in them.
        for module in self.frozen:
            module.eval()
        return self


def _check_freeze(freeze: str, unfreeze_blocks: int, num_blocks: int) -> None:
    if freeze not in ("none", "all", "partial"):
        raise ConfigError(f"freeze must be 'none', 'all' or 'partial', got {freeze!r}")
    if not 0 <= unfreeze_blocks <= num_blocks:
        raise ConfigError(f"unfreeze_blocks must be in 0..{num_blocks}, got {unfreeze_blocks}")


def filter_torchvision_mvit(state: dict[str, torch.Tensor], model: MViTEncoder) -> FilteredState:
    """Check a torchvision-named MViTv2-S state dict against `model` (for `load_weights`).

    The backbone must match exactly, else `IncompatibleCheckpoint` listing the offending keys;
    the head passes through, and `load_weights` skips it when its class count differs.
    """
    target = model.state_dict()
    backbone = {k for k in target if k not in HEAD_KEYS}
    missing = sorted(backbone - set(state))
    unexpected = sorted(set(state) - set(target))
    wrong_shape = sorted(
        f"{k} {tuple(state[k].shape)} (expected {tuple(target[k].shape)})"
        for k in backbone & set(state)
        if state[k].shape != target[k].shape
    )
    if missing or unexpected or wrong_shape:
        problems = []
        for name, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong_shape)):
            if keys:
                more = f" (+{len(keys) - 5} more)" if len(keys) > 5 else ""
                problems.append(f"{name} {len(keys)}: {', '.join(keys[:5])}{more}")
        raise IncompatibleCheckpoint(
            "not a torchvision MViTv2-S checkpoint (expected keys like 'conv_proj.weight' "
            f"{tuple(target['conv_proj.weight'].shape)} and 'blocks.0..15.*'); " + "; ".join(problems)
        )
    return FilteredState(state)


def kinetics_checkpoint() -> Path:
    """The torch hub cache file of torchvision's KINETICS400_V1 weights, downloaded if absent."""
    url = MViT_V2_S_Weights.KINETICS400_V1.url
    cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(url).name
    if cached.is_file():
        return cached
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        # The file name carries the first hex digits of its SHA-256; the download checks them.
        hash_prefix = torch.hub.HASH_REGEX.search(cached.name).group(1)
        torch.hub.download_url_to_file(url, str(cached), hash_prefix=hash_prefix, progress=True)
    except Exception as exc:  # no network, proxy, hash mismatch, read-only cache ...
        raise DataError(
            url,
            f"could not download the Kinetics-400 weights ({type(exc).__name__}: {exc}). "
            f"Download {cached.name} elsewhere and pass it as weights=<path>, or place it at {cached}",
        ) from exc
    return cached


def build_mvit_v2_s(
    num_classes: int,
    *,
    weights: str | Path | None = None,
    kinetics: bool = False,
    freeze: Freeze = "none",
    unfreeze_blocks: int = 2,
    dropout: float = 0.5,
    drop_path: float = 0.2,
) -> MViTEncoder:
    """MViTv2-S encoder with a `num_classes` head (34.5M parameters with 400 classes).

    weights: a local torchvision-named checkpoint (e.g. mvit_v2_s-ae3be167.pth, or one saved
    from this encoder); kinetics: fetch torchvision's KINETICS400_V1 weights through the torch
    hub cache instead. The head is kept when its size matches `num_classes`, else re-initialised;
    `model.load_report` says which. freeze: "all" trains only the head, "partial" the last
    `unfreeze_blocks` blocks + final norm + head.
    """
    if num_classes < 1:
        raise ConfigError(f"num_classes must be positive, got {num_classes}")
    if weights is not None and kinetics:
        raise ConfigError("give either weights=<path> or kinetics=True, not both")
    _check_freeze(freeze, unfreeze_blocks, 16)
    path = kinetics_checkpoint() if kinetics else None if weights is None else Path(weights)
    if path is not None and not path.is_file():  # fail before the slow model construction
        raise DataError(path, "checkpoint file not found")
    model = MViTEncoder(num_classes, dropout=dropout, drop_path=drop_path)
    if path is not None:
        model.load_report = load_weights(model, path, filter_torchvision_mvit, head="head.")
    model.set_freeze(freeze, unfreeze_blocks)
    return model
