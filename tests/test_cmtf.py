"""Cross-Modal Token Fusion and the concatenation baseline: shapes, masks, missing modalities, learning."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from microgesture.errors import ConfigError
from microgesture.models.cmtf import ConcatFusion, CrossModalTokenFusion


def small(**kwargs) -> CrossModalTokenFusion:
    torch.manual_seed(0)
    args = dict(width=32, depth=2, heads=2, dropout=0.0, max_tokens=16, max_joints=8)
    return CrossModalTokenFusion(12, 10, 5, **(args | kwargs))


def inputs(n=3, rgb_len=7, frames=4, joints=5):
    g = torch.Generator().manual_seed(1)
    return torch.randn(n, rgb_len, 12, generator=g), torch.randn(n, frames, joints, 10, generator=g)


@pytest.mark.parametrize("mode", ["cross", "joint"])
@pytest.mark.parametrize("rgb_pos", ["learned", "sinusoidal"])
def test_shapes_for_grid_flat_and_oversized_inputs(mode, rgb_pos):
    model = small(mode=mode, rgb_pos=rgb_pos).eval()
    rgb, skel = inputs()
    with torch.no_grad():
        tokens, mask = model.forward_features(rgb, skel)
        assert tokens.shape == (3, 2 + 7 + 4 * 5, 32) and mask.shape == (3, 2 + 7 + 20)
        assert model.forward_head(tokens, mask, pre_logits=True).shape == (3, model.embed_dim)
        assert model(rgb, skel).shape == (3, 5)
        assert model(rgb, skel.flatten(1, 2)).shape == (3, 5)  # flattened skeleton tokens
        # More tokens / frames than the position tables hold: interpolated, still finite.
        long_rgb, long_skel = inputs(rgb_len=40, frames=30)
        out = model(long_rgb, long_skel)
    assert out.shape == (3, 5) and torch.isfinite(out).all()


def test_masked_tokens_do_not_change_the_output():
    model = small().eval()
    rgb, skel = inputs()
    rgb_mask = torch.zeros(3, 7, dtype=torch.bool)
    rgb_mask[0, 4:] = True
    rgb_mask[2, :2] = True
    frame_mask = torch.zeros(3, 4, dtype=torch.bool)
    frame_mask[1, 2:] = True
    with torch.no_grad():
        ref = model(rgb, skel, rgb_mask, frame_mask)
        rgb2, skel2 = rgb.clone(), skel.clone()
        rgb2[rgb_mask] = float("nan")
        skel2[1, 2:] = 1e3 * torch.randn(2, 5, 10)
        assert torch.allclose(model(rgb2, skel2, rgb_mask, frame_mask), ref, atol=1e-5)
        # An unmasked change does change it: the check above can fail.
        skel2[1, 0] += torch.randn(5, 10)
        assert not torch.allclose(model(rgb2, skel2, rgb_mask, frame_mask), ref, atol=1e-3)
        joint_mask = torch.zeros(3, 4, 5, dtype=torch.bool)
        joint_mask[:, :, 0] = True
        skel3 = skel.clone()
        skel3[:, :, 0] = 7.0
        same = model(rgb, skel, skel_mask=joint_mask)
        assert torch.allclose(model(rgb, skel3, skel_mask=joint_mask), same, atol=1e-5)


@pytest.mark.parametrize("mode", ["cross", "joint"])
def test_either_modality_may_be_missing(mode):
    model = small(mode=mode).eval()
    rgb, skel = inputs()
    with torch.no_grad():
        rgb_only, skel_only = model(rgb, None), model(None, skel)
        assert rgb_only.shape == skel_only.shape == (3, 5)
        assert torch.isfinite(rgb_only).all() and torch.isfinite(skel_only).all()
        # A fully masked modality is the same as a missing one (the path modality dropout trains).
        all_masked = torch.ones(3, 4, dtype=torch.bool)
        assert torch.allclose(model(rgb, skel, skel_mask=all_masked), rgb_only, atol=1e-5)
        assert torch.allclose(model(rgb, skel, rgb_mask=torch.ones(3, 7, dtype=torch.bool)), skel_only, atol=1e-5)
    with pytest.raises(ValueError, match="at least one modality"):
        model(None, None)


def test_modality_dropout_never_drops_both():
    model = small(modality_dropout=1.0).train()
    torch.manual_seed(3)
    r_pad, s_pad = torch.zeros(400, 7, dtype=torch.bool), torch.zeros(400, 9, dtype=torch.bool)
    s_pad[:50] = True  # skeleton already missing: the RGB must survive
    r_new, s_new = model._drop_modalities(r_pad, s_pad)
    r_gone, s_gone = r_new.all(1), s_new.all(1)
    assert not (r_gone & s_gone).any()
    assert not r_gone[:50].any()
    assert (r_gone[50:] ^ s_gone[50:]).all()  # p=1: exactly one of them dropped
    assert 100 < int(r_gone.sum()) < 250  # RGB or skeleton, about half each

    model.modality_dropout = 0.3
    r_new, s_new = model._drop_modalities(r_pad[50:], s_pad[50:])
    share = (r_new.all(1) | s_new.all(1)).float().mean().item()
    assert 0.2 < share < 0.4
    rgb, skel = inputs(n=16)
    out = model(rgb, skel)  # the training forward with dropout stays finite
    assert torch.isfinite(out).all()


def test_gradients_reach_both_projections():
    model = small(modality_dropout=0.5).train()
    rgb, skel = inputs()
    F.cross_entropy(model(rgb, skel), torch.tensor([0, 1, 2])).backward()
    for proj in (model.rgb_proj, model.skel_proj):
        assert proj[1].weight.grad is not None and proj[1].weight.grad.abs().sum() > 0
    assert model.time_pos.grad.abs().sum() > 0 and model.joint_pos.grad.abs().sum() > 0


def test_eval_is_deterministic_and_dropout_free():
    model = small(modality_dropout=0.9, dropout=0.5).eval()
    rgb, skel = inputs()
    with torch.no_grad():
        assert torch.equal(model(rgb, skel), model(rgb, skel))
    model.train()
    with torch.no_grad():
        assert not torch.allclose(model(rgb, skel), model(rgb, skel))


def test_bad_inputs_and_config_are_clear_errors():
    model = small()
    rgb, skel = inputs()
    with pytest.raises(ValueError, match=r"rgb_tokens must be \[N, L, 12\]"):
        model(rgb[..., :5], skel)
    with pytest.raises(ValueError, match="skel_tokens must be"):
        model(rgb, skel[..., :3])
    with pytest.raises(ValueError, match="max_joints=8"):
        model(rgb, torch.randn(3, 4, 9, 10))
    with pytest.raises(ValueError, match="rgb_mask must have shape"):
        model(rgb, skel, rgb_mask=torch.zeros(3, 6, dtype=torch.bool))
    with pytest.raises(ValueError, match="batch sizes differ"):
        model(rgb, skel[:2])
    for bad in (dict(mode="late"), dict(width=30, heads=4), dict(modality_dropout=1.5), dict(rgb_pos="rope")):
        with pytest.raises(ConfigError):
            small(**bad)


def test_concat_fusion_baseline():
    torch.manual_seed(0)
    model = ConcatFusion(12, 10, 5, hidden=16, modality_dropout=0.5)
    rgb, skel = torch.randn(4, 12), torch.randn(4, 10)
    F.cross_entropy(model(rgb, skel), torch.tensor([0, 1, 2, 3])).backward()
    assert model.rgb_norm.weight.grad.abs().sum() > 0 and model.skel_norm.weight.grad.abs().sum() > 0
    model.eval()
    with torch.no_grad():
        assert model(rgb, None).shape == model(None, skel).shape == (4, 5)
        assert model.forward_head(model.forward_features(rgb, skel), pre_logits=True).shape == (4, 16)
        assert torch.equal(model(rgb, skel), model(rgb, skel))
    with pytest.raises(ValueError, match=r"\[N, 12\]"):
        model(torch.randn(4, 3, 12), skel)
    with pytest.raises(ValueError, match="at least one modality"):
        model(None, None)


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
    model = CrossModalTokenFusion(16, 16, 2, width=32, depth=1, heads=2, dropout=0.0)
    opt = torch.optim.AdamW(model.parameters(), lr=5e-3)
    for _ in range(steps):
        rgb, skel, y = _xor_batch(64, g)
        loss = F.cross_entropy(model(rgb if use_rgb else None, skel if use_skel else None), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    rgb, skel, y = _xor_batch(1024, torch.Generator().manual_seed(99))
    with torch.no_grad():
        pred = model.eval()(rgb if use_rgb else None, skel if use_skel else None).argmax(1)
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
