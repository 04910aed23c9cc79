"""Cross-Modal Token Fusion and the concatenation baseline over named modalities: shapes, masks,
missing modalities, modality dropout, three streams, learning."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from microgesture.errors import ConfigError
from microgesture.models.cmtf import CrossModalTokenFusion
from microgesture.models.concat import ConcatFusion
from microgesture.models.layers import drop_modalities

DIMS = {"rgb": 12, "joint": 10}
LAYOUTS = {"rgb": "sequence", "joint": "time_joint"}


def small(dims=DIMS, layouts=LAYOUTS, **kwargs) -> CrossModalTokenFusion:
    torch.manual_seed(0)
    args = dict(width=32, depth=2, heads=2, dropout=0.0, max_tokens=16, max_joints=8)
    return CrossModalTokenFusion(dims, layouts, **(args | kwargs))


class Classify(nn.Module):
    """A fusion module with a linear classifier on its embedding (the recognizer's job in the toolkit)."""

    def __init__(self, fusion: nn.Module, classes: int):
        super().__init__()
        self.fusion, self.fc = fusion, nn.Linear(fusion.embed_dim, classes)

    def forward(self, tokens, masks=None):
        return self.fc(self.fusion(tokens, masks) if masks is not None else self.fusion(tokens))


def inputs(n=3, rgb_len=7, frames=4, joints=5):
    g = torch.Generator().manual_seed(1)
    return torch.randn(n, rgb_len, 12, generator=g), torch.randn(n, frames, joints, 10, generator=g)


@pytest.mark.parametrize("mode", ["cross", "joint"])
@pytest.mark.parametrize("seq_pos", ["learned", "sinusoidal"])
def test_shapes_for_grid_flat_and_oversized_inputs(mode, seq_pos):
    model = small(mode=mode, seq_pos=seq_pos).eval()
    rgb, skel = inputs()
    with torch.no_grad():
        tokens, mask = model.forward_features({"rgb": rgb, "joint": skel})
        assert tokens.shape == (3, 2 + 7 + 4 * 5, 32) and mask.shape == (3, 2 + 7 + 20)
        assert model.pool(tokens, mask).shape == (3, model.embed_dim)
        assert model({"rgb": rgb, "joint": skel}).shape == (3, 32)
        assert model({"rgb": rgb, "joint": skel.flatten(1, 2)}).shape == (3, 32)  # flattened skeleton tokens
        # More tokens / frames than the position tables hold: interpolated, still finite.
        long_rgb, long_skel = inputs(rgb_len=40, frames=30)
        out = model({"rgb": long_rgb, "joint": long_skel})
    assert out.shape == (3, 32) and torch.isfinite(out).all()


def test_masked_tokens_do_not_change_the_output():
    model = small().eval()
    rgb, skel = inputs()
    rgb_mask = torch.zeros(3, 7, dtype=torch.bool)
    rgb_mask[0, 4:] = True
    rgb_mask[2, :2] = True
    frame_mask = torch.zeros(3, 4, dtype=torch.bool)
    frame_mask[1, 2:] = True
    masks = {"rgb": rgb_mask, "joint": frame_mask}
    with torch.no_grad():
        ref = model({"rgb": rgb, "joint": skel}, masks)
        rgb2, skel2 = rgb.clone(), skel.clone()
        rgb2[rgb_mask] = float("nan")
        skel2[1, 2:] = 1e3 * torch.randn(2, 5, 10)
        assert torch.allclose(model({"rgb": rgb2, "joint": skel2}, masks), ref, atol=1e-5)
        # An unmasked change does change it: the check above can fail.
        skel2[1, 0] += torch.randn(5, 10)
        assert not torch.allclose(model({"rgb": rgb2, "joint": skel2}, masks), ref, atol=1e-3)
        joint_mask = torch.zeros(3, 4, 5, dtype=torch.bool)
        joint_mask[:, :, 0] = True
        skel3 = skel.clone()
        skel3[:, :, 0] = 7.0
        same = model({"rgb": rgb, "joint": skel}, {"joint": joint_mask})
        assert torch.allclose(model({"rgb": rgb, "joint": skel3}, {"joint": joint_mask}), same, atol=1e-5)


@pytest.mark.parametrize("mode", ["cross", "joint"])
def test_any_modality_may_be_missing(mode):
    model = small(mode=mode).eval()
    rgb, skel = inputs()
    with torch.no_grad():
        rgb_only, skel_only = model({"rgb": rgb, "joint": None}), model({"joint": skel})
        assert rgb_only.shape == skel_only.shape == (3, 32)
        assert torch.isfinite(rgb_only).all() and torch.isfinite(skel_only).all()
        # A fully masked modality is the same as a missing one (the path modality dropout trains).
        all_masked = torch.ones(3, 4, dtype=torch.bool)
        assert torch.allclose(model({"rgb": rgb, "joint": skel}, {"joint": all_masked}), rgb_only, atol=1e-5)
        rgb_masked = {"rgb": torch.ones(3, 7, dtype=torch.bool)}
        assert torch.allclose(model({"rgb": rgb, "joint": skel}, rgb_masked), skel_only, atol=1e-5)
    with pytest.raises(ValueError, match="at least one modality"):
        model({"rgb": None, "joint": None})
    with pytest.raises(ValueError, match="built for modalities"):
        model({"bone": skel})


def test_modality_dropout_never_drops_the_last_modality():
    torch.manual_seed(3)
    present = torch.ones(400, 2, dtype=torch.bool)
    present[:50, 1] = False  # the second modality already missing: the first must survive
    drop = drop_modalities(present, 1.0)
    assert not drop[:50].any()
    assert (drop[50:].sum(1) == 1).all()  # p=1: exactly one of two dropped
    assert 100 < int(drop[50:, 0].sum()) < 250  # either one, about half each
    three = drop_modalities(torch.ones(3000, 3, dtype=torch.bool), 1.0)
    assert (three.sum(1) == 1).all() and (three.float().mean(0) > 0.28).all()
    share = drop_modalities(torch.ones(2000, 2, dtype=torch.bool), 0.3).any(1).float().mean().item()
    assert 0.25 < share < 0.35
    model = Classify(small(modality_dropout=0.5).train(), 5)
    rgb, skel = inputs(n=16)
    assert torch.isfinite(model({"rgb": rgb, "joint": skel})).all()  # the training forward stays finite


def test_gradients_reach_every_projection():
    model = Classify(small(modality_dropout=0.5), 3).train()
    rgb, skel = inputs()
    F.cross_entropy(model({"rgb": rgb, "joint": skel}), torch.tensor([0, 1, 2])).backward()
    for proj in model.fusion.proj.values():
        assert proj[1].weight.grad is not None and proj[1].weight.grad.abs().sum() > 0
    assert model.fusion.time_pos.grad.abs().sum() > 0 and model.fusion.joint_pos["joint"].grad.abs().sum() > 0


def test_three_streams_share_time_positions_and_fuse():
    dims = {"joint": 10, "bone": 10, "rgb": 12}
    layouts = {"joint": "time_joint", "bone": "time_joint", "rgb": "sequence"}
    model = small(dims, layouts).eval()
    rgb, skel = inputs()
    tokens = {"joint": skel, "bone": skel.flip(2), "rgb": rgb}
    with torch.no_grad():
        out = model(tokens)
        assert out.shape == (3, 32) and torch.isfinite(out).all()
        without_bone = model({**tokens, "bone": None})
        assert not torch.allclose(out, without_bone, atol=1e-4)  # the third stream is read
    assert set(model.joint_pos) == {"joint", "bone"} and set(model.seq_pos) == {"rgb"}
    assert len(model.layers[0].streams) == 3


def test_eval_is_deterministic_and_dropout_free():
    model = small(modality_dropout=0.9, dropout=0.5).eval()
    rgb, skel = inputs()
    with torch.no_grad():
        assert torch.equal(model({"rgb": rgb, "joint": skel}), model({"rgb": rgb, "joint": skel}))
    model.train()
    with torch.no_grad():
        assert not torch.allclose(model({"rgb": rgb, "joint": skel}), model({"rgb": rgb, "joint": skel}))


def test_bad_inputs_and_config_are_clear_errors():
    model = small()
    rgb, skel = inputs()
    with pytest.raises(ValueError, match=r"rgb tokens must be \[N, L, D\] with D = 12"):
        model({"rgb": rgb[..., :5], "joint": skel})
    with pytest.raises(ValueError, match="joint tokens must be"):
        model({"rgb": rgb, "joint": skel[..., :3]})
    with pytest.raises(ValueError, match="max_joints=8"):
        model({"rgb": rgb, "joint": torch.randn(3, 4, 9, 10)})
    with pytest.raises(ValueError, match="rgb mask must have shape"):
        model({"rgb": rgb, "joint": skel}, {"rgb": torch.zeros(3, 6, dtype=torch.bool)})
    with pytest.raises(ValueError, match="batch sizes differ"):
        model({"rgb": rgb, "joint": skel[:2]})
    for bad in (dict(mode="late"), dict(width=30, heads=4), dict(modality_dropout=1.5), dict(seq_pos="rope"),
                dict(layouts={"rgb": "sequence"}), dict(layouts={"rgb": "grid", "joint": "time_joint"})):
        with pytest.raises(ConfigError):
            small(**bad)


def test_concat_fusion_baseline():
    torch.manual_seed(0)
    model = Classify(ConcatFusion({"rgb": 12, "joint": 10}, hidden=16, modality_dropout=0.5), 5)
    rgb, skel = torch.randn(4, 12), torch.randn(4, 10)
    F.cross_entropy(model({"rgb": rgb, "joint": skel}), torch.tensor([0, 1, 2, 3])).backward()
    norms = model.fusion.norm
    assert norms["rgb"].weight.grad.abs().sum() > 0 and norms["joint"].weight.grad.abs().sum() > 0
    model.eval()
    with torch.no_grad():
        assert model({"rgb": rgb, "joint": None}).shape == model({"joint": skel}).shape == (4, 5)
        assert model.fusion({"rgb": rgb, "joint": skel}).shape == (4, 16)
        assert torch.equal(model({"rgb": rgb, "joint": skel}), model({"rgb": rgb, "joint": skel}))
    with pytest.raises(ValueError, match=r"\[N, 12\]"):
        model({"rgb": torch.randn(4, 3, 12), "joint": skel})
    with pytest.raises(ValueError, match="at least one modality"):
        model({"rgb": None, "joint": None})


def _xor_batch(n: int, g: torch.Generator):
    """Label = a XOR b, a only in the RGB tokens, b only in the skeleton: each alone says nothing."""
    a, b = torch.randint(0, 2, (n,), generator=g), torch.randint(0, 2, (n,), generator=g)
    rgb = torch.randn(n, 6, 16, generator=g)
    skel = torch.randn(n, 4, 3, 16, generator=g)
    rgb[..., 0] += (2 * a - 1)[:, None].float()
    skel[..., 3] += (2 * b - 1)[:, None, None].float()
    return rgb, skel, a ^ b


def _train_and_score(use_rgb: bool, use_skel: bool, steps: int = 120) -> float:
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    fusion = CrossModalTokenFusion({"rgb": 16, "joint": 16}, {"rgb": "sequence", "joint": "time_joint"},
                                   width=32, depth=1, heads=2, dropout=0.0)
    model = Classify(fusion, 2)
    opt = torch.optim.AdamW(model.parameters(), lr=5e-3)

    def tokens(rgb, skel):
        return {"rgb": rgb if use_rgb else None, "joint": skel if use_skel else None}

    for _ in range(steps):
        rgb, skel, y = _xor_batch(64, g)
        loss = F.cross_entropy(model(tokens(rgb, skel)), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    rgb, skel, y = _xor_batch(1024, torch.Generator().manual_seed(99))
    with torch.no_grad():
        pred = model.eval()(tokens(rgb, skel)).argmax(1)
    return (pred == y).float().mean().item()


@pytest.fixture
def one_thread():
    """Tiny matrices: one thread avoids oversubscribing the shared CPU (several times faster)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_cmtf_learns_a_task_that_needs_both_modalities(one_thread):
    fused = _train_and_score(True, True)
    rgb_only = _train_and_score(True, False)
    skel_only = _train_and_score(False, True)
    # 1024 test samples: chance is 0.5 +- 0.016, so neither bound can be met by luck.
    assert fused > 0.85, fused
    assert max(rgb_only, skel_only) < 0.6, (rgb_only, skel_only)
