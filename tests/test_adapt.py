"""CMPL: pseudo-label choice by hand, and adaptation that provably never reads target labels."""

import pickle

import numpy as np
import pytest
import torch

from microgesture.cli import main
from microgesture.data.formats.annotations import load_annotations, save_annotations
from microgesture.errors import ConfigError, DataError
from microgesture.eval.pseudo import pseudo_label_quality
from microgesture.train.adapt import adapt
from microgesture.train.checkpoint import read_run_checkpoint
from microgesture.train.cmpl import class_thresholds, select_pseudo_labels
from microgesture.train.config import load_config
from microgesture.train.run import fit


def test_thresholds_follow_flexmatch_with_a_floor():
    # class 0: 4 confident candidates, class 1: 1, class 2: none; 2 clips below tau
    pred = np.array([0, 0, 0, 0, 1, 1, 2])
    conf = np.array([0.9, 0.95, 0.9, 0.99, 0.9, 0.5, 0.3])
    t = class_thresholds(pred, conf, 3, threshold=0.8, min_threshold=0.3)
    # beta = sigma / max(max sigma = 4, unused = 2) = 1, 1/4, 0 -> tau * beta / (2 - beta)
    np.testing.assert_allclose(t, [0.8, max(0.3, 0.8 * 0.25 / 1.75), 0.3])


def test_agreement_confidence_and_cap():
    one_hot = np.eye(3)
    a = np.array([one_hot[0] * 0.9 + 0.05, one_hot[0] * 0.5 + 0.25, one_hot[1] * 0.9 + 0.05,
                  one_hot[2] * 0.9 + 0.05, one_hot[0] * 0.9 + 0.05, one_hot[0] * 0.9 + 0.05])
    b = a.copy()
    b[3] = one_hot[1] * 0.9 + 0.05  # the streams disagree on clip 3
    b[5] = one_hot[0] * 0.7 + 0.15
    chosen = select_pseudo_labels({"joint": a, "bone": b}, threshold=0.8, min_threshold=0.5, cap=10.0)
    assert chosen.candidates == 5
    # clip 1 (confidence 0.75) is below class 0's threshold 0.8; clip 5 (mean of 0.95 and 0.85) passes;
    # class 1 (1 confident clip against class 0's 3) gets tau * (1/3) / (5/3), floored at 0.5
    assert chosen.index.tolist() == [0, 2, 4, 5] and chosen.label.tolist() == [0, 1, 0, 0]
    np.testing.assert_allclose(chosen.thresholds, [0.8, 0.5, 0.5])
    np.testing.assert_allclose(chosen.confidence, [0.95, 0.95, 0.95, 0.9])
    np.testing.assert_allclose(chosen.stream_confidence["bone"], [0.95, 0.95, 0.95, 0.85])
    # cap 1: ceil(1 * 4 kept / 2 classes) = 2 per class: class 0 keeps its two most confident (0, 4)
    capped = select_pseudo_labels({"joint": a, "bone": b}, threshold=0.8, min_threshold=0.5, cap=1.0)
    assert capped.index.tolist() == [0, 2, 4]


def _train_streams(ann, tmp_path, width: int = 8, epochs: int = 2):
    ckpts = {}
    for stream in ("joint", "bone"):
        cfg = load_config(None, _common(ann) + [f"model.streams={{{stream}: {{encoder: agcn, base_channels: {width}}}}}",
                                                f"trainer.max_epochs={epochs}", "optim.warmup_epochs=1"])
        ckpts[stream] = fit(cfg, tmp_path / stream).last_checkpoint
    return ckpts


def _common(ann):
    return [f"data.annotations={ann}", "data.num_frames=16", "data.batch_size=8", "trainer.progress_bar=false",
            "trainer.accelerator=cpu", "trainer.log_every_n_steps=1", "optim.lr=0.05"]


def _cmpl_config(ann, ckpts, width: int = 8):
    streams = ", ".join(f"{m}: {{encoder: agcn, base_channels: {width}, checkpoint: {p}}}" for m, p in ckpts.items())
    return load_config(None, _common(ann) + [f"model.streams={{{streams}}}", "model.fusion={kind: late}",
                                             "adapt={rounds: 2, epochs: 1, threshold: 0.5, min_threshold: 0.3}"])


def _scrambled(ann, path):
    data = load_annotations(ann)
    rng = np.random.default_rng(7)
    test = set(data["split"]["test"])
    clips = [dict(c, label=int(rng.integers(0, 4)), emotion=int(rng.integers(0, 2))) if c["frame_dir"] in test
             else c for c in data["annotations"]]
    assert [c["label"] for c in clips] != [c["label"] for c in data["annotations"]]
    save_annotations(path, clips, data["split"], {k: v for k, v in data["meta"].items()})
    return path


def _same(a, b) -> bool:
    """Deep equality of pickled annotation objects (numpy arrays by value)."""
    if isinstance(a, dict):
        return isinstance(b, dict) and list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.dtype == b.dtype and np.array_equal(a, b)
    return a == b


@pytest.mark.slow
def test_adaptation_never_reads_target_labels(tmp_path):
    # streams that learn (2 epochs on the 48-clip set left both at chance and rarely agreeing, so the
    # check below could find no pseudo-label at all): the larger set and schedule of test_train's
    # test_learns_far_above_chance, 16 target clips
    from conftest import make_tiny_annotations

    ann = make_tiny_annotations(tmp_path / "ann.pkl", clips_per_class=24, seed=1)
    ckpts = _train_streams(ann, tmp_path, width=16, epochs=12)
    first = adapt(_cmpl_config(ann, ckpts, width=16), tmp_path / "a", target="test")
    scrambled = _scrambled(ann, tmp_path / "scrambled.pkl")
    second = adapt(_cmpl_config(scrambled, ckpts, width=16), tmp_path / "b", target="test")
    # the file adaptation reads has no target label, and is the same whatever the labels were
    hidden = [pickle.loads((tmp_path / d / "hidden.pkl").read_bytes()) for d in ("a", "b")]
    assert _same(hidden[0], hidden[1])
    data = hidden[0]
    test = set(data["split"]["test"])
    assert all(c["label"] == -1 and c["emotion"] == -1 for c in data["annotations"] if c["frame_dir"] in test)
    for r in (1, 2):
        a, b = ((tmp_path / d / f"round_{r}" / "pseudo_labels.csv").read_text() for d in ("a", "b"))
        assert a == b
    assert len(first.rounds) == 2 and first.rounds[0]["num_pseudo_labels"] > 0
    for stream in ("joint", "bone"):
        wa = read_run_checkpoint(first.checkpoints[stream])["state_dict"]
        wb = read_run_checkpoint(second.checkpoints[stream])["state_dict"]
        assert all(torch.equal(wa[k], wb[k]) for k in wa)
        before = read_run_checkpoint(ckpts[stream])["state_dict"]
        assert any(not torch.equal(wa[k], before[k]) for k in wa)  # fine-tuning changed the weights
    # a second call finds every round done and returns the same models
    again = adapt(_cmpl_config(ann, ckpts, width=16), tmp_path / "a", target="test")
    assert again.checkpoints == first.checkpoints
    # quality is measured afterwards, against the true labels
    quality = pseudo_label_quality(tmp_path / "a", load_annotations(ann), "test")
    q = quality["1"]
    assert q["num_pseudo"] == first.rounds[0]["num_pseudo_labels"] and q["target_clips"] == 16
    assert q["coverage"] == pytest.approx(q["num_pseudo"] / 16) and 0 <= q["precision"] <= 1
    header = (tmp_path / "a" / "round_1" / "pseudo_labels.csv").read_text().splitlines()[0]
    assert header == "sample_id,pseudo_label,round,modalities,confidence,conf_joint,conf_bone,threshold"


def test_bad_targets_are_refused_before_anything_is_written(tiny_annotations, tmp_path):
    fake = tmp_path / "fake.ckpt"
    fake.write_bytes(b"x")
    cfg = _cmpl_config(tiny_annotations, {"joint": fake, "bone": fake})
    with pytest.raises(DataError, match="'train': shares clips with the labelled source split 'train'"):
        adapt(cfg, tmp_path / "out", target="train")
    with pytest.raises(DataError, match="no such split"):
        adapt(cfg, tmp_path / "out", target="holdout")
    one = load_config(None, _common(tiny_annotations) + [f"model.streams={{joint: {{encoder: agcn, checkpoint: {fake}}}}}"])
    with pytest.raises(ConfigError, match="model.streams: CMPL needs two streams"):
        adapt(one, tmp_path / "out", target="test")
    none = load_config(None, _common(tiny_annotations) + ["model.streams={joint: {encoder: agcn}, bone: {encoder: agcn}}",
                                                          "model.fusion={kind: late}"])
    with pytest.raises(ConfigError, match="model.streams.joint.checkpoint"):
        adapt(none, tmp_path / "out", target="test")
    cfg_file = tmp_path / "cmpl.yaml"
    cfg_file.write_text("name: x\n")
    sets = [x for o in _common(tiny_annotations) + [f"model.streams={{joint: {{encoder: agcn, checkpoint: {fake}}}, "
                                                    f"bone: {{encoder: agcn, checkpoint: {fake}}}}}",
                                                    "model.fusion={kind: late}"] for x in ("--set", o)]
    assert main(["adapt", str(cfg_file), *sets, "--target", "val", "--out", str(tmp_path / "out")]) == 2
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("folder,cmpl", [("synthetic", "longtail_cmpl"), ("synthetic", "longtail_cmpl_heatmap"),
                                         ("imigue", "longtail_cmpl")])
def test_cmpl_configs_describe_the_streams_they_start_from(folder, cmpl):
    from pathlib import Path

    from microgesture.train.adapt import stream_config
    from microgesture.train.run import _architecture
    from microgesture.typed_config import to_dict

    configs = Path(__file__).resolve().parents[1] / "configs" / folder
    cfg = load_config(configs / f"{cmpl}.yaml")
    assert cfg.adapt is not None and len(cfg.model.streams) >= 2
    for stream in cfg.model.streams:
        own = load_config(configs / f"longtail_{stream}.yaml")
        adapted = stream_config(cfg, stream, Path("hidden.pkl"), "videos")
        # the checkpoint a CMPL stream starts from must load into the stream's model
        assert _architecture(to_dict(adapted)) == _architecture(to_dict(own))
        assert adapted.optim.class_weighting == own.optim.class_weighting and adapted.optim.ose == own.optim.ose
        assert adapted.data.num_frames == own.data.num_frames and adapted.data.layout == own.data.layout
        if stream == "heatmap":  # the volumes the heatmap stream was trained on
            assert adapted.data.heatmap == own.data.heatmap
