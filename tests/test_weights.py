"""Foreign checkpoints: safe reading, unwrapping, PYSKL / MMAction2 AGCN names, honest reports.

Foreign files are made from our own tiny models renamed to the reference names (checked against
the shared key list), and checked against an independent forward written in those names.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from microgesture.domain.layouts import JointLayout
from microgesture.errors import DataError
from microgesture.models.agcn import AGCN, build_agcn
from microgesture.models.weights import LoadReport, extract_state_dict, load_weights, read_checkpoint

KEY_LIST = Path(__file__).resolve().parents[2] / "shared" / "reference" / "pyskl_gcn_keys.txt"
COCO_INWARD = ((15, 13), (13, 11), (16, 14), (14, 12), (11, 5), (12, 6), (9, 7), (7, 5), (10, 8), (8, 6),
               (5, 0), (6, 0), (1, 0), (3, 1), (2, 0), (4, 2))
COCO17 = JointLayout("coco17", tuple(f"j{i}" for i in range(17)), COCO_INWARD, center=0, flip_pairs=())
STRIDES = (1, 1, 1, 1, 2, 1, 1, 2, 1, 1)


# --- making foreign checkpoints ---------------------------------------------------------------

def randomize(model: AGCN, seed: int = 0) -> AGCN:
    """Non-trivial values everywhere, so that every mapped tensor matters for the output.

    Batch-norm statistics are then measured on random input, so activations keep a sane scale.
    """
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in list(model.named_parameters()) + list(model.named_buffers()):
            if not t.is_floating_point() or name.endswith("graph") or name == "adjacency":
                continue
            noise = torch.randn(t.shape, generator=gen)
            if name.endswith("running_var"):
                t.copy_(noise.abs() * 0.5 + 0.5)
            elif re.search(r"norm\.weight$", name):
                t.copy_(1 + 0.3 * noise)
            else:
                t.copy_(t + 0.1 * noise)
        norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
        for norm in norms:
            norm.momentum = None  # a plain average over the calibration batches
            norm.reset_running_stats()
        x = torch.randn(4, model.num_person, 12, model.num_joints, model.in_channels, generator=gen)
        model.train()
        for _ in range(2):
            model(x)
        for norm in norms:
            norm.momentum = 0.1
    return model.eval()


def to_reference_names(model: AGCN, style: str = "pyskl") -> dict[str, torch.Tensor]:
    """Our state dict in PYSKL ("pyskl"), MMAction2 1.x ("mma1") or MMAction2 0.x ("mma0") names."""
    sd, out = model.state_dict(), {}
    old = style == "mma0"
    out["backbone.A"] = model.adjacency.clone()
    for key in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked"):
        out[f"backbone.data_bn.{key}"] = sd[f"input_norm.{key}"]
    for i, block in enumerate(model.blocks):
        p, q = f"blocks.{i}.", (f"backbone.agcn_networks.{i}." if old else f"backbone.gcn.{i}.")
        gc = block.graph_conv
        if old:
            out[q + "gcn.PA"] = sd[p + "graph_conv.graph_offset"]
        else:
            out[q + "gcn.A"] = model.adjacency + sd[p + "graph_conv.graph_offset"]
            out[q + "gcn.alpha"] = sd[p + "graph_conv.alpha"]
        for ours, theirs in (("query", "conv_a"), ("key", "conv_b")):
            for leaf in ("weight", "bias"):
                for k, part in enumerate(sd[f"{p}graph_conv.{ours}.{leaf}"].chunk(3, dim=0)):
                    out[f"{q}gcn.{theirs}.{k}.{leaf}"] = part
        for k, part in enumerate(sd[p + "graph_conv.proj.weight"].chunk(3, dim=1)):
            out[f"{q}gcn.conv_d.{k}.weight"] = part
            out[f"{q}gcn.conv_d.{k}.bias"] = sd[p + "graph_conv.proj.bias"] * (0.2, 0.3, 0.5)[k]
        renames = {"graph_conv.shortcut.conv.": "gcn.down.0.", "graph_conv.shortcut.norm.": "gcn.down.1.",
                   "graph_conv.norm.": "gcn.bn.", "graph_conv.attention.spatial.": "gcn.conv_sa.",
                   "graph_conv.attention.temporal.": "gcn.conv_ta.", "graph_conv.attention.squeeze.": "gcn.fc1c.",
                   "graph_conv.attention.excite.": "gcn.fc2c.",
                   "temporal.conv.": "tcn.0." if old else "tcn.conv.", "temporal.norm.": "tcn.1." if old else "tcn.bn.",
                   "residual.conv.": "residual.0." if old else "residual.conv.",
                   "residual.norm.": "residual.1." if old else "residual.bn."}
        for key, value in sd.items():
            for ours, theirs in renames.items():
                if key.startswith(p + ours):
                    out[q + theirs + key[len(p + ours):]] = value
        assert gc.graph_offset is not None
    head = {"pyskl": "cls_head.fc_cls.", "mma1": "cls_head.fc.", "mma0": "cls_head.fc_cls."}[style]
    out[head + "weight"], out[head + "bias"] = sd["head.weight"], sd["head.bias"]
    return out


def reference_forward(sd: dict[str, torch.Tensor], x: torch.Tensor, softmax: bool = False) -> torch.Tensor:
    """Logits of the reference AGCN/AAGCN written directly in its own weight names."""
    def conv(t, key, stride=1, pad=0):
        return F.conv2d(t, sd[key + ".weight"], sd[key + ".bias"], stride=(stride, 1), padding=(pad, 0))

    def bn(t, key):
        return F.batch_norm(t, sd[key + ".running_mean"], sd[key + ".running_var"],
                            sd[key + ".weight"], sd[key + ".bias"], training=False)

    n, m, t, v, c = x.shape
    bn_size = sd["backbone.data_bn.weight"].numel()
    y = x.permute(0, 1, 3, 4, 2).reshape(n * m * v * c // bn_size, bn_size, t)
    y = bn(y, "backbone.data_bn").view(n, m, v, c, t).permute(0, 1, 3, 4, 2).reshape(n * m, c, t, v)
    prefix = "backbone.agcn_networks." if "backbone.agcn_networks.0.gcn.PA" in sd else "backbone.gcn."
    old = prefix.endswith("networks.")
    for i, stride in enumerate(STRIDES):
        g = f"{prefix}{i}."
        nm, ch, tt, vv = y.shape
        z = 0
        for k in range(3):
            a = conv(y, f"{g}gcn.conv_a.{k}")
            b = conv(y, f"{g}gcn.conv_b.{k}")
            inter = a.shape[1]
            s = a.permute(0, 3, 1, 2).reshape(nm, vv, inter * tt) @ b.reshape(nm, inter * tt, vv) / (inter * tt)
            if softmax:
                graph = s.softmax(-2) + sd["backbone.A"][k] + sd[g + "gcn.PA"][k]
            else:
                graph = sd[g + "gcn.A"][k] + torch.tanh(s) * sd[g + "gcn.alpha"]
            z = z + conv((y.reshape(nm, ch * tt, vv) @ graph).reshape(nm, ch, tt, vv), f"{g}gcn.conv_d.{k}")
        down = bn(conv(y, g + "gcn.down.0"), g + "gcn.down.1") if g + "gcn.down.0.weight" in sd else y
        z = F.relu(bn(z, g + "gcn.bn") + down)
        if g + "gcn.conv_sa.weight" in sd:
            pad = (sd[g + "gcn.conv_sa.weight"].shape[-1] - 1) // 2
            z = z * torch.sigmoid(F.conv1d(z.mean(-2), sd[g + "gcn.conv_sa.weight"], sd[g + "gcn.conv_sa.bias"],
                                           padding=pad)).unsqueeze(-2) + z
            z = z * torch.sigmoid(F.conv1d(z.mean(-1), sd[g + "gcn.conv_ta.weight"], sd[g + "gcn.conv_ta.bias"],
                                           padding=4)).unsqueeze(-1) + z
            se = F.relu(F.linear(z.mean(-1).mean(-1), sd[g + "gcn.fc1c.weight"], sd[g + "gcn.fc1c.bias"]))
            se = torch.sigmoid(F.linear(se, sd[g + "gcn.fc2c.weight"], sd[g + "gcn.fc2c.bias"]))
            z = z * se[:, :, None, None] + z
        tcn_conv, tcn_bn = ("tcn.0", "tcn.1") if old else ("tcn.conv", "tcn.bn")
        z = bn(conv(z, g + tcn_conv, stride, 4), g + tcn_bn)
        res_conv, res_bn = ("residual.0", "residual.1") if old else ("residual.conv", "residual.bn")
        if i == 0:
            res = 0
        elif g + res_conv + ".weight" in sd:
            res = bn(conv(y, g + res_conv, stride), g + res_bn)
        else:
            res = y
        y = F.relu(z + res)
    pooled = y.view(n, m, y.shape[1], -1).mean(-1).mean(1)
    head = "cls_head.fc_cls" if "cls_head.fc_cls.weight" in sd else "cls_head.fc"
    return F.linear(pooled, sd[head + ".weight"], sd[head + ".bias"])


def mmcv_wrap(state: dict) -> dict:
    return {"meta": {"epoch": np.int64(3), "mmcv_version": "1.7.0", "CLASSES": ("a", "b")},
            "state_dict": state, "optimizer": {"state": {}, "param_groups": [{"lr": 0.1}]}}


@pytest.fixture(scope="module")
def coco_aagcn() -> AGCN:
    return randomize(AGCN(7, COCO17, base_channels=8, num_person=2, attention=True))


@pytest.fixture(scope="module")
def coco_x() -> torch.Tensor:
    return torch.randn(2, 2, 12, 17, 3, generator=torch.Generator().manual_seed(5))


# --- names and shapes against the reference key list ------------------------------------------

def pyskl_key_list() -> dict[str, tuple[int, ...]]:
    """Key -> shape of PYSKL's AAGCN (coco, 2 persons) from the shared reference list; skips when absent."""
    if not KEY_LIST.is_file():
        pytest.skip(f"reference key list not found at {KEY_LIST}")
    text = KEY_LIST.read_text().split("===== STGCN")[0]
    return {m.group(1): tuple(int(d) for d in re.findall(r"\d+", m.group(2)))
            for m in re.finditer(r"^(backbone\.\S+|cls_head\.\S+) \(([\d, ]*)\)$", text, re.M)}


def listed_part(shapes: dict[str, tuple[int, ...]], listed: dict[str, tuple[int, ...]]) -> dict[str, tuple[int, ...]]:
    """The entries of `shapes` outside blocks, or in the blocks the reference list shows (it elides some)."""
    blocks = {m.group(1) for k in listed if (m := re.match(r"backbone\.gcn\.(\d+)\.", k))}
    return {k: s for k, s in shapes.items()
            if not (m := re.match(r"backbone\.gcn\.(\d+)\.", k)) or m.group(1) in blocks}


def test_renamed_keys_match_the_pyskl_key_list():
    listed = pyskl_key_list()
    model = AGCN(60, COCO17, num_person=2, attention=True)  # the listed model: full width, coco, 2 persons
    ours = {k: tuple(v.shape) for k, v in to_reference_names(model).items()}
    blocks = {m.group(1) for k in listed if (m := re.match(r"backbone\.gcn\.(\d+)\.", k))}
    assert blocks == {"0", "1", "4"} and len(listed) > 140
    assert listed_part(ours, listed) == listed


# --- foreign checkpoints, end to end ------------------------------------------------------------

@pytest.mark.parametrize("wrapped", [True, False], ids=["mmcv", "bare"])
@pytest.mark.parametrize("style", ["pyskl", "mma1"])
def test_pyskl_and_mmaction2_checkpoints_reproduce_the_source(tmp_path, coco_aagcn, coco_x, wrapped, style):
    foreign = to_reference_names(coco_aagcn, style)
    path = tmp_path / "aagcn.pth"
    torch.save(mmcv_wrap(foreign) if wrapped else foreign, path)
    model = build_agcn(7, COCO17, base_channels=8, num_person=2, attention=True, weights=path).eval()
    with torch.no_grad():
        expected = coco_aagcn(coco_x)
        assert torch.allclose(model(coco_x), expected, atol=1e-4)
        assert torch.allclose(reference_forward(foreign, coco_x), expected, atol=1e-4)
    report = model.load_report
    assert report.complete and report.notes == [], report.summary()


def test_mmaction2_0x_agcn_with_softmax_and_its_own_fixed_graph(tmp_path, coco_x):
    source = randomize(AGCN(7, COCO17, base_channels=8, num_person=1, similarity="softmax"), seed=1)
    foreign = to_reference_names(source, "mma0")
    # a checkpoint trained on another fixed graph: the loader folds the difference into B_k
    delta = 0.05 * torch.randn(3, 17, 17, generator=torch.Generator().manual_seed(2))
    foreign["backbone.A"] = foreign["backbone.A"] + delta
    for i in range(10):
        foreign[f"backbone.agcn_networks.{i}.gcn.PA"] = foreign[f"backbone.agcn_networks.{i}.gcn.PA"] - delta
    path = tmp_path / "agcn_mma0.pth"
    torch.save(mmcv_wrap(foreign), path)
    model = build_agcn(7, COCO17, base_channels=8, weights=path).eval()
    x = coco_x[:, :1]
    with torch.no_grad():
        assert torch.allclose(model(x), source(x), atol=1e-4)
        assert torch.allclose(reference_forward(foreign, x, softmax=True), source(x), atol=1e-4)
    assert model.load_report.complete
    assert any("fixed graph differs" in note for note in model.load_report.notes)


def test_other_class_count_drops_the_head_with_a_note(tmp_path, coco_aagcn, coco_x):
    path = tmp_path / "aagcn60.pth"
    torch.save(to_reference_names(coco_aagcn), path)
    model = build_agcn(3, COCO17, base_channels=8, num_person=2, attention=True, weights=path).eval()
    report = model.load_report
    assert {k for k, _, _ in report.mismatched} == {"head.weight", "head.bias"}
    assert any("7 classes" in n and "has 3" in n for n in report.notes)
    assert not report.missing and not report.unexpected
    with torch.no_grad():
        assert torch.allclose(model.forward_features(coco_x), coco_aagcn.forward_features(coco_x), atol=1e-4)


def test_data_bn_for_two_persons_loads_person_zero_into_a_one_person_model(tmp_path, coco_aagcn):
    path = tmp_path / "aagcn_m2.pth"
    torch.save(to_reference_names(coco_aagcn), path)
    model = build_agcn(7, COCO17, base_channels=8, num_person=1, attention=True, weights=path)
    assert torch.equal(model.input_norm.running_mean, coco_aagcn.input_norm.running_mean[:51])
    assert any("data_bn normalises 2 person(s)" in n for n in model.load_report.notes)
    assert model.load_report.complete


def test_data_bn_of_another_size_is_reported(tmp_path, coco_aagcn):
    foreign = to_reference_names(coco_aagcn)
    foreign["backbone.data_bn.weight"] = torch.ones(50)
    path = tmp_path / "odd_bn.pth"
    torch.save(foreign, path)
    model = build_agcn(7, COCO17, base_channels=8, num_person=2, attention=True, weights=path)
    assert ("input_norm.weight", (50,), (102,)) in model.load_report.mismatched
    assert "input_norm.weight checkpoint (50,) vs model (102,)" in model.load_report.summary()


def test_another_layout_is_an_error_naming_file_and_joint_counts(tmp_path, coco_aagcn):
    path = tmp_path / "coco_aagcn.pth"
    torch.save(mmcv_wrap(to_reference_names(coco_aagcn)), path)
    with pytest.raises(DataError, match=r"coco_aagcn\.pth.*17-joint.*'miga35' has 35") as err:
        build_agcn(7, "miga35", base_channels=8, num_person=2, attention=True, weights=path)
    assert err.value.path == path


def test_variant_mismatches_say_how_to_build_the_model(tmp_path, coco_aagcn):
    path = tmp_path / "aagcn.pth"
    torch.save(to_reference_names(coco_aagcn), path)
    with pytest.raises(DataError, match="similarity='tanh'"):
        build_agcn(7, COCO17, base_channels=8, num_person=2, weights=path)
    with pytest.raises(DataError, match="attention=False"):
        build_agcn(7, COCO17, base_channels=8, num_person=2, similarity="tanh", weights=path)


def test_stgcn_and_unrelated_checkpoints_are_refused(tmp_path):
    stgcn = {"backbone.data_bn.weight": torch.ones(51), "backbone.gcn.0.gcn.PA": torch.ones(3, 17, 17),
             "backbone.gcn.0.gcn.A": torch.ones(3, 17, 17), "backbone.gcn.0.gcn.conv.weight": torch.ones(192, 3, 1, 1),
             "backbone.gcn.0.tcn.conv.weight": torch.ones(64, 64, 9, 1)}
    torch.save({"state_dict": stgcn}, tmp_path / "stgcn.pth")
    with pytest.raises(DataError, match=r"stgcn\.pth.*ST-GCN"):
        build_agcn(7, COCO17, base_channels=8, weights=tmp_path / "stgcn.pth")
    torch.save({"conv1.weight": torch.ones(3), "fc.bias": torch.ones(2)}, tmp_path / "resnet.pth")
    with pytest.raises(DataError, match=r"resnet\.pth.*another architecture"):
        build_agcn(7, COCO17, base_channels=8, weights=tmp_path / "resnet.pth")


def test_unreadable_and_missing_files_are_data_errors(tmp_path):
    bad = tmp_path / "broken.pth"
    bad.write_bytes(b"not a checkpoint at all")
    with pytest.raises(DataError, match=r"broken\.pth.*cannot read"):
        build_agcn(7, COCO17, base_channels=8, weights=bad)
    with pytest.raises(DataError, match=r"absent\.pth.*not found"):
        build_agcn(7, COCO17, base_channels=8, weights=tmp_path / "absent.pth")
    torch.save({"meta": {"epoch": 1}}, tmp_path / "empty.pth")
    with pytest.raises(DataError, match="no state dict"):
        load_weights(build_agcn(7, COCO17, base_channels=8), tmp_path / "empty.pth")


# --- our own checkpoints and the reader -----------------------------------------------------------

def test_own_checkpoints_bare_and_lightning_style(tmp_path, coco_x):
    source = randomize(AGCN(5, COCO17, base_channels=8, num_person=2), seed=3)
    torch.save(source.state_dict(), tmp_path / "own.pth")
    torch.save({"state_dict": {f"model.{k}": v for k, v in source.state_dict().items()}, "epoch": 2},
               tmp_path / "lightning.ckpt")
    for name in ("own.pth", "lightning.ckpt"):
        model = build_agcn(5, COCO17, base_channels=8, num_person=2, weights=tmp_path / name).eval()
        assert model.load_report.complete, model.load_report.summary()
        with torch.no_grad():
            assert torch.allclose(model(coco_x), source(coco_x), atol=1e-6)
    with pytest.raises(DataError, match="17-joint"):
        build_agcn(5, "imigue22", base_channels=8, num_person=2, weights=tmp_path / "own.pth")


FLAG: list[str] = []


def _would_run(path: str) -> str:  # what an attacker's pickle would call on load
    Path(path).write_text("executed")
    return path


class _Hook:
    def __init__(self, flag: Path):
        self.flag = str(flag)

    def __reduce__(self):
        return (_would_run, (self.flag,))


def test_reader_never_runs_code_from_the_file(tmp_path):
    flag = tmp_path / "flag.txt"
    state = {"w": torch.arange(3.0)}
    torch.save({"meta": {"hook": _Hook(flag), "step": np.float32(1.5)}, "state_dict": state}, tmp_path / "c.pth")
    assert not flag.exists()
    loaded = read_checkpoint(tmp_path / "c.pth")
    assert not flag.exists()
    assert torch.equal(extract_state_dict(loaded, tmp_path / "c.pth")["w"], state["w"])


def test_extract_strips_data_parallel_prefix_and_report_text():
    state = extract_state_dict({"module.a": torch.ones(1), "module.b": torch.zeros(1)}, "x.pth")
    assert set(state) == {"a", "b"}
    report = LoadReport(path=Path("x.pth"), loaded=["a"], missing=["b"], notes=["hello"])
    assert not report.complete
    text = str(report)
    assert "x.pth: loaded 1 entries, 1 missing" in text and "note: hello" in text and "missing: b" in text
    assert math.isfinite(float(len(text)))
