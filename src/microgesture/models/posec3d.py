"""SlowOnly 3D ResNet over pseudo-heatmap volumes, as in PoseC3D ("Revisiting Skeleton-based
Action Recognition", arXiv 2104.13586), with the encoder interface of models/base.py.

Input x: [N, K, T, H, W], K heatmap channels (joints and/or limbs, data/transforms/heatmap.py).
The network is PoseC3D's SlowOnly-R50: a 1x7x7 stem convolution (stride 1) with batch norm and
ReLU, a 1x3x3 max pool (stride 1), then three stages of bottleneck blocks (4, 6, 3 blocks; widths
`base_channels` x 1, 2, 4, expanded 4x), each halving H and W; the last halves T; the first
convolution of every block in stages 2 and 3 is temporal (3x1x1). At 48x56x56 and base 32 the
feature map is 512 x 24 x 7 x 7, and `forward_features` returns it as 1176 time-major tokens
[N, T'*H'*W', 512] ("sequence" layout, no class token); `pool` averages them, the head is dropout
and a linear layer, as PoseC3D's I3D head.

Speed and memory on CPUs (see docs/heatmaps.md): the convolutions run channels-last (oneDNN's
fast path), the stride-1 max pool keeps no index tensor for backward (it recomputes it, see
`MaxPoolRecompute`), and `recompute_stem=True` recomputes the stem and each block of the first
stage (the high-resolution part) in the backward pass instead of storing their activations. Train with bf16 autocast
(`trainer.precision: bf16-mixed`) where the CPU has AMX or the GPU has bf16.

Weights: `build_posec3d(weights=...)` loads our own checkpoints and PYSKL / MMAction2 PoseC3D
ones (`backbone.conv1.conv`, `backbone.layer{i}.{j}.conv{k}.conv/bn`, `...downsample.conv/bn`,
`cls_head.fc_cls`) through `checkpoint_filter_fn`, with a load report (models/weights.py).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from microgesture.errors import ConfigError
from microgesture.models.base import InputSpec
from microgesture.models.weights import FilteredState, IncompatibleCheckpoint, LoadReport, load_weights, own_keys

__all__ = ["PoseC3D", "build_posec3d", "checkpoint_filter_fn"]

EXPANSION = 4
SLOWONLY_R50_BLOCKS = (4, 6, 3)


class ConvNorm(nn.Module):
    """Conv3d without bias, then batch norm."""

    def __init__(self, cin: int, cout: int, kernel: tuple[int, int, int], stride: tuple[int, int, int] = (1, 1, 1)):
        super().__init__()
        self.conv = nn.Conv3d(cin, cout, kernel, stride, tuple(k // 2 for k in kernel), bias=False)
        self.norm = nn.BatchNorm3d(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.conv(x))


class MaxPoolRecompute(torch.autograd.Function):
    """3x3 spatial max pool (stride 1) whose backward recomputes the argmax from the input.

    PyTorch's max pool keeps an int64 index tensor as large as its output (twice a float32
    activation) for backward; the input is kept anyway by the ReLU before it, so recomputing
    the indices costs one cheap pass and saves the largest tensor of the network.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x)
        return F.max_pool3d(x, (1, 3, 3), 1, (0, 1, 1))

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        (x,) = ctx.saved_tensors
        _, indices = F.max_pool3d(x, (1, 3, 3), 1, (0, 1, 1), return_indices=True)
        return torch.ops.aten.max_pool3d_with_indices_backward(grad.to(x.dtype), x, (1, 3, 3), (1, 1, 1),
                                                               (0, 1, 1), (1, 1, 1), False, indices)


def _max_pool(x: torch.Tensor) -> torch.Tensor:
    if torch.is_grad_enabled() and x.requires_grad:
        return MaxPoolRecompute.apply(x)
    return F.max_pool3d(x, (1, 3, 3), 1, (0, 1, 1))


def _recomputed(fn, module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """`fn(x)` with its activations recomputed in backward; the recomputation leaves the batch-norm
    running statistics of `module` alone (they are updated once per step, as without it)."""
    calls = 0

    def run(inp: torch.Tensor) -> torch.Tensor:
        nonlocal calls
        calls += 1
        if calls == 1:
            return fn(inp)
        norms = [m for m in module.modules() if isinstance(m, nn.BatchNorm3d)]
        saved = [(m.momentum, m.num_batches_tracked.clone()) for m in norms]
        for m in norms:
            m.momentum = 0.0
        try:
            return fn(inp)
        finally:
            for m, (momentum, tracked) in zip(norms, saved):
                m.momentum = momentum
                m.num_batches_tracked.copy_(tracked)

    return checkpoint(run, x, use_reentrant=False)


class Bottleneck(nn.Module):
    """1x1x1 (3x1x1 when `temporal`) -> 1x3x3 (strided) -> 1x1x1 (x4 channels), plus the shortcut."""

    def __init__(self, cin: int, planes: int, *, stride: tuple[int, int, int] = (1, 1, 1), temporal: bool = False):
        super().__init__()
        cout = planes * EXPANSION
        self.conv1 = ConvNorm(cin, planes, (3, 1, 1) if temporal else (1, 1, 1))
        self.conv2 = ConvNorm(planes, planes, (1, 3, 3), stride)
        self.conv3 = ConvNorm(planes, cout, (1, 1, 1))
        needs_projection = cin != cout or stride != (1, 1, 1)
        self.shortcut = ConvNorm(cin, cout, (1, 1, 1), stride) if needs_projection else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.conv1(x), inplace=True)
        out = F.relu(self.conv2(out), inplace=True)
        out = self.conv3(out)
        identity = x if self.shortcut is None else self.shortcut(x)
        return F.relu(out + identity, inplace=True)


class PoseC3D(nn.Module):
    """SlowOnly over heatmap volumes (module doc): tokens [N, T'*H'*W', D] -> mean -> head."""

    head_prefix = "head."
    token_layout = "sequence"
    num_prefix_tokens = 0

    def __init__(self, num_classes: int, in_channels: int, *, base_channels: int = 32,
                 stage_blocks: Sequence[int] = SLOWONLY_R50_BLOCKS, dropout: float = 0.5,
                 recompute_stem: bool = False):
        super().__init__()
        self.in_channels, self.base_channels = in_channels, base_channels
        self.stage_blocks = tuple(int(b) for b in stage_blocks)
        self.recompute_stem = recompute_stem
        self.input_spec = InputSpec("heatmap", channels=in_channels, min_size=8)
        self.stem = ConvNorm(in_channels, base_channels, (1, 7, 7))
        stages, cin = [], base_channels
        last = len(self.stage_blocks) - 1
        for i, blocks in enumerate(self.stage_blocks):
            planes = base_channels * 2**i
            stride = (2 if i == last and i > 0 else 1, 2, 2)
            layer = [Bottleneck(cin, planes, stride=stride, temporal=i > 0)]
            layer += [Bottleneck(planes * EXPANSION, planes, temporal=i > 0) for _ in range(blocks - 1)]
            stages.append(nn.Sequential(*layer))
            cin = planes * EXPANSION
        self.stages = nn.ModuleList(stages)
        self.embed_dim = cin
        self.dropout = dropout
        self.head_drop = nn.Dropout(dropout)
        self.num_classes = num_classes
        self.head: nn.Module = nn.Linear(cin, num_classes) if num_classes > 0 else nn.Identity()
        self.load_report: LoadReport | None = None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """He initialisation; the last norm of every block starts at 0, so each block starts as its shortcut."""
        for m in self.modules():
            if isinstance(m, nn.Conv3d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm3d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        for stage in self.stages:
            for block in stage:
                nn.init.zeros_(block.conv3.norm.weight)
        self._init_head()

    def _init_head(self) -> None:
        if isinstance(self.head, nn.Linear):
            nn.init.normal_(self.head.weight, 0.0, 0.01)
            nn.init.zeros_(self.head.bias)

    def reset_classifier(self, num_classes: int) -> None:
        """A fresh head for `num_classes` (0: none, `forward` returns the embedding)."""
        self.num_classes = num_classes
        self.head = nn.Linear(self.embed_dim, num_classes) if num_classes > 0 else nn.Identity()
        self._init_head()
        self.head.to(self.stem.norm.weight)

    def _stem(self, x: torch.Tensor) -> torch.Tensor:
        return _max_pool(F.relu(self.stem(x), inplace=True))

    def _early(self, x: torch.Tensor) -> torch.Tensor:
        """Stem, max pool and the first stage: the full-resolution part of the network.

        With `recompute_stem` in training, the stem and each block of the first stage are
        recomputed in the backward pass, one at a time, so only their inputs are kept.
        """
        if not (self.recompute_stem and self.training and torch.is_grad_enabled()):
            return self.stages[0](self._stem(x))
        x = _recomputed(self._stem, self.stem, x)
        for block in self.stages[0]:
            x = _recomputed(block, block, x)
        return x

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 5 or x.shape[1] != self.in_channels or min(x.shape[3:]) < self.input_spec.min_size:
            raise ValueError(f"PoseC3D expects heatmap volumes [N, K={self.in_channels}, T, H, W] with H, W >= "
                             f"{self.input_spec.min_size}, got {list(x.shape)}")
        # Channels-last 3D convolutions take oneDNN's fast path on CPUs. Under autocast the input is cast once
        # here, so the stem keeps one low-precision copy for backward rather than a float32 one as well.
        dtype = torch.get_autocast_dtype(x.device.type) if torch.is_autocast_enabled(x.device.type) else x.dtype
        x = x.to(dtype=dtype, memory_format=torch.channels_last_3d)
        x = self._early(x)
        for stage in self.stages[1:]:
            x = stage(x)
        return x.flatten(2).transpose(1, 2)  # [N, T'*H'*W', D], time-major

    def pool(self, tokens: torch.Tensor) -> torch.Tensor:
        return tokens.mean(dim=1)

    def forward_head(self, tokens: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.head_drop(self.pool(tokens))
        return x if pre_logits else self.head(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def build_posec3d(
    num_classes: int,
    in_channels: int,
    *,
    base_channels: int = 32,
    stage_blocks: Sequence[int] = SLOWONLY_R50_BLOCKS,
    dropout: float = 0.5,
    recompute_stem: bool = False,
    weights: str | Path | None = None,
) -> PoseC3D:
    """PoseC3D's SlowOnly (R50 by default: base 32, blocks 4-6-3, embed_dim 512) for `in_channels` heatmaps.

    `weights` loads our own or a PYSKL/MMAction2 PoseC3D checkpoint non-strictly; the load report
    (missing/unexpected/mismatched keys, notes) is kept on `model.load_report` and logged.
    """
    if num_classes < 0:
        raise ConfigError(f"num_classes must be >= 0, got {num_classes}")
    if in_channels < 1 or base_channels < 1 or not stage_blocks or min(stage_blocks) < 1:
        raise ConfigError(f"PoseC3D needs in_channels >= 1, base_channels >= 1 and at least one stage of >= 1 "
                          f"blocks; got {in_channels}, {base_channels}, {tuple(stage_blocks)}")
    if not 0 <= dropout < 1:
        raise ConfigError(f"dropout must be in [0, 1), got {dropout}")
    model = PoseC3D(num_classes, in_channels, base_channels=base_channels, stage_blocks=stage_blocks,
                    dropout=dropout, recompute_stem=recompute_stem)
    if weights is not None:
        model.load_report = load_weights(model, weights, checkpoint_filter_fn, head=PoseC3D.head_prefix)
    return model


# --- foreign checkpoints -------------------------------------------------------------------
# PYSKL and MMAction2 (0.x and 1.x) `ResNet3dSlowOnly` + `I3DHead`, recognizer-wrapped:
# backbone.conv1.{conv, bn}, backbone.layer{i}.{j}.conv{1,2,3}.{conv, bn}, backbone.layer{i}.0.downsample.{conv, bn}
# (mmcv ConvModule: conv + bn), cls_head.fc_cls.{weight, bias}. Their layer{i} is our stages.{i-1}.

_FOREIGN = re.compile(r"^backbone\.(?:conv1|layer\d+\.\d+\.(?:conv[123]|downsample))\.(?:conv|bn)\.")
_OWN_MARK = "stem.conv.weight"


def _rename(key: str) -> str | None:
    """A foreign key's name in our model, or None when it is not a backbone or head key."""
    if key.startswith("cls_head.fc_cls."):
        return "head." + key[len("cls_head.fc_cls."):]
    if not _FOREIGN.match(key):
        return None
    parts = key[len("backbone."):].split(".")
    leaf = ".".join(["norm" if parts[-2] == "bn" else "conv", parts[-1]])
    if parts[0] == "conv1":
        return f"stem.{leaf}"
    stage, block, conv = int(parts[0][len("layer"):]) - 1, parts[1], parts[2]
    return f"stages.{stage}.{block}.{'shortcut' if conv == 'downsample' else conv}.{leaf}"


def checkpoint_filter_fn(state_dict: dict[str, torch.Tensor], model: PoseC3D) -> dict[str, torch.Tensor]:
    """Rename a PYSKL / MMAction2 PoseC3D (or our own) state dict onto `model`'s names.

    Raises IncompatibleCheckpoint when the stem reads another number of heatmap channels (another
    layout, or limbs instead of joints) or the network is deeper or wider than the model; returns
    a FilteredState. Keys that are neither backbone nor head pass through (reported as unexpected).
    """
    own = own_keys(state_dict, _OWN_MARK)
    if own is not None:
        _check_stem(own.get(_OWN_MARK), _OWN_MARK, model)
        return FilteredState(own)
    if "backbone.conv1.conv.weight" not in state_dict:
        return FilteredState(state_dict)  # not ours to judge: the loader reports no match
    _check_stem(state_dict["backbone.conv1.conv.weight"], "backbone.conv1.conv.weight", model)
    out = FilteredState()
    for key, value in state_dict.items():
        out[_rename(key) or key] = value
    _check_depth(out, model)
    if any(k.startswith("backbone.") and k.endswith("conv_lateral.conv.weight") for k in state_dict):
        out.notes.append("lateral connections (SlowFast) are not part of SlowOnly: left out")
    return out


def _check_stem(weight: torch.Tensor | None, key: str, model: PoseC3D) -> None:
    if weight is None or weight.dim() != 5:
        return
    if weight.shape[1] != model.in_channels:
        raise IncompatibleCheckpoint(
            f"{key} has shape {tuple(weight.shape)}: the checkpoint reads {weight.shape[1]} heatmap channels, the "
            f"model {model.in_channels} (another layout, or limbs instead of joints: see data.heatmap)")
    if weight.shape[0] != model.base_channels:
        raise IncompatibleCheckpoint(f"{key}: the checkpoint's stem has {weight.shape[0]} channels, the model "
                                     f"base_channels={model.base_channels}")


def _check_depth(state: dict[str, torch.Tensor], model: PoseC3D) -> None:
    blocks: dict[int, set[int]] = {}
    for key in state:
        match = re.match(r"^stages\.(\d+)\.(\d+)\.", key)
        if match:
            blocks.setdefault(int(match.group(1)), set()).add(int(match.group(2)))
    found = tuple(len(blocks[s]) for s in sorted(blocks))
    if found and found != model.stage_blocks:
        raise IncompatibleCheckpoint(f"the checkpoint has stages of {found} blocks, the model {model.stage_blocks} "
                                     "(build it with the checkpoint's stage_blocks)")
