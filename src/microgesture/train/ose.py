"""The orthogonal semantic embedding (OSE) loss of arXiv 2606.13030, as we design it.

The paper names the loss and its aim (protect the tail classes) but not its formula. Ours, after
the orthogonal projection loss (Ranasinghe et al. 2021, "Orthogonal Projection Loss"), with
learned class prototypes so that every batch also pushes away from the rare classes it lacks:

    f_i = e_i / |e_i|           the embedding a task head sees (models/recognizer.py `embed`)
    p_c = P_c / |P_c|           a learned prototype direction per class (K x D, orthogonal at start)
    pull  = mean_i (1 - f_i . p_{y_i})                        same-class features pulled together
    push  = mean_i mean_{c != y_i} max(0, f_i . p_c - margin)  away from other classes' directions
    ortho = mean_{c != c'} (p_c . p_c')^2                      prototypes pushed towards orthogonal
    OSE   = pull + push + orthogonality * ortho

Embeddings after a ReLU and average pooling (2s-AGCN) are non-negative, so orthogonal class
directions are the most separated they can be. With several named embeddings (late fusion: one
per stream) each has its own prototypes and the losses are averaged. Unlabelled clips (-1) add
nothing. The prototypes are saved with the model; they do not change its predictions.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn
from torch.nn import functional as F


def orthogonal_prototypes(num_classes: int, dim: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """K unit rows, orthonormal when K <= D (a QR of a Gaussian matrix), else as spread as random."""
    g = torch.randn(max(num_classes, dim), dim, generator=generator)
    if num_classes <= dim:
        q, _ = torch.linalg.qr(g)
        return q[:num_classes].contiguous()
    return F.normalize(g[:num_classes], dim=1)


def ose_terms(features: torch.Tensor, labels: torch.Tensor, prototypes: torch.Tensor,
              margin: float) -> dict[str, torch.Tensor]:
    """pull, push and ortho (module doc) for features [N, D] of known labels [N] and prototypes [K, D]."""
    f = F.normalize(features.float(), dim=1)
    p = F.normalize(prototypes.float(), dim=1)
    cos = f @ p.T  # [N, K]
    own = F.one_hot(labels, p.shape[0]).bool()
    pull = (1.0 - cos[own]).mean()
    others = torch.clamp(cos - margin, min=0.0).masked_fill(own, 0.0)
    push = others.sum(1).mean() / max(1, p.shape[0] - 1)
    gram = p @ p.T
    off = ~torch.eye(p.shape[0], dtype=torch.bool, device=p.device)
    ortho = gram[off].pow(2).mean() if p.shape[0] > 1 else gram.sum() * 0.0
    return {"pull": pull, "push": push, "ortho": ortho}


class OSELoss(nn.Module):
    """Prototypes per named embedding and the OSE loss over them (see the module doc)."""

    def __init__(self, dims: Mapping[str, int], num_classes: int, *, margin: float = 0.2,
                 orthogonality: float = 1.0, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.prototypes = nn.ParameterDict({
            name: nn.Parameter(orthogonal_prototypes(num_classes, dim, g)) for name, dim in dims.items()})
        self.margin, self.orthogonality = float(margin), float(orthogonality)

    def forward(self, embeddings: Mapping[str, torch.Tensor], labels: torch.Tensor) -> torch.Tensor:
        known = labels >= 0
        if not bool(known.any()):
            return sum(p.sum() for p in self.prototypes.values()) * 0.0
        losses = []
        for name, prototypes in self.prototypes.items():
            t = ose_terms(embeddings[name][known], labels[known], prototypes, self.margin)
            losses.append(t["pull"] + t["push"] + self.orthogonality * t["ortho"])
        return torch.stack(losses).mean()
