"""PoseC3D's SlowOnly (models/posec3d.py): foreign checkpoints in PYSKL / MMAction2 names, checked
against an independent forward written in those names; refusals; the memory-saving paths give
the same gradients as the plain ones."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from microgesture.errors import DataError
from microgesture.models.posec3d import MaxPoolRecompute, build_posec3d

# Key names and shapes printed from MMAction2 1.2.0's own PoseC3D (SlowOnly-R50, COCO-17, 60 classes).
MMACTION2_KEYS = Path(__file__).parent / "data" / "mmaction2_posec3d_slowonly_r50_keys.txt"
BLOCKS = (2, 1, 2)  # small, but with every kind of block: plain, strided, temporal, repeated


def foreign_state(in_channels: int, base: int, blocks=BLOCKS, classes: int = 7, seed: int = 0) -> dict:
    """A SlowOnly + I3D head state dict in PYSKL / MMAction2 names (mmcv ConvModule: .conv, .bn)."""
    gen = torch.Generator().manual_seed(seed)
    state = {}

    def conv_module(prefix, cin, cout, kernel):
        fan = cin * math.prod(kernel)
        state[f"{prefix}.conv.weight"] = torch.randn(cout, cin, *kernel, generator=gen) * math.sqrt(2 / fan)
        state[f"{prefix}.bn.weight"] = 1 + 0.2 * torch.randn(cout, generator=gen)
        state[f"{prefix}.bn.bias"] = 0.1 * torch.randn(cout, generator=gen)
        state[f"{prefix}.bn.running_mean"] = 0.1 * torch.randn(cout, generator=gen)
        state[f"{prefix}.bn.running_var"] = 0.5 + torch.rand(cout, generator=gen)
        state[f"{prefix}.bn.num_batches_tracked"] = torch.tensor(100)

    conv_module("backbone.conv1", in_channels, base, (1, 7, 7))
    cin = base
    for i, count in enumerate(blocks):
        planes = base * 2**i
        for j in range(count):
            prefix = f"backbone.layer{i + 1}.{j}"
            first_in = cin if j == 0 else planes * 4
            conv_module(f"{prefix}.conv1", first_in, planes, (3, 1, 1) if i > 0 else (1, 1, 1))
            conv_module(f"{prefix}.conv2", planes, planes, (1, 3, 3))
            conv_module(f"{prefix}.conv3", planes, planes * 4, (1, 1, 1))
            if j == 0:
                conv_module(f"{prefix}.downsample", first_in, planes * 4, (1, 1, 1))
        cin = planes * 4
    state["cls_head.fc_cls.weight"] = 0.1 * torch.randn(classes, cin, generator=gen)
    state["cls_head.fc_cls.bias"] = 0.1 * torch.randn(classes, generator=gen)
    return state


def reference_forward(state: dict, x: torch.Tensor, blocks=BLOCKS) -> torch.Tensor:
    """SlowOnly as PoseC3D's configs build it (ResNet3dSlowOnly: conv1_stride 1, pool1_stride 1,
    inflate (0, 1, 1), spatial strides 2, temporal stride 2 in the last stage), in eval mode."""

    def conv_module(prefix, x, stride=1, relu=True):
        weight = state[f"{prefix}.conv.weight"]
        x = F.conv3d(x, weight, None, stride, tuple(k // 2 for k in weight.shape[2:]))
        x = F.batch_norm(x, state[f"{prefix}.bn.running_mean"], state[f"{prefix}.bn.running_var"],
                         state[f"{prefix}.bn.weight"], state[f"{prefix}.bn.bias"], False, 0.0, 1e-5)
        return F.relu(x) if relu else x

    x = F.max_pool3d(conv_module("backbone.conv1", x), (1, 3, 3), 1, (0, 1, 1))
    for i, count in enumerate(blocks):
        for j in range(count):
            prefix = f"backbone.layer{i + 1}.{j}"
            stride = (2 if i == len(blocks) - 1 else 1, 2, 2) if j == 0 else 1
            out = conv_module(f"{prefix}.conv2", conv_module(f"{prefix}.conv1", x), stride)
            out = conv_module(f"{prefix}.conv3", out, relu=False)
            shortcut = conv_module(f"{prefix}.downsample", x, stride, relu=False) if j == 0 else x
            x = F.relu(out + shortcut)
    return F.linear(x.mean((2, 3, 4)), state["cls_head.fc_cls.weight"], state["cls_head.fc_cls.bias"])


def save(tmp_path, state, name="posec3d.pth", wrap=True):
    path = tmp_path / name
    torch.save({"meta": {"epoch": 24}, "state_dict": state} if wrap else state, path)
    return path


def test_pyskl_checkpoint_loads_and_matches_the_reference_forward(tmp_path):
    state = foreign_state(17, 8)
    path = save(tmp_path, state)
    model = build_posec3d(7, 17, base_channels=8, stage_blocks=BLOCKS, weights=path).eval()
    report = model.load_report
    assert report.complete, report.summary()
    assert len(report.loaded) == len(state)
    x = torch.rand(2, 17, 6, 20, 20)
    with torch.no_grad():
        np_ref, ours = reference_forward(state, x), model(x)
    torch.testing.assert_close(ours, np_ref, atol=1e-4, rtol=1e-4)
    tokens = model.forward_features(x)
    assert tokens.shape == (2, 3 * 3 * 3, 8 * 4 * 4)  # T 6 -> 3, 20 -> 10 -> 5 -> 3


def test_names_match_mmaction2_and_its_r50_checkpoint_loads_completely(tmp_path):
    lines = [line.rsplit(" (", 1) for line in MMACTION2_KEYS.read_text().splitlines() if not line.startswith("#")]
    reference = {key: tuple(int(d) for d in shape.rstrip(")").split(",") if d.strip()) for key, shape in lines}
    state = foreign_state(17, 32, blocks=(4, 6, 3), classes=60)
    assert {k: tuple(v.shape) for k, v in state.items()} == reference
    model = build_posec3d(60, 17, weights=save(tmp_path, state))
    assert model.load_report.complete and len(model.load_report.loaded) == len(reference)
    assert sum(p.numel() for p in model.parameters()) == 2024860  # as MMAction2 counts it


def test_own_checkpoint_under_a_lightning_prefix_and_another_head(tmp_path):
    model = build_posec3d(5, 6, base_channels=4, stage_blocks=(1, 1))
    state = {f"model.encoders.heatmap.{k}": v for k, v in model.state_dict().items()}
    loaded = build_posec3d(5, 6, base_channels=4, stage_blocks=(1, 1), weights=save(tmp_path, state, wrap=False))
    assert loaded.load_report.complete
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    other = build_posec3d(3, 6, base_channels=4, stage_blocks=(1, 1), weights=save(tmp_path, state, "b.pth"))
    assert [k for k, _, _ in other.load_report.mismatched] == ["head.weight", "head.bias"]
    assert any("5 classes, the model has 3" in n for n in other.load_report.notes)


def test_checkpoints_for_another_input_or_depth_are_refused(tmp_path):
    limbs = save(tmp_path, foreign_state(19, 8), "limb.pth")
    with pytest.raises(DataError, match=r"limb\.pth.*reads 19 heatmap channels, the model 17"):
        build_posec3d(7, 17, base_channels=8, stage_blocks=BLOCKS, weights=limbs)
    deeper = save(tmp_path, foreign_state(17, 8, blocks=(4, 6, 3)), "r50.pth")
    with pytest.raises(DataError, match=r"stages of \(4, 6, 3\) blocks, the model \(2, 1, 2\)"):
        build_posec3d(7, 17, base_channels=8, stage_blocks=BLOCKS, weights=deeper)
    wider = save(tmp_path, foreign_state(17, 16), "wide.pth")
    with pytest.raises(DataError, match="stem has 16 channels"):
        build_posec3d(7, 17, base_channels=8, stage_blocks=BLOCKS, weights=wider)
    unrelated = save(tmp_path, {"encoder.weight": torch.zeros(3)}, "other.pth")
    with pytest.raises(DataError, match="another architecture"):
        build_posec3d(7, 17, weights=unrelated)


def test_memory_saving_paths_give_the_plain_gradients():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 2, 9, 9, requires_grad=True)
    MaxPoolRecompute.apply(x).pow(2).sum().backward()
    recomputed = x.grad.clone()
    x.grad = None
    F.max_pool3d(x, (1, 3, 3), 1, (0, 1, 1)).pow(2).sum().backward()
    torch.testing.assert_close(recomputed, x.grad)

    grads, stats = [], []
    for recompute in (False, True):
        torch.manual_seed(1)
        model = build_posec3d(4, 5, base_channels=4, stage_blocks=(1, 1), recompute_stem=recompute).train()
        with torch.no_grad():  # non-zero residual branches, so every weight gets a gradient
            for block in model.stages:
                block[0].conv3.norm.weight.fill_(1.0)
        x = torch.rand(3, 5, 4, 16, 16, generator=torch.Generator().manual_seed(2))
        F.cross_entropy(model(x), torch.tensor([0, 1, 2])).backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters()})
        stats.append({n: b.clone() for n, b in model.named_buffers()})
    for name, grad in grads[0].items():
        torch.testing.assert_close(grads[1][name], grad, msg=name)
        assert grad.abs().sum() > 0, name
    for name, value in stats[0].items():  # running statistics updated once, not again by the recomputation
        torch.testing.assert_close(stats[1][name], value, msg=name)


def test_bf16_autocast_training_step_runs_and_is_finite():
    model = build_posec3d(3, 5, base_channels=4, stage_blocks=(1, 1)).train()
    x = torch.rand(2, 5, 4, 16, 16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = F.cross_entropy(model(x), torch.tensor([0, 2]))
    loss.backward()
    assert torch.isfinite(loss) and all(torch.isfinite(p.grad).all() for p in model.parameters())
