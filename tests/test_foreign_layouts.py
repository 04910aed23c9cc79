"""NTU RGB+D 25 and COCO 17 as PYSKL / MMAction2 define them: graph, bones, their checkpoints, fine-tuning.

The reference values are written here the way PYSKL's `pyskl/utils/graph.py` (`Graph(layout,
mode='spatial')`) and `pose_related.py` (`JointToBone`) compute them, independently of our
layouts; the foreign checkpoints are generated from PYSKL's AAGCN naming and shapes (checked
against the shared key list when it is present), not from our model.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import tiny_overrides
from microgesture.data.transforms.features import FormatStream
from microgesture.domain.layouts import COCO17, NTU25, get_layout
from microgesture.models.agcn import build_agcn
from microgesture.models.graph import spatial_adjacency
from test_weights import listed_part, mmcv_wrap, pyskl_key_list, reference_forward

# PYSKL's Graph.get_layout: 'nturgb+d' is given 1-based, 'coco' 0-based; (child, parent) pairs.
NTU_NEIGHBOR_BASE = [(1, 2), (2, 21), (3, 21), (4, 3), (5, 21), (6, 5), (7, 6), (8, 7), (9, 21), (10, 9), (11, 10),
                     (12, 11), (13, 1), (14, 13), (15, 14), (16, 15), (17, 1), (18, 17), (19, 18), (20, 19),
                     (22, 8), (23, 8), (24, 12), (25, 12)]
PYSKL_INWARD = {
    "ntu25": [(i - 1, j - 1) for i, j in NTU_NEIGHBOR_BASE],
    "coco17": [(15, 13), (13, 11), (16, 14), (14, 12), (11, 5), (12, 6), (9, 7), (7, 5), (10, 8), (8, 6), (5, 0),
               (6, 0), (1, 0), (3, 1), (2, 0), (4, 2)],
}
# PYSKL's JointToBone pairs (v1, v2): bone[v1] = joint[v1] - joint[v2].
PYSKL_BONES = {
    "ntu25": [(0, 1), (1, 20), (2, 20), (3, 2), (4, 20), (5, 4), (6, 5), (7, 6), (8, 20), (9, 8), (10, 9), (11, 10),
              (12, 0), (13, 12), (14, 13), (15, 14), (16, 0), (17, 16), (18, 17), (19, 18), (21, 22), (20, 20),
              (22, 7), (23, 24), (24, 11)],
    "coco17": [(0, 0), (1, 0), (2, 0), (3, 1), (4, 2), (5, 0), (6, 0), (7, 5), (8, 6), (9, 7), (10, 8), (11, 0),
               (12, 0), (13, 11), (14, 12), (15, 13), (16, 14)],
}
# MMAction2 0.x (`skeleton_gcn/utils/graph.py`, strategy 'agcn') and the original 2s-AGCN code
# chain each hand tip through the thumb: (22, 23), (23, 8), (24, 25), (25, 12), 1-based.
MMA0_NTU_BASE = NTU_NEIGHBOR_BASE[:20] + [(22, 23), (23, 8), (24, 25), (25, 12)]


def pyskl_spatial(num_node: int, inward: list[tuple[int, int]]) -> np.ndarray:
    """PYSKL's Graph(mode='spatial').A: identity, normalised inward and outward edge matrices."""
    def edge2mat(link):
        a = np.zeros((num_node, num_node))
        for i, j in link:
            a[j, i] = 1
        return a

    def normalize_digraph(a):
        col = a.sum(0)
        return a @ np.diag(np.where(col > 0, 1 / np.where(col > 0, col, 1), 0))

    outward = [(j, i) for i, j in inward]
    return np.stack([edge2mat([(i, i) for i in range(num_node)]), normalize_digraph(edge2mat(inward)),
                     normalize_digraph(edge2mat(outward))])


# --- graph and bones ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["ntu25", "coco17"])
def test_graph_equals_pyskl_spatial_graph(name):
    layout = get_layout(name)
    expected = pyskl_spatial(layout.num_joints, PYSKL_INWARD[name])
    assert np.allclose(spatial_adjacency(layout), expected)
    assert layout.center == {"ntu25": 20, "coco17": 0}[name]


@pytest.mark.parametrize("name", ["ntu25", "coco17"])
def test_bones_equal_pyskl_joint_to_bone(name):
    layout = get_layout(name)
    assert layout.bone_pairs == tuple(sorted(PYSKL_BONES[name]))
    rng = np.random.default_rng(0)
    kp = rng.normal(size=(1, 6, layout.num_joints, 2)).astype(np.float32)
    sample = {"keypoint": kp, "keypoint_score": np.ones(kp.shape[:3], np.float32), "layout": name}
    bone = FormatStream("bone")(sample)["bone"]
    expected = np.zeros_like(kp)
    for v1, v2 in PYSKL_BONES[name]:
        expected[..., v1, :] = kp[..., v1, :] - kp[..., v2, :]
    assert np.allclose(bone[..., :2], expected)


def test_joint_names_follow_pyskl_order():
    assert COCO17.joint_names[:7] == ("nose", "l_eye", "r_eye", "l_ear", "r_ear", "l_shoulder", "r_shoulder")
    assert COCO17.joint_names[-2:] == ("l_ankle", "r_ankle")
    assert NTU25.joint_names[20] == "spine_shoulder" and NTU25.joint_names[4] == "l_shoulder"


# --- checkpoints in PYSKL / MMAction2 naming --------------------------------------------------------

def _block_specs(base: int) -> list[tuple[int, int, int]]:
    """(in, out, stride) of AAGCN's 10 blocks (PYSKL: 64x4, 128x3, 256x3, stride 2 where the width grows)."""
    widths = [base] * 4 + [2 * base] * 3 + [4 * base] * 3
    return [(3 if i == 0 else widths[i - 1], w, 2 if i in (4, 7) else 1) for i, w in enumerate(widths)]


def pyskl_aagcn_state(layout: str, *, persons: int = 2, classes: int = 60, base: int = 64, attention: bool = True,
                      head: str = "cls_head.fc_cls", seed: int = 0) -> dict[str, torch.Tensor]:
    """A PYSKL/MMAction2 1.x AAGCN state dict: their names and shapes, random trained-looking values.

    Each block's learned graph `gcn.A` starts as PYSKL's fixed graph plus a learned change.
    """
    gen = torch.Generator().manual_seed(seed)
    v = get_layout(layout).num_joints
    fixed = torch.tensor(pyskl_spatial(v, PYSKL_INWARD[layout]), dtype=torch.float32)

    def rand(*shape, scale=None):
        fan = int(np.prod(shape[1:])) if len(shape) > 1 else 1
        return torch.randn(*shape, generator=gen) * (scale if scale is not None else fan ** -0.5)

    def bn(prefix, c):
        return {f"{prefix}.weight": 1 + rand(c, scale=0.1), f"{prefix}.bias": rand(c, scale=0.1),
                f"{prefix}.running_mean": rand(c, scale=0.1), f"{prefix}.running_var": 1 + rand(c, scale=0.1).abs(),
                f"{prefix}.num_batches_tracked": torch.tensor(1000)}

    sd = {"backbone.A": fixed.clone(), **bn("backbone.data_bn", persons * v * 3)}
    for i, (cin, cout, stride) in enumerate(_block_specs(base)):
        g, inter = f"backbone.gcn.{i}.", cout // 4
        sd[g + "gcn.A"] = fixed + rand(3, v, v, scale=0.02)
        sd[g + "gcn.alpha"] = rand(1, scale=0.5)
        for k in range(3):
            for name, out in (("conv_d", cout), ("conv_a", inter), ("conv_b", inter)):
                sd[f"{g}gcn.{name}.{k}.weight"] = rand(out, cin, 1, 1)
                sd[f"{g}gcn.{name}.{k}.bias"] = rand(out, scale=0.1)
        if attention:
            ker = v if v % 2 else v - 1
            sd.update({g + "gcn.conv_ta.weight": rand(1, cout, 9), g + "gcn.conv_ta.bias": rand(1, scale=0.1),
                       g + "gcn.conv_sa.weight": rand(1, cout, ker), g + "gcn.conv_sa.bias": rand(1, scale=0.1),
                       g + "gcn.fc1c.weight": rand(cout // 2, cout), g + "gcn.fc1c.bias": rand(cout // 2, scale=0.1),
                       g + "gcn.fc2c.weight": rand(cout, cout // 2), g + "gcn.fc2c.bias": rand(cout, scale=0.1)})
        if cin != cout:
            sd[g + "gcn.down.0.weight"], sd[g + "gcn.down.0.bias"] = rand(cout, cin, 1, 1), rand(cout, scale=0.1)
            sd.update(bn(g + "gcn.down.1", cout))
        sd.update(bn(g + "gcn.bn", cout))
        sd[g + "tcn.conv.weight"], sd[g + "tcn.conv.bias"] = rand(cout, cout, 9, 1), rand(cout, scale=0.1)
        sd.update(bn(g + "tcn.bn", cout))
        if i > 0 and (cin != cout or stride != 1):
            sd[g + "residual.conv.weight"], sd[g + "residual.conv.bias"] = rand(cout, cin, 1, 1), rand(cout, scale=0.1)
            sd.update(bn(g + "residual.bn", cout))
    sd[head + ".weight"], sd[head + ".bias"] = rand(classes, 4 * base), rand(classes, scale=0.1)
    return sd


def test_generated_keys_and_shapes_equal_the_pyskl_key_list():
    listed = pyskl_key_list()
    ours = {k: tuple(t.shape) for k, t in pyskl_aagcn_state("coco17").items()}
    assert listed_part(ours, listed) == listed


VARIANTS = {  # name: (attention, head prefix)
    "pyskl_aagcn": (True, "cls_head.fc_cls"),
    "pyskl_2sagcn": (False, "cls_head.fc_cls"),
    "mmaction2_aagcn": (True, "cls_head.fc"),
    "mmaction2_2sagcn": (False, "cls_head.fc"),
}


@pytest.mark.parametrize("layout", ["ntu25", "coco17"])
def test_full_size_checkpoints_load_with_a_clean_report(tmp_path, layout):
    path = tmp_path / f"aagcn_{layout}.pth"
    torch.save(mmcv_wrap(pyskl_aagcn_state(layout)), path)  # 64-128-256 wide, 2 persons, 60 classes
    model = build_agcn(60, layout, num_person=2, attention=True, weights=path)
    assert model.load_report.complete and model.load_report.notes == [], model.load_report.summary()
    assert len(model.load_report.loaded) == len(model.state_dict())


def _double(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.double() if v.is_floating_point() else v for k, v in state.items()}


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("layout", ["ntu25", "coco17"])
def test_foreign_checkpoints_load_cleanly_and_compute_the_same(tmp_path, layout, variant):
    attention, head = VARIANTS[variant]
    state = pyskl_aagcn_state(layout, base=16, attention=attention, head=head)
    path = tmp_path / f"{variant}_{layout}.pth"
    torch.save(mmcv_wrap(state), path)
    model = build_agcn(60, layout, base_channels=16, num_person=2, attention=attention, similarity="tanh",
                       weights=path).eval()
    report = model.load_report
    assert report.complete and report.notes == [], report.summary()
    # the learned graph is PYSKL's fixed graph plus the learned change: our A_k + B_k must equal it
    block = model.blocks[3].graph_conv
    assert torch.allclose(block.graph + block.graph_offset, state["backbone.gcn.3.gcn.A"], atol=1e-6)
    x = torch.randn(2, 2, 8, get_layout(layout).num_joints, 3, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():  # in float64: random weights make large activations
        ours, theirs = model.double()(x.double()), reference_forward(_double(state), x.double())
    assert torch.allclose(ours, theirs, rtol=1e-5, atol=1e-5 * theirs.abs().max().item())  # float32 weights


def test_mmaction2_0x_ntu_graph_differs_at_the_hands_and_still_computes_the_same(tmp_path):
    state = pyskl_aagcn_state("ntu25", base=16, attention=False, head="cls_head.fc")
    theirs_fixed = torch.tensor(pyskl_spatial(25, [(i - 1, j - 1) for i, j in MMA0_NTU_BASE]), dtype=torch.float32)
    for i in range(10):  # the same learned graphs, built on the older fixed graph
        state[f"backbone.gcn.{i}.gcn.A"] += theirs_fixed - state["backbone.A"]
    state["backbone.A"] = theirs_fixed
    path = tmp_path / "agcn_mma0_graph.pth"
    torch.save(state, path)
    model = build_agcn(60, "ntu25", base_channels=16, num_person=2, similarity="tanh", weights=path).eval()
    (note,) = model.load_report.notes
    assert "differs from layout 'ntu25'" in note
    assert "l_hand_tip" in note and "r_thumb" in note and "head" not in note.split(" at ")[1].split(":")[0]
    x = torch.randn(1, 2, 8, 25, 3, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    with torch.no_grad():
        ours, theirs = model.double()(x), reference_forward(_double(state), x)
    assert torch.allclose(ours, theirs, rtol=1e-5, atol=1e-5 * theirs.abs().max().item())  # float32 weights


# --- fine-tuning a COCO checkpoint on iMiGUE-layout clips ------------------------------------------

def test_coco_checkpoint_fine_tunes_on_miga35_clips(tmp_path, tiny_annotations):
    from microgesture.train.build import build_model
    from microgesture.train.checkpoint import read_run_checkpoint
    from microgesture.train.config import load_config
    from microgesture.train.run import fit

    state = pyskl_aagcn_state("coco17", persons=2, base=16, attention=True)
    path = tmp_path / "aagcn_coco_pyskl.pth"
    torch.save(mmcv_wrap(state), path)
    sets = [s for s in tiny_overrides(tiny_annotations, epochs=1) if not s.startswith("model.")]
    cfg = load_config(None, sets + [
        "data.layout=coco17", "model.streams.joint.encoder=agcn", "model.streams.joint.base_channels=16",
        "model.streams.joint.attention=true", f"model.streams.joint.weights={path}", "optim.lr=0.01",
    ])
    encoder = build_model(cfg.model, {"mg": 4}, cfg.data.layout).encoders["joint"]
    report = encoder.load_report
    assert not report.missing and not report.unexpected
    assert {k for k, _, _ in report.mismatched} == {"head.weight", "head.bias"}  # 60 classes -> 4
    assert any("data_bn normalises 2 person(s)" in n for n in report.notes)
    assert not any("graph" in n for n in report.notes)
    run = fit(cfg, tmp_path / "run")
    trained = read_run_checkpoint(run.last_checkpoint)["state_dict"]
    start = state["backbone.gcn.5.tcn.conv.weight"]
    tuned = next(v for k, v in trained.items() if k.endswith("encoders.joint.blocks.5.temporal.conv.weight"))
    assert not torch.equal(tuned, start)  # it trained ...
    assert torch.nn.functional.cosine_similarity(tuned.flatten(), start.flatten(), dim=0) > 0.9  # ... from PYSKL's
