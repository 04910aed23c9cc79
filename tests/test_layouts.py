import numpy as np
import pytest

from microgesture.domain.layouts import IMIGUE22, LAYOUTS, MIGA35, OPENPOSE67, convert, get_layout


@pytest.mark.parametrize("layout", list(LAYOUTS.values()), ids=list(LAYOUTS))
def test_graph_is_a_connected_tree(layout):
    # every joint reachable from the center, one parent each, no edge out of range
    assert len(layout.edges) == layout.num_joints - 1
    assert all(0 <= i < layout.num_joints and 0 <= j < layout.num_joints for i, j in layout.edges)
    assert layout.parents[layout.center] == layout.center
    for joint in range(layout.num_joints):
        seen, node = set(), joint
        while node != layout.center:
            assert node not in seen
            seen.add(node)
            node = layout.parents[node]
    a = layout.adjacency()
    assert np.array_equal(a, a.T) and a.sum() == 2 * len(layout.edges)


@pytest.mark.parametrize("layout", list(LAYOUTS.values()), ids=list(LAYOUTS))
def test_flip_pairs_swap_sides(layout):
    for left, right in layout.flip_pairs:
        assert layout.joint_names[left].startswith("l_")
        assert layout.joint_names[right] == "r_" + layout.joint_names[left][2:]
    perm = layout.flip_permutation()
    assert np.array_equal(perm[perm], np.arange(layout.num_joints))
    singles = [n for n in layout.joint_names if not n.startswith(("l_", "r_"))]
    assert len(singles) + 2 * len(layout.flip_pairs) == layout.num_joints


def test_openpose_semantics():
    # BODY_25 index 2 is the person's right shoulder (the MiGA reader calls it "ShoulderLeft")
    assert MIGA35.joint_names[2] == "r_shoulder"
    assert MIGA35.joint_names[4] == "r_wrist" and MIGA35.joint_names[7] == "l_wrist"
    assert MIGA35.joint_names[25:30] == tuple(f"r_{f}_tip" for f in ("thumb", "index", "middle", "ring", "pinky"))
    # fingertips hang from their own wrist
    assert MIGA35.parents[25] == 4 and MIGA35.parents[34] == 7
    assert OPENPOSE67.parents[25] == 4 and OPENPOSE67.parents[46] == 7


def test_imigue22_nose_is_connected():
    # the official baseline's graph leaves the nose isolated; ours links it to the neck and eyes
    nose = IMIGUE22.index("nose")
    assert sum(nose in e for e in IMIGUE22.edges) == 3
    assert IMIGUE22.num_joints == 22


def test_convert_selects_the_right_joints():
    kp = np.arange(35 * 2, dtype=np.float32).reshape(1, 1, 35, 2)
    out = convert(kp, MIGA35, IMIGUE22)
    assert out.shape == (1, 1, 22, 2)
    for j, name in enumerate(IMIGUE22.joint_names):
        assert np.array_equal(out[0, 0, j], kp[0, 0, MIGA35.index(name)])
    with pytest.raises(ValueError, match="no conversion"):
        convert(kp, IMIGUE22, MIGA35)
    with pytest.raises(ValueError, match="unknown joint layout"):
        get_layout("coco")
