"""The heatmap stream as a named modality of the fusions: joint (2s-AGCN) + heatmap (PoseC3D)
trained end to end with CMTF on a tiny skeleton set, its tokens cached by `microgesture extract`,
and late fusion / concatenation trained on those tokens."""

from __future__ import annotations

import pytest

from microgesture.cli import main
from microgesture.data.cache import TokenCache
from microgesture.data.formats.annotations import load_annotations
from microgesture.train.config import load_config
from microgesture.train.run import evaluate, fit

JOINT = "joint: {encoder: agcn, base_channels: 4}"
HEATMAP = "heatmap: {encoder: posec3d, base_channels: 4, stage_blocks: [1, 1, 1], dropout: 0.0}"


def overrides(ann, *, fusion: str, epochs: int = 1, checkpoint=None) -> list[str]:
    trained = "" if checkpoint is None else f", checkpoint: {checkpoint}"
    return [
        f"data.annotations={ann}", "data.synthetic=null", "data.num_frames=8", "data.batch_size=8",
        "data.heatmap.size=16", "data.heatmap.limbs=false", "data.heatmap.crop_area=[0.8, 1.0]",
        "model.streams={" + JOINT[:-1] + trained + "}, " + HEATMAP[:-1] + trained + "}}",
        f"model.fusion={{kind: {fusion}, width: 16, depth: 1, heads: 2, hidden: 16}}",
        f"trainer.max_epochs={epochs}", "trainer.progress_bar=false", "trainer.accelerator=cpu",
        "optim.optimizer=adamw", "optim.lr=0.002",
    ]


@pytest.mark.slow
def test_joint_and_heatmap_cmtf_end_to_end_then_extract_and_fuse(tiny_annotations, tmp_path):
    cfg = load_config(None, overrides(tiny_annotations, fusion="cmtf"))
    assert cfg.model.streams["heatmap"].in_channels == 35  # miga35 joints
    run = fit(cfg, tmp_path / "cmtf")
    metrics = evaluate(cfg, run.best_checkpoint, tmp_path / "cmtf_eval")
    data = load_annotations(tiny_annotations)
    assert metrics["num_samples"] == len(data["split"]["test"]) and 0.0 <= metrics["top1"] <= 1.0

    # `microgesture extract` caches the trained heatmap encoder's tokens beside the joint encoder's
    cache_dir = tmp_path / "cache"
    config = tmp_path / "fusion.yaml"
    config.write_text("name: tiny\n")
    main(["extract", str(config), "--out", str(cache_dir), "--device", "cpu"]
         + [arg for s in overrides(tiny_annotations, fusion="concat", checkpoint=run.best_checkpoint)
            for arg in ("--set", s)])
    tokens = TokenCache.open(cache_dir, tiny_annotations).get(data["split"]["test"][0])
    # 8 frames of 16x16 -> 4 x 2 x 2 tokens of 4 * 4 * 4 = 64 channels
    assert tokens["heatmap_tokens"].shape == (16, 64) and tokens["heatmap_embedding"].shape == (64,)
    assert tokens["joint_tokens"].dim() == 3

    for kind in ("late", "concat"):
        fused = load_config(None, overrides(tiny_annotations, fusion=kind, checkpoint=run.best_checkpoint)
                            + [f"data.cache={cache_dir}"])
        out = fit(fused, tmp_path / kind)
        assert evaluate(fused, out.best_checkpoint, tmp_path / f"{kind}_eval")["num_samples"] == metrics["num_samples"]


@pytest.mark.slow
def test_heatmap_stream_for_the_demo(tmp_path):
    from microgesture.apps.heatmap_stream import run_heatmap_stream

    tiny = dict(subjects=3, videos_per_subject=1, val_fraction=0.5, video=False)
    metrics = run_heatmap_stream(tmp_path / "heatmap", data_root=tmp_path / "data", epochs=1, **tiny)
    assert 0.0 <= metrics["top1"] <= 1.0 and metrics["num_samples"] > 0
    assert (tmp_path / "heatmap" / "eval" / "scores.csv").is_file()
    again = run_heatmap_stream(tmp_path / "heatmap", data_root=tmp_path / "data", epochs=1, **tiny)  # resumes
    assert again["top1"] == metrics["top1"]
