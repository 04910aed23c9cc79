"""One interface for every encoder (models/base.py), checked the same way for each (as timm's test_models)."""

from __future__ import annotations

import pytest
import torch

from microgesture.models.base import Encoder, InputSpec


def _agcn():
    from microgesture.models.agcn import build_agcn

    return build_agcn(5, "imigue22", base_channels=4), torch.randn(2, 1, 12, 22, 3)


def _light():
    from microgesture.models.light_rgb import build_light_rgb

    return build_light_rgb(5, width=8, depth=2), torch.randn(2, 3, 4, 32, 32)


def _mvit():
    from microgesture.models.mvit import build_mvit_v2_s

    return build_mvit_v2_s(5), torch.randn(1, 3, 16, 224, 224)


def _posec3d():
    from microgesture.models.posec3d import build_posec3d

    return build_posec3d(5, 6, base_channels=4, stage_blocks=(1, 1, 1)), torch.randn(2, 6, 4, 16, 16)


def _swinface():
    from microgesture.models.swinface import SwinFaceEncoder

    # The published architecture at a sixth of its width (the interface is the same; the full
    # model's weights and arithmetic are checked in test_swinface.py).
    return (SwinFaceEncoder(5, dim=16, depths=(2, 2, 2, 2), heads=(1, 2, 2, 4), expression=False),
            torch.randn(1, 3, 2, 112, 112))


def _light_face():
    from microgesture.models.light_face import build_light_face

    return build_light_face(5, width=8), torch.randn(2, 3, 4, 32, 32)


ENCODERS = {"agcn": _agcn, "light": _light, "mvit": _mvit, "posec3d": _posec3d, "swinface": _swinface,
            "light_face": _light_face}
SLOW = {"mvit"}  # about 6 s a clip on a 2-core CPU: the shape checks run on one clip


@pytest.mark.parametrize("name", list(ENCODERS))
def test_encoder_interface(name):
    torch.manual_seed(0)
    model, x = ENCODERS[name]()
    model.eval()
    assert isinstance(model, Encoder), f"{name} lacks part of the Encoder interface"
    spec = model.input_spec
    assert isinstance(spec, InputSpec) and spec.channels == x.shape[1 if spec.kind != "skeleton" else -1]
    if spec.kind == "video":
        assert spec.mean is not None and len(spec.mean) == len(spec.std) == 3
    if spec.kind != "skeleton":
        assert not spec.check(x.shape[2], x.shape[3])  # the test input is one the spec accepts
    assert model.num_classes == 5
    with torch.no_grad():
        tokens = model.forward_features(x)
        layout = {"time_joint": 4, "sequence": 3}[model.token_layout]
        assert tokens.dim() == layout and tokens.shape[0] == len(x) and tokens.shape[-1] == model.embed_dim
        if model.token_layout == "sequence":
            assert tokens.shape[1] > model.num_prefix_tokens
        embedding = model.pool(tokens)
        assert embedding.shape == (len(x), model.embed_dim)
        assert torch.equal(model.forward_head(tokens, pre_logits=True), embedding)
        logits = model.forward_head(tokens)
        assert logits.shape == (len(x), 5) and torch.allclose(model(x), logits, atol=1e-5)
        model.reset_classifier(3)
        assert model.num_classes == 3 and model(x).shape == (len(x), 3)
        model.reset_classifier(0)
        assert model.num_classes == 0 and model(x).shape == (len(x), model.embed_dim)
    keys = [k for k in model.state_dict() if k.startswith("head")]
    assert not keys, f"reset_classifier(0) should leave no head weights, found {keys[:3]}"


def test_every_encoder_kind_is_checked_here():
    from microgesture.train.cards import ENCODER_CARDS

    assert set(ENCODERS) == set(ENCODER_CARDS)  # a new kind's card needs its interface check above
