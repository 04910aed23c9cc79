"""2s-AGCN / AAGCN: graph, shapes, strides, gradients, parameter counts (tiny widths except counts)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from microgesture.domain.layouts import BODY25_EDGES, BODY25_NAMES, IMIGUE22, MIGA35, JointLayout
from microgesture.errors import ConfigError
from microgesture.models import agcn as agcn_module
from microgesture.models import graph as graph_module
from microgesture.models import weights as weights_module
from microgesture.models.agcn import AGCN, build_agcn
from microgesture.models.graph import spatial_adjacency

COCO_NAMES = ("nose", "l_eye", "r_eye", "l_ear", "r_ear", "l_shoulder", "r_shoulder", "l_elbow", "r_elbow",
              "l_wrist", "r_wrist", "l_hip", "r_hip", "l_knee", "r_knee", "l_ankle", "r_ankle")
# (child, parent) pairs, as PYSKL lists its coco "inward" edges.
COCO_INWARD = ((15, 13), (13, 11), (16, 14), (14, 12), (11, 5), (12, 6), (9, 7), (7, 5), (10, 8), (8, 6),
               (5, 0), (6, 0), (1, 0), (3, 1), (2, 0), (4, 2))
COCO17 = JointLayout("coco17", COCO_NAMES, COCO_INWARD, center=0, flip_pairs=())
BODY25 = JointLayout("body25", BODY25_NAMES, BODY25_EDGES, center=1, flip_pairs=())


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# --- graph ------------------------------------------------------------------------------------

@pytest.mark.parametrize("layout", [MIGA35, IMIGUE22, COCO17, BODY25], ids=lambda lay: lay.name)
def test_adjacency_uses_every_edge_and_is_symmetric_where_expected(layout):
    a = spatial_adjacency(layout)
    v = layout.num_joints
    assert a.shape == (3, v, v) and a.dtype == np.float32
    assert np.array_equal(a[0], np.eye(v))
    from_parent, from_children = a[1] > 0, a[2] > 0
    assert np.array_equal(from_parent, from_children.T)  # one direction each, transposes
    both = from_parent | from_children
    assert np.array_equal(both, both.T)
    assert np.array_equal(both, layout.adjacency() > 0)  # every edge, nothing else
    # column-normalised: a receiving joint averages its senders
    for k in (1, 2):
        sums = a[k].sum(axis=0)
        assert np.allclose(sums[sums > 0], 1.0)
    # in a tree, every joint but the center receives from exactly one parent
    assert (from_parent.sum(axis=0) == 1).sum() == v - 1
    assert from_parent[:, layout.center].sum() == 0


def test_adjacency_equals_the_reference_spatial_graph_for_coco():
    # The reference builds M[j, i] = 1 for each inward pair (i, j) and divides columns by their sums.
    expected = np.zeros((3, 17, 17))
    expected[0] = np.eye(17)
    for child, parent in COCO_INWARD:
        expected[1, parent, child] = 1
        expected[2, child, parent] = 1
    expected[1:] /= np.maximum(expected[1:].sum(axis=1, keepdims=True), 1)
    assert np.allclose(spatial_adjacency(COCO17), expected)


def test_edges_between_joints_at_equal_distance_go_both_ways():
    ring = JointLayout("ring", ("a", "b", "c", "d"), ((0, 1), (0, 2), (1, 2), (2, 3)), center=0, flip_pairs=())
    a = spatial_adjacency(ring)
    assert a[1, 1, 2] > 0 and a[1, 2, 1] > 0 and a[2, 1, 2] > 0 and a[2, 2, 1] > 0
    assert np.array_equal((a[1] > 0) | (a[2] > 0), ring.adjacency() > 0)


# --- model --------------------------------------------------------------------------------------

@pytest.mark.parametrize("layout", ["miga35", "imigue22"])
@pytest.mark.parametrize("attention", [False, True])
def test_shapes_tokens_and_embedding(layout, attention):
    torch.manual_seed(0)
    model = build_agcn(32, layout, base_channels=8, attention=attention).eval()
    v = model.num_joints
    x = torch.randn(2, 1, 16, v, 3)
    with torch.no_grad():
        tokens = model.forward_features(x)
        logits = model(x)
        embedding = model.pool(tokens)
        pre = model.forward_head(tokens, pre_logits=True)
    assert model.embed_dim == 32 and v == {"miga35": 35, "imigue22": 22}[layout]
    assert tokens.shape == (2, 4, v, 32)
    assert logits.shape == (2, 32) and embedding.shape == (2, 32)
    assert torch.allclose(pre, embedding)
    assert torch.allclose(model.forward_head(tokens), logits)
    assert torch.isfinite(logits).all()


def test_default_width_embeds_256_and_two_persons_are_averaged():
    assert build_agcn(32).embed_dim == 256
    torch.manual_seed(0)
    model = build_agcn(5, "imigue22", base_channels=8, num_person=2).eval()
    x = torch.randn(3, 2, 8, 22, 3)
    with torch.no_grad():
        tokens = model.forward_features(x)
    assert tokens.shape == (3, 2, 22, 32)


@pytest.mark.parametrize(("frames", "expected"), [(16, 4), (13, 4), (9, 3), (4, 1)])
def test_temporal_stride_is_four_overall(frames, expected):
    model = build_agcn(4, "imigue22", base_channels=4).eval()
    with torch.no_grad():
        tokens = model.forward_features(torch.randn(1, 1, frames, 22, 3))
    assert tokens.shape[1] == expected
    strides = [b.temporal.conv.stride[0] for b in model.blocks]
    assert strides == [1, 1, 1, 1, 2, 1, 1, 2, 1, 1]
    assert model.blocks[0].residual is None  # the first block has no residual


def test_wrong_input_shape_names_expected_layout():
    model = build_agcn(4, "imigue22", base_channels=4)
    with pytest.raises(ValueError, match=r"V=22.*imigue22"):
        model(torch.randn(1, 1, 8, 35, 3))
    with pytest.raises(ConfigError, match="unknown joint layout"):
        build_agcn(4, "nonexistent")
    with pytest.raises(ConfigError, match="similarity"):
        build_agcn(4, similarity="cosine")


@pytest.mark.parametrize("similarity", ["softmax", "tanh"])
def test_gradients_reach_learned_and_data_dependent_graphs(similarity):
    torch.manual_seed(0)
    model = build_agcn(6, "imigue22", base_channels=8, similarity=similarity).train()
    x = torch.randn(4, 1, 8, 22, 3)
    model(x).logsumexp(dim=1).sum().backward()
    for i, block in enumerate(model.blocks):
        gc = block.graph_conv
        assert gc.graph_offset.grad is not None and gc.graph_offset.grad.abs().sum() > 0, f"B_k of block {i}"
        if similarity == "softmax":
            assert gc.query.weight.grad.abs().sum() > 0, f"theta of block {i}"
            assert gc.key.weight.grad.abs().sum() > 0, f"phi of block {i}"
        else:  # alpha starts at 0, so C_k first learns through alpha
            assert gc.alpha.grad.abs().sum() > 0, f"alpha of block {i}"
        assert "graph" not in dict(gc.named_parameters())  # A_k stays fixed
    # once alpha is non-zero the embeddings learn too
    if similarity == "tanh":
        model.zero_grad()
        for block in model.blocks:
            torch.nn.init.constant_(block.graph_conv.alpha, 0.5)
        model(x).logsumexp(dim=1).sum().backward()
        assert model.blocks[3].graph_conv.query.weight.grad.abs().sum() > 0


def test_dropout_and_reset_classifier():
    model = build_agcn(6, "imigue22", base_channels=4, dropout=0.5)
    assert model.head_drop.p == 0.5
    model.reset_classifier(0)
    x = torch.randn(2, 1, 8, 22, 3)
    assert model.eval()(x).shape == (2, 16)
    model.reset_classifier(3)
    assert model(x).shape == (2, 3)


def test_runs_in_another_dtype_and_has_no_hard_coded_device():
    model = build_agcn(3, "imigue22", base_channels=4, attention=True).double().eval()
    with torch.no_grad():
        out = model(torch.randn(1, 1, 8, 22, 3, dtype=torch.float64))
    assert out.dtype == torch.float64
    for module in (agcn_module, graph_module, weights_module):
        assert ".cuda(" not in Path(module.__file__).read_text()


def test_parameter_counts_match_the_published_models():
    # 2s-AGCN, one stream, NTU-sized (25 joints, 2 persons, 60 classes): the paper and
    # MMAction2 report about 3.47M / 3.5M parameters.
    assert n_params(AGCN(60, BODY25, num_person=2)) == 3_466_694
    # AAGCN, coco, 2 persons, 60 classes: PYSKL counts 3,760,228 with three conv_d biases per
    # block; ours stacks them into one (2 * out_channels fewer per block).
    folded = 2 * (64 * 4 + 128 * 3 + 256 * 3)
    assert n_params(AGCN(60, COCO17, num_person=2, attention=True)) == 3_760_228 - folded
    assert 3_300_000 < n_params(build_agcn(32, "miga35")) < 3_600_000
