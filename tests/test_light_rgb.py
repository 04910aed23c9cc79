"""Light (2+1)D RGB encoder: token shapes, pooling, gradients, parameter count."""

from __future__ import annotations

import pytest
import torch

from microgesture.errors import ConfigError
from microgesture.models.light_rgb import build_light_rgb


@pytest.mark.parametrize(
    ("frames", "size", "tokens"),
    [(16, 96, 4 * 6 * 6), (8, 64, 2 * 4 * 4), (16, 112, 4 * 7 * 7), (1, 32, 1 * 2 * 2)],
)
def test_token_and_logit_shapes(frames, size, tokens):
    model = build_light_rgb(5).eval()
    x = torch.randn(2, 3, frames, size, size)
    with torch.no_grad():
        feats = model.forward_features(x)
        assert feats.shape == (2, tokens, 128)
        assert model.pool(feats).shape == (2, model.embed_dim)
        assert torch.allclose(model.forward_head(feats), model(x), atol=1e-5)
        assert torch.allclose(model.forward_head(feats, pre_logits=True), feats.mean(1))
    assert model(x).shape == (2, model.num_classes)


def test_width_and_depth_set_embed_dim():
    model = build_light_rgb(3, width=16, depth=4)
    assert model.embed_dim == 128
    assert model.forward_features(torch.randn(1, 3, 8, 64, 64)).shape == (1, 2 * 2 * 2, 128)


def test_gradients_reach_the_stem():
    torch.manual_seed(0)
    model = build_light_rgb(4, width=8, depth=2).train()
    loss = torch.nn.functional.cross_entropy(model(torch.randn(3, 3, 8, 48, 48)), torch.tensor([0, 1, 2]))
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert model.features[0].weight.grad.abs().sum() > 0


def test_parameter_count_matches_the_docstring():
    model = build_light_rgb(32)
    assert sum(p.numel() for p in model.parameters()) == 181_016
    assert sum(p.numel() for p in model.head.parameters()) == 32 * (128 + 1)


def test_bad_input_and_config_are_clear_errors():
    model = build_light_rgb(2)
    with pytest.raises(ValueError, match=r"\[N, 3, T, H, W\]"):
        model(torch.randn(1, 3, 64, 64))
    with pytest.raises(ValueError, match="H, W >= 16"):
        model(torch.randn(1, 3, 4, 8, 8))
    with pytest.raises(ConfigError):
        build_light_rgb(2, depth=0)
