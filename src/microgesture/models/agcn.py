"""2s-AGCN (Shi et al., CVPR 2019) and its attention variant AAGCN (Shi et al., TIP 2020).

One stream of the two-stream model: feed joints or bones (joint - parent, see
`JointLayout.bone_pairs`) and add the streams' scores. Input x: [N, M, T, V, C] (persons,
frames, joints, channels such as x, y, confidence). Tokens: [N, ceil(T/4), V, embed_dim],
averaged over persons, for fusion modules.

Each block is an adaptive graph convolution followed by a 9-frame temporal convolution. The
graph of subset k is A_k (fixed, from the layout) + B_k (learned, `graph_offset`) + C_k (per
sample, from embedded features). `similarity` picks how C_k is formed:
  "softmax": softmax over senders of theta(x)^T phi(x) / (channels * T), as in the 2s-AGCN paper
             (and MMAction2 0.x `AGCN`);
  "tanh":    alpha * tanh(theta(x)^T phi(x) / (channels * T)) with alpha learned from 0, as in the
             AAGCN code, PYSKL and MMAction2 1.x (whose "2s-AGCN" is AAGCN without attention).
Foreign checkpoints keep their variant: load PYSKL/MMAction2 1.x weights into a "tanh" model.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from microgesture.domain.layouts import JointLayout, get_layout
from microgesture.errors import ConfigError
from microgesture.models.base import InputSpec
from microgesture.models.graph import NUM_SUBSETS, spatial_adjacency
from microgesture.models.weights import FilteredState, IncompatibleCheckpoint, LoadReport, load_weights

__all__ = ["AGCN", "build_agcn", "checkpoint_filter_fn"]

SIMILARITIES = ("softmax", "tanh")


class ConvNorm(nn.Module):
    """Temporal convolution (kernel over frames only) followed by batch norm."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int = 1, stride: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(
            in_channels, out_channels, (kernel, 1), stride=(stride, 1), padding=((kernel - 1) // 2, 0)
        )
        self.norm = nn.BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.conv(x))


class BlockAttention(nn.Module):
    """AAGCN's joint, frame and channel attention, each applied as y + y * gate."""

    def __init__(self, channels: int, num_joints: int):
        super().__init__()
        joint_kernel = num_joints if num_joints % 2 else num_joints - 1  # odd, so the length is kept
        self.spatial = nn.Conv1d(channels, 1, joint_kernel, padding=(joint_kernel - 1) // 2)
        self.temporal = nn.Conv1d(channels, 1, 9, padding=4)
        self.squeeze = nn.Linear(channels, channels // 2)
        self.excite = nn.Linear(channels // 2, channels)

    def forward(self, y: torch.Tensor) -> torch.Tensor:  # y: [N, C, T, V]
        y = y + y * torch.sigmoid(self.spatial(y.mean(2))).unsqueeze(2)
        y = y + y * torch.sigmoid(self.temporal(y.mean(3))).unsqueeze(3)
        gate = torch.sigmoid(self.excite(F.relu(self.squeeze(y.mean((2, 3))))))
        return y + y * gate[:, :, None, None]


class AdaptiveGraphConv(nn.Module):
    """Graph convolution over K subsets with graphs A_k + B_k + C_k(x); input/output [N, C, T, V]."""

    def __init__(self, in_channels: int, out_channels: int, adjacency: torch.Tensor,
                 similarity: str = "softmax", attention: bool = False):
        super().__init__()
        subsets, joints = adjacency.shape[0], adjacency.shape[-1]
        self.subsets, self.similarity = subsets, similarity
        self.embed_channels = max(out_channels // 4, 1)
        self.register_buffer("graph", adjacency.clone(), persistent=False)  # A_k, rebuilt from the layout
        self.graph_offset = nn.Parameter(torch.zeros(subsets, joints, joints))  # B_k
        self.query = nn.Conv2d(in_channels, subsets * self.embed_channels, 1)  # theta_k, stacked
        self.key = nn.Conv2d(in_channels, subsets * self.embed_channels, 1)  # phi_k, stacked
        if similarity == "tanh":
            self.alpha = nn.Parameter(torch.zeros(1))
        # One 1x1 conv over the K aggregated maps = the sum of K per-subset convs.
        self.proj = nn.Conv2d(subsets * in_channels, out_channels, 1)
        self.norm = nn.BatchNorm2d(out_channels)
        self.shortcut = ConvNorm(in_channels, out_channels) if in_channels != out_channels else nn.Identity()
        self.attention = BlockAttention(out_channels, joints) if attention else None

    def sample_graph(self, x: torch.Tensor) -> torch.Tensor:
        """C_k: the data-dependent graph [N, K, V, V] of each sample."""
        n, _, t, v = x.shape
        q = self.query(x).view(n, self.subsets, self.embed_channels, t, v)
        k = self.key(x).view(n, self.subsets, self.embed_channels, t, v)
        scores = torch.einsum("nkctv,nkctw->nkvw", q, k) / (self.embed_channels * t)
        if self.similarity == "softmax":
            return scores.softmax(dim=-2)  # each receiving joint's weights over senders sum to 1
        return torch.tanh(scores) * self.alpha

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, t, v = x.shape
        graph = (self.graph + self.graph_offset).unsqueeze(0) + self.sample_graph(x)
        mixed = torch.einsum("nctv,nkvw->nkctw", x, graph).reshape(n, self.subsets * c, t, v)
        y = F.relu(self.norm(self.proj(mixed)) + self.shortcut(x))
        return y if self.attention is None else self.attention(y)


class AGCNBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, adjacency: torch.Tensor, *, stride: int = 1,
                 residual: bool = True, similarity: str = "softmax", attention: bool = False):
        super().__init__()
        self.graph_conv = AdaptiveGraphConv(in_channels, out_channels, adjacency, similarity, attention)
        self.temporal = ConvNorm(out_channels, out_channels, kernel=9, stride=stride)
        if not residual:
            self.residual: nn.Module | None = None
        elif in_channels == out_channels and stride == 1:
            self.residual = nn.Identity()
        else:
            self.residual = ConvNorm(in_channels, out_channels, kernel=1, stride=stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.temporal(self.graph_conv(x))
        return F.relu(y if self.residual is None else y + self.residual(x))


class AGCN(nn.Module):
    """One stream of 2s-AGCN (or AAGCN with `attention=True`) with a timm-like interface.

    `forward_features(x)` -> tokens [N, T', V, embed_dim] (T' = ceil(ceil(T/2)/2), mean over
    persons); `pool(tokens)` -> [N, embed_dim]; `forward_head(tokens)` -> logits [N, num_classes].
    `num_classes=0` leaves the head as identity (features only).
    """

    head_prefix = "head."
    token_layout = "time_joint"
    num_prefix_tokens = 0

    def __init__(self, num_classes: int, layout: JointLayout, *, in_channels: int = 3,
                 base_channels: int = 64, num_person: int = 1, attention: bool = False,
                 similarity: str | None = None, dropout: float = 0.0):
        super().__init__()
        similarity = similarity or ("tanh" if attention else "softmax")
        if similarity not in SIMILARITIES:
            raise ConfigError(f"similarity must be one of {SIMILARITIES}, got {similarity!r}")
        self.layout, self.similarity, self.attention = layout, similarity, attention
        self.num_joints, self.num_person, self.in_channels = layout.num_joints, num_person, in_channels
        self.input_spec = InputSpec("skeleton", channels=in_channels)
        adjacency = torch.from_numpy(spatial_adjacency(layout))
        self.register_buffer("adjacency", adjacency, persistent=False)
        self.input_norm = nn.BatchNorm1d(num_person * layout.num_joints * in_channels)
        widths = [base_channels] * 4 + [2 * base_channels] * 3 + [4 * base_channels] * 3
        blocks, prev = [], in_channels
        for i, width in enumerate(widths):
            stride = 2 if i > 0 and width != widths[i - 1] else 1
            blocks.append(AGCNBlock(prev, width, adjacency, stride=stride, residual=i > 0,
                                    similarity=similarity, attention=attention))
            prev = width
        self.blocks = nn.ModuleList(blocks)
        self.embed_dim = widths[-1]
        self.head_drop = nn.Dropout(dropout)
        self.num_classes = num_classes
        self.head: nn.Module = nn.Linear(self.embed_dim, num_classes) if num_classes > 0 else nn.Identity()
        self.load_report: LoadReport | None = None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """The published initialisation (2s-AGCN / AAGCN code)."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
                nn.init.zeros_(m.bias)
            elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        for block in self.blocks:
            gc = block.graph_conv
            # std sqrt(2 / (out * in * K)): each of the K per-subset convs starts as in the paper's code
            fan = gc.proj.weight.shape[0] * gc.proj.weight.shape[1]
            nn.init.normal_(gc.proj.weight, 0.0, math.sqrt(2.0 / fan))
            nn.init.constant_(gc.norm.weight, 1e-6)  # each graph conv starts close to its shortcut
            if gc.attention is not None:
                att = gc.attention
                nn.init.xavier_normal_(att.spatial.weight)
                nn.init.kaiming_normal_(att.squeeze.weight)
                for param in (att.temporal.weight, att.excite.weight):  # gates start at 0.5 everywhere
                    nn.init.zeros_(param)
                for layer in (att.spatial, att.temporal, att.squeeze, att.excite):
                    nn.init.zeros_(layer.bias)
        self._init_head()

    def _init_head(self) -> None:
        if isinstance(self.head, nn.Linear):
            nn.init.normal_(self.head.weight, 0.0, math.sqrt(2.0 / self.num_classes))
            nn.init.zeros_(self.head.bias)

    def reset_classifier(self, num_classes: int) -> None:
        """A fresh head for `num_classes` (0: none, `forward` returns the embedding)."""
        self.num_classes = num_classes
        self.head = nn.Linear(self.embed_dim, num_classes) if num_classes > 0 else nn.Identity()
        self._init_head()
        self.head.to(self.input_norm.weight)  # same device and dtype as the rest

    def _check_input(self, x: torch.Tensor) -> None:
        expected = (self.num_person, self.num_joints, self.in_channels)
        if x.dim() != 5 or (x.shape[1], x.shape[3], x.shape[4]) != expected:
            raise ValueError(
                f"AGCN expects input [N, M={self.num_person}, T, V={self.num_joints}, C={self.in_channels}] "
                f"(layout {self.layout.name}), got {tuple(x.shape)}"
            )

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        n, m, t, v, c = x.shape
        # Normalise each (person, joint, channel) series over the batch and time, as published.
        x = self.input_norm(x.permute(0, 1, 3, 4, 2).reshape(n, m * v * c, t))
        x = x.view(n, m, v, c, t).permute(0, 1, 3, 4, 2).reshape(n * m, c, t, v)
        for block in self.blocks:
            x = block(x)
        x = x.view(n, m, *x.shape[1:]).mean(1)  # [N, C', T', V]
        return x.permute(0, 2, 3, 1)

    def pool(self, tokens: torch.Tensor) -> torch.Tensor:
        """Global average over frames and joints: [N, T', V, C'] -> [N, C']."""
        return tokens.mean(dim=(1, 2))

    def forward_head(self, tokens: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.head_drop(self.pool(tokens))
        return x if pre_logits else self.head(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def build_agcn(
    num_classes: int,
    layout: str | JointLayout = "miga35",
    *,
    in_channels: int = 3,
    base_channels: int = 64,
    num_person: int = 1,
    attention: bool = False,
    similarity: str | None = None,
    dropout: float = 0.0,
    weights: str | Path | None = None,
) -> AGCN:
    """Build one AGCN stream; `weights` loads our own or a PYSKL/MMAction2 checkpoint non-strictly.

    The load report (missing/unexpected/mismatched keys, notes) is kept on `model.load_report`
    and logged. `similarity` defaults to "tanh" with attention, else "softmax" (see module doc).
    """
    if isinstance(layout, str):
        try:
            layout = get_layout(layout)
        except ValueError as err:
            raise ConfigError(str(err)) from None
    model = AGCN(num_classes, layout, in_channels=in_channels, base_channels=base_channels,
                 num_person=num_person, attention=attention, similarity=similarity, dropout=dropout)
    if weights is not None:
        model.load_report = load_weights(model, weights, checkpoint_filter_fn, head=AGCN.head_prefix)
    return model


# --- foreign checkpoints -------------------------------------------------------------------
# PYSKL and MMAction2 1.x (AAGCN, with or without attention): backbone.gcn.{i}.gcn.{A, alpha,
# conv_a.k, conv_b.k, conv_d.k, down.0/1, bn, conv_sa, conv_ta, fc1c, fc2c}, .tcn.{conv,bn},
# .residual.{conv,bn}; backbone.data_bn (M*V*C); head cls_head.fc_cls (PYSKL) or cls_head.fc.
# MMAction2 0.x AGCN: backbone.agcn_networks.{i}.gcn.{PA, conv_a.k, ...}, .tcn.0/1, .residual.0/1,
# data_bn (V*C), fixed graph in backbone.A. Their "A" (AAGCN) is the whole learned graph A+B;
# their "PA" (AGCN) is B alone. conv_*.k are K per-subset convs; ours are stacked.

_BLOCK = re.compile(r"^(?:backbone\.)?(?:gcn|agcn_networks)\.(\d+)\.(.+)$")
_OWN_MARK = "blocks.0.graph_conv.proj.weight"
_GCN_PARTS = {"down.0.": "graph_conv.shortcut.conv.", "down.1.": "graph_conv.shortcut.norm.",
              "bn.": "graph_conv.norm.", "conv_sa.": "graph_conv.attention.spatial.",
              "conv_ta.": "graph_conv.attention.temporal.", "fc1c.": "graph_conv.attention.squeeze.",
              "fc2c.": "graph_conv.attention.excite."}
_BLOCK_PARTS = {"tcn.conv.": "temporal.conv.", "tcn.bn.": "temporal.norm.", "tcn.0.": "temporal.conv.",
                "tcn.1.": "temporal.norm.", "residual.conv.": "residual.conv.", "residual.bn.": "residual.norm.",
                "residual.0.": "residual.conv.", "residual.1.": "residual.norm."}


def checkpoint_filter_fn(state_dict: dict[str, torch.Tensor], model: AGCN) -> dict[str, torch.Tensor]:
    """Rename a PYSKL / MMAction2 (or our own) AGCN/AAGCN state dict onto `model`'s names.

    Raises IncompatibleCheckpoint for another layout (joint count), an ST-GCN checkpoint, or a
    variant the model was not built as (attention, similarity); returns a FilteredState whose
    notes say what was adapted. Unknown keys pass through unchanged (reported as unexpected).
    """
    own = _own_keys(state_dict)
    if own is not None:
        _check_joints(own.get("blocks.0.graph_conv.graph_offset"), "blocks.0.graph_conv.graph_offset", model)
        return FilteredState(own)
    blocks: dict[int, dict[str, torch.Tensor]] = {}
    origins: dict[int, str] = {}  # the checkpoint's own prefix of each block, for unmapped keys
    out = FilteredState()
    for key, value in state_dict.items():
        match = _BLOCK.match(key)
        if match:
            blocks.setdefault(int(match.group(1)), {})[match.group(2)] = value
            origins[int(match.group(1))] = key[: match.start(2)]
    if not blocks:
        return FilteredState(state_dict)  # not ours to judge: the loader reports no match
    fixed = state_dict.get("backbone.A", state_dict.get("A"))
    _check_variant(blocks, fixed, model)
    if fixed is not None and (fixed.shape != model.adjacency.shape
                              or not torch.allclose(fixed.float(), model.adjacency, atol=1e-4)):
        out.notes.append(
            f"the checkpoint's fixed graph differs from layout {model.layout.name!r} (same {model.num_joints} "
            f"joints) at {_differing_joints(fixed, model)}: check that the joint order matches; the difference "
            "is kept in the learned offsets B_k"
        )
    for index, parts in sorted(blocks.items()):
        out.update(_map_block(index, parts, origins[index], fixed, model, out.notes))
    for key, value in state_dict.items():
        if _BLOCK.match(key) or key in ("backbone.A", "A"):
            continue
        out.update(_map_top(key, value, model, out.notes))
    return out


def _differing_joints(fixed: torch.Tensor, model: AGCN) -> str:
    """The joints whose links differ between a checkpoint's fixed graph and the layout's, by name."""
    if fixed.shape != model.adjacency.shape:
        return f"shape {tuple(fixed.shape)}"
    diff = (fixed.float() - model.adjacency).abs() > 1e-4
    joints = torch.nonzero(diff.any(0).any(0) | diff.any(0).any(1)).flatten().tolist()
    return "joints " + ", ".join(model.layout.joint_names[j] for j in joints)


def _own_keys(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor] | None:
    """Our own names, possibly under a prefix (e.g. Lightning's "model."): strip it."""
    prefix = next((k[: -len(_OWN_MARK)] for k in state if k.endswith(_OWN_MARK)), None)
    if prefix is None:
        return None
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}


def _check_joints(tensor: torch.Tensor | None, key: str, model: AGCN) -> None:
    if tensor is not None and tensor.shape[-1] != model.num_joints:
        raise IncompatibleCheckpoint(
            f"{key} has shape {tuple(tensor.shape)}: the checkpoint is for a {tensor.shape[-1]}-joint layout, "
            f"the model's layout {model.layout.name!r} has {model.num_joints} joints"
        )


def _check_variant(blocks: dict[int, dict[str, torch.Tensor]], fixed, model: AGCN) -> None:
    first = blocks[min(blocks)]
    if "gcn.conv.weight" in first and "gcn.conv_d.0.weight" not in first:
        raise IncompatibleCheckpoint("this is an ST-GCN checkpoint (gcn.conv, no conv_d), not 2s-AGCN/AAGCN")
    if "gcn.conv_a.0.weight" not in first:
        raise IncompatibleCheckpoint("no data-dependent graph (gcn.conv_a) in block 0: not an adaptive GCN checkpoint")
    graph_key = "gcn.A" if "gcn.A" in first else "gcn.PA"
    _check_joints(first.get(graph_key, fixed), f"block {min(blocks)} {graph_key}", model)
    graph = first.get(graph_key, fixed)
    if graph is not None and graph.shape[0] != model.adjacency.shape[0]:
        raise IncompatibleCheckpoint(f"the checkpoint's graph has {graph.shape[0]} subsets, the model {NUM_SUBSETS}")
    gated = "gcn.alpha" in first
    if gated != (model.similarity == "tanh"):
        found = "alpha * tanh (AAGCN / PYSKL / MMAction2 1.x)" if gated else "softmax (2s-AGCN paper, MMAction2 0.x)"
        raise IncompatibleCheckpoint(
            f"the checkpoint's data-dependent graph is {found}, the model was built with "
            f"similarity={model.similarity!r}: build it with similarity={'tanh' if gated else 'softmax'!r}"
        )
    has_attention = "gcn.conv_sa.weight" in first
    if has_attention != model.attention:
        raise IncompatibleCheckpoint(
            f"the checkpoint {'has' if has_attention else 'has no'} AAGCN attention weights (conv_sa, conv_ta, "
            f"fc1c, fc2c), the model was built with attention={model.attention}"
        )


def _stack(parts: dict[str, torch.Tensor], stem: str, leaf: str, dim: int) -> torch.Tensor | None:
    """Concatenate K per-subset tensors `stem.k.leaf`; None when any is missing."""
    items = [parts.get(f"{stem}.{k}.{leaf}") for k in range(NUM_SUBSETS)]
    return None if any(t is None for t in items) else torch.cat(items, dim=dim)


def _map_block(index: int, parts: dict[str, torch.Tensor], origin: str, fixed, model: AGCN,
               notes: list[str]) -> dict[str, torch.Tensor]:
    p, out, used = f"blocks.{index}.", {}, set()
    own_graph = model.adjacency
    if "gcn.A" in parts:  # AAGCN: the learned graph as a whole
        out[p + "graph_conv.graph_offset"] = parts["gcn.A"].float() - own_graph
        used.add("gcn.A")
    elif "gcn.PA" in parts:  # AGCN: an offset on the checkpoint's fixed graph
        base = own_graph if fixed is None else fixed.float()
        out[p + "graph_conv.graph_offset"] = base + parts["gcn.PA"].float() - own_graph
        used.add("gcn.PA")
        if fixed is None and index == 0:
            notes.append("the checkpoint has no fixed graph (backbone.A): assumed to equal the layout's")
    if "gcn.alpha" in parts:
        out[p + "graph_conv.alpha"] = parts["gcn.alpha"]
        used.add("gcn.alpha")
    for stem, name in (("conv_a", "query"), ("conv_b", "key")):
        for leaf in ("weight", "bias"):
            stacked = _stack(parts, f"gcn.{stem}", leaf, 0)
            if stacked is not None:
                out[f"{p}graph_conv.{name}.{leaf}"] = stacked
                used.update(f"gcn.{stem}.{k}.{leaf}" for k in range(NUM_SUBSETS))
    weight = _stack(parts, "gcn.conv_d", "weight", 1)
    bias = _stack(parts, "gcn.conv_d", "bias", 0)
    if weight is not None and bias is not None:
        out[p + "graph_conv.proj.weight"] = weight
        out[p + "graph_conv.proj.bias"] = bias.view(NUM_SUBSETS, -1).sum(0)  # the K convs' outputs are summed
        used.update(f"gcn.conv_d.{k}.{leaf}" for k in range(NUM_SUBSETS) for leaf in ("weight", "bias"))
    for key, value in parts.items():
        if key in used:
            continue
        target = _rename(key, "gcn.", _GCN_PARTS) or _rename(key, "", _BLOCK_PARTS)
        out[p + target if target else origin + key] = value
    return out


def _rename(key: str, lead: str, table: dict[str, str]) -> str | None:
    if not key.startswith(lead):
        return None
    rest = key[len(lead):]
    return next((new + rest[len(old):] for old, new in table.items() if rest.startswith(old)), None)


def _map_top(key: str, value: torch.Tensor, model: AGCN, notes: list[str]) -> dict[str, torch.Tensor]:
    for head in ("cls_head.fc_cls.", "cls_head.fc."):
        if key.startswith(head):
            return {"head." + key[len(head):]: value}
    for norm in ("backbone.data_bn.", "data_bn."):
        if key.startswith(norm):
            return {"input_norm." + key[len(norm):]: _adapt_data_bn(key, value, model, notes)}
    return {key: value}


def _adapt_data_bn(key: str, value: torch.Tensor, model: AGCN, notes: list[str]) -> torch.Tensor:
    """Match the input norm's person count: its entries are ordered (person, joint, channel)."""
    per_person = model.num_joints * model.in_channels
    if value.dim() == 0 or value.numel() == model.num_person * per_person or value.numel() % per_person:
        return value  # the loader reports any other size as a shape mismatch
    persons = value.numel() // per_person
    if key.endswith(".weight"):
        notes.append(
            f"data_bn normalises {persons} person(s) of {per_person} values, the model {model.num_person}: "
            + ("kept the first persons' statistics" if persons > model.num_person
               else "reused the first person's statistics for every person")
        )
    if persons > model.num_person:
        return value[: model.num_person * per_person].clone()
    return value[:per_person].repeat(model.num_person)
