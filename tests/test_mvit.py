"""MViTv2-S encoder: torchvision parity, checkpoint filtering, freezing, input checks.

Only two full-size forwards (one torchvision, one ours): each costs seconds on CPU.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn
from torchvision.models.video import mvit_v2_s

from microgesture.errors import ConfigError, DataError
from microgesture.models import mvit as mvit_module
from microgesture.models.mvit import HEAD_KEYS, MViTEncoder, build_mvit_v2_s


@pytest.fixture(scope="module")
def tv_checkpoint(tmp_path_factory) -> tuple[Path, nn.Module]:
    torch.manual_seed(1234)
    model = mvit_v2_s(num_classes=400).eval()
    path = tmp_path_factory.mktemp("ckpt") / "mvit_v2_s-random.pth"
    torch.save(model.state_dict(), path)
    return path, model


def test_same_logits_as_torchvision_with_400_classes(tv_checkpoint):
    path, tv_model = tv_checkpoint
    ours = build_mvit_v2_s(400, weights=path).eval()
    assert ours.load_report is not None and ours.load_report.complete
    assert set(HEAD_KEYS) <= set(ours.load_report.loaded)

    torch.manual_seed(0)
    x = torch.randn(1, 3, 16, 224, 224)
    captured = {}
    ours.norm.register_forward_hook(lambda m, i, o: captured.setdefault("tokens", o))
    with torch.no_grad():
        expected = tv_model(x)
        logits = ours(x)
        tokens = captured["tokens"]
        assert tokens.shape == (1, 393, 768)
        assert torch.equal(ours.pool(tokens), tokens[:, 0])
        assert ours.forward_head(tokens, pre_logits=True).shape == (1, ours.embed_dim)
        assert torch.allclose(ours.forward_head(tokens), logits)
    assert logits.shape == (1, 400)
    torch.testing.assert_close(logits, expected, rtol=1e-4, atol=1e-4)


def test_other_class_count_drops_head_and_keeps_backbone(tv_checkpoint, tmp_path):
    path, tv_model = tv_checkpoint
    # A wrapped checkpoint with a DDP prefix, as training scripts often save.
    wrapped = tmp_path / "wrapped.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in tv_model.state_dict().items()}, "epoch": 3}, wrapped)
    ours = build_mvit_v2_s(32, weights=wrapped)
    report = ours.load_report
    assert sorted(m[0] for m in report.mismatched) == sorted(HEAD_KEYS)
    assert not set(HEAD_KEYS) & set(report.loaded)
    assert "head.1.weight" in report.summary() and "400 classes" in report.summary()
    assert ours.head[1].weight.shape == (32, 768) and ours.num_classes == 32
    tv_state = tv_model.state_dict()
    for key, value in ours.state_dict().items():
        if key not in HEAD_KEYS:
            assert torch.equal(value, tv_state[key]), key


def test_own_checkpoint_round_trips(tmp_path):
    torch.manual_seed(5)
    first = build_mvit_v2_s(32)
    path = tmp_path / "ours.pth"
    torch.save(first.state_dict(), path)
    second = build_mvit_v2_s(32, weights=path)
    assert second.load_report.complete
    assert torch.equal(second.head[1].weight, first.head[1].weight)


def test_checkpoint_of_another_architecture_is_a_data_error(tv_checkpoint, tmp_path):
    other = tmp_path / "resnet.pth"
    torch.save(nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8)).state_dict(), other)
    with pytest.raises(DataError, match="resnet.pth.*not a torchvision MViTv2-S"):
        build_mvit_v2_s(32, weights=other)

    state = torch.load(tv_checkpoint[0], weights_only=True)
    state["blocks.3.attn.qkv.weight"] = torch.zeros(10, 10)
    bad_shape = tmp_path / "bad_shape.pth"
    torch.save(state, bad_shape)
    with pytest.raises(DataError, match=r"bad_shape.pth.*blocks\.3\.attn\.qkv\.weight"):
        build_mvit_v2_s(32, weights=bad_shape)


def test_missing_or_unreadable_file_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="nope.pth.*not found"):
        build_mvit_v2_s(32, weights=tmp_path / "nope.pth")
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(DataError, match="junk.pth"):
        build_mvit_v2_s(32, weights=junk)


def test_kinetics_without_network_says_to_pass_a_local_file(monkeypatch, tmp_path):
    def offline(*args, **kwargs):
        raise OSError("no network")

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(DataError, match="mvit_v2_s-ae3be167.pth.*weights=<path>"):
        build_mvit_v2_s(32, kinetics=True)
    with pytest.raises(ConfigError):
        build_mvit_v2_s(32, kinetics=True, weights="x.pth")


def test_kinetics_weights_come_from_the_hub_cache(monkeypatch, tmp_path, tv_checkpoint):
    cached = tmp_path / "checkpoints" / "mvit_v2_s-ae3be167.pth"
    cached.parent.mkdir()
    cached.symlink_to(tv_checkpoint[0])
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    model = build_mvit_v2_s(32, kinetics=True)
    assert model.load_report.path == cached
    assert torch.equal(model.conv_proj.weight, tv_checkpoint[1].conv_proj.weight)


def _trainable(model: nn.Module) -> set[str]:
    return {name.split(".")[0] if not name.startswith("blocks.") else ".".join(name.split(".")[:2])
            for name, p in model.named_parameters() if p.requires_grad}


def test_freezing_leaves_the_expected_parameters_trainable():
    model = build_mvit_v2_s(32, freeze="all")
    assert _trainable(model) == {"head"}
    model.train()
    assert not model.blocks[15].training and not model.norm.training and model.head.training
    model.set_freeze("partial", unfreeze_blocks=2)
    assert _trainable(model) == {"head", "norm", "blocks.14", "blocks.15"}
    model.train()
    assert not model.blocks[0].training and model.blocks[15].training and model.head.training
    model.set_freeze("none")
    assert len(_trainable(model)) == 20  # conv_proj, pos_encoding, 16 blocks, norm, head
    model.train()
    assert model.blocks[0].training
    with pytest.raises(ConfigError):
        build_mvit_v2_s(32, freeze="some")
    with pytest.raises(ConfigError):
        build_mvit_v2_s(32, freeze="partial", unfreeze_blocks=17)


def test_wrong_input_size_names_the_expected_shape():
    model = MViTEncoder(4)
    for shape in [(1, 3, 8, 224, 224), (1, 3, 16, 112, 112), (1, 16, 3, 224, 224), (3, 16, 224, 224)]:
        with pytest.raises(ValueError, match=r"\[N, 3, 16, 224, 224\]"):
            model(torch.zeros(shape))


def test_normalize_clip_uses_kinetics_constants():
    clip = torch.full((1, 3, 2, 4, 4), 0.45 + 0.225)
    assert torch.allclose(mvit_module.normalize_clip(clip), torch.ones_like(clip))
