"""SwinFace encoder: the official checkpoint's names and shapes, the backbone's arithmetic, frame masks,
freezing. The official key list is written here from the published architecture and checked against
the counts and sample lines of SwinFace's own state dicts (printed from its repository's model)."""

from __future__ import annotations

import pytest
import torch

from microgesture.errors import DataError
from microgesture.models.swinface import FACE_SIZE, SwinFaceEncoder, build_swinface, checkpoint_filter_fn
from microgesture.models.weights import load_weights

DEPTHS, HEADS, DIM = (2, 2, 6, 2), (3, 6, 12, 24), 96
# The OM's 42 outputs: gender; age, young; expression, smiling; then the attribute groups.
OM_SIZES = [2, 1, 2, 7, 2] + [2] * 6 + [2] * 10 + [2] * 5 + [2, 2] + [2] * 4 + [2] * 6 + [2, 2] + [2, 2]
BUFFERS = ("relative_position_index", "attn_mask", "running_mean", "running_var", "num_batches_tracked")


def _backbone_shapes() -> dict[str, tuple[int, ...]]:
    s: dict[str, tuple[int, ...]] = {"patch_embed.proj.weight": (96, 3, 2, 2), "patch_embed.proj.bias": (96,),
                                     "patch_embed.norm.weight": (96,), "patch_embed.norm.bias": (96,)}
    for i, (depth, heads) in enumerate(zip(DEPTHS, HEADS)):
        c, side = DIM * 2**i, 56 // 2**i
        for j in range(depth):
            p = f"layers.{i}.blocks.{j}."
            s.update({p + "norm1.weight": (c,), p + "norm1.bias": (c,),
                      p + "attn.relative_position_bias_table": (169, heads),
                      p + "attn.relative_position_index": (49, 49),
                      p + "attn.qkv.weight": (3 * c, c), p + "attn.qkv.bias": (3 * c,),
                      p + "attn.proj.weight": (c, c), p + "attn.proj.bias": (c,),
                      p + "norm2.weight": (c,), p + "norm2.bias": (c,), p + "mlp.fc1.weight": (4 * c, c),
                      p + "mlp.fc1.bias": (4 * c,), p + "mlp.fc2.weight": (c, 4 * c), p + "mlp.fc2.bias": (c,)})
            if j % 2 and side > 7:  # shifted windows (the 7x7 stage is one window: no shift)
                s[p + "attn_mask"] = ((side // 7) ** 2, 49, 49)
        if i < 3:
            s.update({f"layers.{i}.downsample.reduction.weight": (2 * c, 4 * c),
                      f"layers.{i}.downsample.norm.weight": (4 * c,), f"layers.{i}.downsample.norm.bias": (4 * c,)})
    s.update({"norm.weight": (768,), "norm.bias": (768,), "head.weight": (512, 768), "head.bias": (512,),
              "feature.0.weight": (768, 768), "feature.2.weight": (512, 768)})
    for k, n in ((1, 768), (3, 512)):
        s.update({f"feature.{k}.{leaf}": (n,) for leaf in ("weight", "bias", "running_mean", "running_var")})
        s[f"feature.{k}.num_batches_tracked"] = ()
    return s


def official_shapes() -> dict[str, dict[str, tuple[int, ...]]]:
    fam, tss = {}, {}
    for n in range(11):
        p = f"nets.{n}."
        for k, (o, i) in enumerate(((47, 192), (93, 384), (186, 768), (186, 768))):
            fam[f"{p}conv.convs.{k}.weight"] = (o, i, 3, 3)
        fam.update({p + "channel_attention.mlp.1.weight": (32, 512), p + "channel_attention.mlp.1.bias": (32,),
                    p + "channel_attention.mlp.3.weight": (512, 32), p + "channel_attention.mlp.3.bias": (512,)})
        fam.update({f"{p}norm.{leaf}": (512,) for leaf in ("weight", "bias", "running_mean", "running_var")})
        fam[p + "norm.num_batches_tracked"] = ()
        tss.update({p + "feature.0.weight": (512, 512), p + "feature.0.bias": (512,),
                    p + "feature.3.weight": (512, 512), p + "feature.3.bias": (512,)})
    om = {}
    for k, size in enumerate(OM_SIZES):
        om.update({f"output_fcs.{k}.weight": (size, 512), f"output_fcs.{k}.bias": (size,)})
    return {"state_dict_backbone": _backbone_shapes(), "state_dict_fam": fam, "state_dict_tss": tss,
            "state_dict_om": om}


def test_official_key_list_matches_the_reference():
    shapes = official_shapes()
    # Entry counts and parameter counts as printed from SwinFace's own model.
    counts = {"state_dict_backbone": (202, 28895226), "state_dict_fam": (143, 33090464),
              "state_dict_tss": (44, 5778432), "state_dict_om": (84, 45144)}
    for part, (entries, params) in counts.items():
        assert len(shapes[part]) == entries, part
        numel = sum(torch.Size(s).numel() for k, s in shapes[part].items() if not k.endswith(BUFFERS))
        assert numel == params, part
    lines = [("state_dict_backbone", "layers.3.blocks.0.attn.relative_position_bias_table", (169, 24)),
             ("state_dict_backbone", "layers.2.downsample.reduction.weight", (768, 1536)),
             ("state_dict_backbone", "layers.1.downsample.norm.weight", (768,)),
             ("state_dict_backbone", "feature.2.weight", (512, 768)),
             ("state_dict_fam", "nets.0.conv.convs.0.weight", (47, 192, 3, 3)),
             ("state_dict_tss", "nets.0.feature.0.weight", (512, 512)),
             ("state_dict_om", "output_fcs.0.weight", (2, 512))]
    for part, key, shape in lines:
        assert shapes[part][key] == shape


def _index(window: int = 7) -> torch.Tensor:
    pos = [(y, x) for y in range(window) for x in range(window)]
    return torch.tensor([[(a[0] - b[0] + window - 1) * (2 * window - 1) + a[1] - b[1] + window - 1 for b in pos]
                         for a in pos])


def write_official(path, shapes) -> dict[str, dict[str, torch.Tensor]]:
    """A checkpoint in the official layout; every float entry a distinct constant (stored once, expanded)."""
    ckpt, value = {}, 0
    for part, entries in shapes.items():
        ckpt[part] = {}
        for key, shape in entries.items():
            value += 1
            if key.endswith("relative_position_index"):
                tensor = _index()
            elif key.endswith("num_batches_tracked"):
                tensor = torch.tensor(value)
            else:
                tensor = torch.full((1,) * len(shape), value / 1000.0).expand(shape)
            ckpt[part][key] = tensor
    torch.save(ckpt, path)
    return ckpt


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    path = tmp_path_factory.mktemp("swinface") / "checkpoint_step_79999_gpu_0.pt"
    ckpt = write_official(path, official_shapes())
    return build_swinface(3, weights=path), ckpt


def test_official_checkpoint_loads_with_a_report(loaded):
    model, _ = loaded
    report = model.load_report
    assert report.unexpected == [] and report.mismatched == []
    assert report.missing == ["head.1.bias", "head.1.weight"]  # our own classifier is new
    assert len(report.loaded) == 195 + 19  # backbone (no unused head, masks recomputed) + expression branch
    notes = " ".join(report.notes)
    assert "not used" in notes and "recomputed" in notes and "other task branches" in notes


def test_official_entries_land_on_the_right_weights(loaded):
    model, ckpt = loaded
    own = model.state_dict()
    pairs = {f"backbone.{k}": v for k, v in ckpt["state_dict_backbone"].items()
             if not k.startswith("head.") and not k.endswith("attn_mask")}
    pairs.update({f"expression.fam.{k[len('nets.2.'):]}": v for k, v in ckpt["state_dict_fam"].items()
                  if k.startswith("nets.2.")})
    pairs.update({f"expression.tss.{k[len('nets.2.'):]}": v for k, v in ckpt["state_dict_tss"].items()
                  if k.startswith("nets.2.")})
    pairs["expression.fc.weight"] = ckpt["state_dict_om"]["output_fcs.3.weight"]
    pairs["expression.fc.bias"] = ckpt["state_dict_om"]["output_fcs.3.bias"]
    for key, value in pairs.items():
        assert torch.equal(own[key], value.to(own[key].dtype)), key
    assert model.expression.fc.out_features == 7


def test_another_swin_variant_is_refused(tmp_path):
    path = tmp_path / "swin_224.pt"
    torch.save({"state_dict_backbone": {"patch_embed.proj.weight": torch.zeros(96, 3, 4, 4)},
                "state_dict_om": {"output_fcs.0.weight": torch.zeros(2, 512)}}, path)
    with pytest.raises(DataError, match="another Swin variant"):
        load_weights(small(), path, checkpoint_filter_fn)
    torch.save({"conv1.weight": torch.zeros(8, 3, 3, 3)}, path)
    with pytest.raises(DataError, match="no entry matches"):
        load_weights(small(), path, checkpoint_filter_fn)


def small(num_classes: int = 4, **kwargs) -> SwinFaceEncoder:
    return SwinFaceEncoder(num_classes, dim=16, depths=(2, 2, 2, 2), heads=(1, 2, 2, 4), **kwargs)


def test_backbone_state_dict_alone_loads(tmp_path):
    torch.manual_seed(0)
    source = small()
    path = tmp_path / "backbone.pt"
    torch.save(source.backbone.state_dict(), path)
    target = small()
    report = load_weights(target, path, checkpoint_filter_fn, head="head.")
    assert not report.unexpected and not report.mismatched
    assert all(k.startswith(("head.", "expression.")) for k in report.missing)
    qkv = "layers.2.blocks.1.attn.qkv.weight"
    assert torch.equal(target.backbone.state_dict()[qkv], source.backbone.state_dict()[qkv])


def _to_torchvision(ours, tv) -> None:
    """Copy our backbone's weights into torchvision's Swin (same maths, other names)."""
    state = {"features.0.0.weight": ours.patch_embed.proj.weight, "features.0.0.bias": ours.patch_embed.proj.bias,
             "features.0.2.weight": ours.patch_embed.norm.weight, "features.0.2.bias": ours.patch_embed.norm.bias,
             "norm.weight": ours.norm.weight, "norm.bias": ours.norm.bias}
    for i, stage in enumerate(ours.layers):
        for j, block in enumerate(stage.blocks):
            for key, value in block.state_dict().items():
                if key.endswith("relative_position_index"):
                    value = value.flatten()  # torchvision keeps it flat
                state[f"features.{2 * i + 1}.{j}.{key.replace('mlp.fc1', 'mlp.0').replace('mlp.fc2', 'mlp.3')}"] = value
        if stage.downsample is not None:
            for key, value in stage.downsample.state_dict().items():
                state[f"features.{2 * i + 2}.{key}"] = value
    missing, unexpected = tv.load_state_dict(state, strict=False)
    assert not unexpected and all(k.startswith("head") for k in missing)


def test_backbone_matches_torchvision_swin_with_the_same_weights():
    from torchvision.models.swin_transformer import SwinTransformer

    torch.manual_seed(0)
    model = small().eval()
    for name, p in model.named_parameters():  # non-trivial values everywhere, including the bias tables
        p.data.normal_(0, 0.05)
        if "norm" in name and name.endswith("weight"):
            p.data.add_(1.0)
    tv = SwinTransformer(patch_size=[2, 2], embed_dim=16, depths=[2, 2, 2, 2], num_heads=[1, 2, 2, 4],
                         window_size=[7, 7]).eval()
    _to_torchvision(model.backbone, tv)
    x = torch.randn(2, 3, FACE_SIZE, FACE_SIZE)
    with torch.no_grad():
        maps, embedding = model.backbone(x)
        outputs, y = [], x
        for layer in tv.features:  # embedding, then stage / merging pairs
            y = layer(y)
            outputs.append(y.permute(0, 3, 1, 2))
        stages = [torch.nn.functional.adaptive_avg_pool2d(outputs[2 * i + 2], 7) for i in range(3)]
        expected_maps = torch.cat([*stages, outputs[-1]], 1)
        expected = model.backbone.feature(tv.norm(y).mean((1, 2)))
    assert maps.shape == (2, 16 * (2 + 4 + 8 + 8), 7, 7)
    torch.testing.assert_close(maps, expected_maps, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(embedding, expected, atol=1e-4, rtol=1e-4)


def test_missing_frames_are_skipped_and_masked():
    torch.manual_seed(0)
    model = small().eval()
    x = torch.randn(2, 3, 3, FACE_SIZE, FACE_SIZE)
    missing = torch.tensor([[False, True, False], [True, True, True]])  # the second clip has no face at all
    x[0, :, 1] = float("nan")  # whatever a missing frame holds never reaches the network
    with torch.no_grad():
        tokens = model.forward_features(x, missing)
        reference = model.forward_features(x[:1, :, [0, 2]])
        pooled = model.pool(tokens, missing)
        logits = model.forward_head(tokens, mask=missing)
    assert tokens.shape == (2, 3, model.embed_dim) and torch.isfinite(tokens).all()
    assert torch.equal(tokens[0, 1], torch.zeros(model.embed_dim)) and not tokens[1].any()
    assert not pooled[1].any()  # no face anywhere: a zero embedding, not NaN
    torch.testing.assert_close(tokens[0, [0, 2]], reference[0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(pooled[0], reference[0].mean(0), atol=1e-5, rtol=1e-5)
    assert torch.isfinite(logits).all() and logits.shape == (2, 4)
    with pytest.raises(ValueError, match="face_missing"):
        model.forward_features(x, missing[:, :2])
    with pytest.raises(ValueError, match=r"\[N, 3, T, 112, 112\]"):
        model.forward_features(torch.zeros(1, 3, 2, 96, 96))


def test_expression_head_and_expression_tokens():
    torch.manual_seed(0)
    model = small(tokens="expression").eval()
    x = torch.randn(1, 3, 2, FACE_SIZE, FACE_SIZE)
    with torch.no_grad():
        logits = model.expression_logits(x)
        tokens = model.forward_features(x)
        features = model.expression.features(model.backbone(x[:, :, 0])[0])
    assert logits.shape == (1, 2, 7)
    torch.testing.assert_close(tokens[0, 0], features[0], atol=1e-5, rtol=1e-5)


def test_freeze_modes():
    model = small()
    model.set_freeze("all")
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"head.1.weight", "head.1.bias"}
    model.train()
    assert not model.backbone.feature[1].training and model.head.training  # frozen BN keeps its statistics
    model.set_freeze("partial", unfreeze_stages=1)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert any(n.startswith("backbone.layers.3.") for n in trainable)
    assert not any(n.startswith(("backbone.layers.2.", "backbone.patch_embed.")) for n in trainable)
    assert "backbone.feature.0.weight" in trainable and "expression.fc.weight" in trainable
    model.set_freeze("none")
    assert all(p.requires_grad for p in model.parameters())


def test_one_frame_trains_despite_batchnorm():
    model = small().train()
    out = model(torch.randn(1, 3, 1, FACE_SIZE, FACE_SIZE))
    out.sum().backward()
    assert model.backbone.patch_embed.proj.weight.grad is not None
