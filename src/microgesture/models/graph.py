"""Spatial-partition adjacency of a joint layout, as used by ST-GCN style models (2s-AGCN, AAGCN).

Convention: `A[k, v, w]` weighs the message sent from joint `v` to joint `w` in subset `k`, so a
feature map `x[..., V]` is aggregated as `x @ A[k]` (out[w] = sum_v x[v] * A[k, v, w]).

Subsets, in the order of the published 2s-AGCN code and PYSKL/MMAction2 ("spatial" mode), so
that a foreign checkpoint's graph lines up subset by subset with ours:
  0 self-links (identity);
  1 the inward edge list (child -> parent, parent nearer the center) stored at [parent, child]:
    each joint receives from its parent;
  2 its transpose, stored at [child, parent]: each joint receives from its children.
Each column of subsets 1 and 2 is divided by its sum (A @ D^-1, D the in-degree), so a
receiving joint averages its senders.
"""

from __future__ import annotations

import numpy as np

from microgesture.domain.layouts import JointLayout

NUM_SUBSETS = 3


def hop_distances(layout: JointLayout) -> np.ndarray:
    """Graph distance of every joint from the layout's center (breadth-first)."""
    return layout.hop_distances()


def directed_edges(layout: JointLayout) -> list[tuple[int, int]]:
    """Every edge as (child, parent): the parent is the joint nearer the center.

    An edge between two joints at the same distance (only possible when the layout has a cycle)
    has no inward direction; it is kept in both directions so it still carries messages.
    """
    dist = hop_distances(layout)
    pairs: list[tuple[int, int]] = []
    for i, j in layout.edges:
        if i == j:
            continue
        if dist[i] > dist[j]:
            pairs.append((i, j))
        elif dist[j] > dist[i]:
            pairs.append((j, i))
        else:
            pairs += [(i, j), (j, i)]
    return pairs


def normalize_columns(a: np.ndarray) -> np.ndarray:
    """Divide each column by its sum (columns summing to zero stay zero)."""
    sums = a.sum(axis=0)
    scale = np.divide(1.0, sums, out=np.zeros_like(sums), where=sums > 0)
    return a * scale[None, :]


def spatial_adjacency(layout: JointLayout) -> np.ndarray:
    """The [3, V, V] float32 adjacency (self, inward, outward) of `layout`, column-normalised."""
    v = layout.num_joints
    from_parent = np.zeros((v, v), dtype=np.float64)
    for child, parent in directed_edges(layout):
        from_parent[parent, child] = 1.0
    from_children = from_parent.T.copy()
    stacked = np.stack([np.eye(v), normalize_columns(from_parent), normalize_columns(from_children)])
    return stacked.astype(np.float32)
