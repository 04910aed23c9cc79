"""The emotion track through the engine: face + context tokens (cached) -> InterFusion -> clip or video
level heads, multi-task with the MG class, evaluation files and the MiGA emotion prediction file.
The encoders' raw-clip paths are covered by the encoder and face-pipeline tests; here the tokens are
made up so the engine is tested without decoding video."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch
import yaml

from microgesture.apps.predict import predict
from microgesture.data.cache import TokenCache
from microgesture.data.formats.annotations import make_clip, save_annotations
from microgesture.errors import ConfigError, DataError
from microgesture.train.config import load_config
from microgesture.train.extract import encoders_meta
from microgesture.train.run import evaluate, fit

VIDEOS, CLIPS, FRAMES = 12, 4, 6
STREAMS = ("model.streams={face: {encoder: light_face, width: 4, depth: 2}, "
           "rgb: {encoder: light, width: 6, depth: 2}}")


def _emotion(video: int) -> int:
    return video % 2


def make_emotion_set(path, unlabelled: tuple[int, ...] = ()):
    """12 videos of 6 subjects (2 each): subjects 0-3 train, 4 validation, 5 test; 4 clips a video."""
    clips, split = [], {"train": [], "val": [], "test": []}
    for v in range(VIDEOS):
        subject = v // 2
        for k in range(CLIPS):
            label = 2 * _emotion(v) + k % 2
            clip = make_clip(frame_dir=f"{v:04d}_{k}", label=label, keypoint=np.zeros((8, 35, 2)),
                             keypoint_score=np.ones((8, 35)), img_shape=(72, 96), layout="miga35", video_id=v,
                             subject_id=subject, emotion=-1 if v in unlabelled else _emotion(v))
            clips.append(clip)
            split["train" if subject < 4 else "val" if subject == 4 else "test"].append(clip["frame_dir"])
    save_annotations(path, clips, split, {"classes": [f"class {c}" for c in range(4)]})
    return path


def make_cache(cache_dir, ann, cfg, seed: int = 0):
    """Face tokens carry the video's emotion in one dimension (frames 2 and 3 of clip 0 have no face);
    context tokens carry the clip's MG class."""
    from microgesture.data.formats.annotations import load_annotations

    rng = np.random.default_rng(seed)
    data = load_annotations(ann)
    ids = {s: list(v) for s, v in data["split"].items()}
    cache = TokenCache.create_or_resume(cache_dir, ann, encoders_meta(cfg), ids, shard_size=16)
    by_id = {c["frame_dir"]: c for c in data["annotations"]}
    for k in cache.pending_shards():
        samples = {}
        for sid in cache.shard_ids(k):
            clip = by_id[sid]
            face = rng.normal(0, 1, (FRAMES, 8)).astype(np.float32)
            face[:, 0] += 1.5 * (2 * _emotion(clip["video_id"]) - 1)
            missing = np.zeros(FRAMES, dtype=bool)
            if sid.endswith("_0"):
                missing[2:4] = True
                face[2:4] = 0
            rgb = rng.normal(0, 1, (5, 12)).astype(np.float32)
            rgb[:, clip["label"]] += 2.0
            samples[sid] = {"face_tokens": torch.from_numpy(face), "face_missing": torch.from_numpy(missing),
                            "face_embedding": torch.from_numpy(face[~missing].mean(0)),
                            "rgb_tokens": torch.from_numpy(rgb), "rgb_embedding": torch.from_numpy(rgb.mean(0))}
        cache.write_shard(k, samples)
    return cache_dir


def sets(ann, cache, *extra):
    return [f"data.annotations={ann}", f"data.cache={cache}", "data.synthetic=null", STREAMS,
            "model.fusion={kind: interfusion, width: 16, depth: 1, heads: 2, queries: 2, dropout: 0.0}",
            "data.batch_size=4", "trainer.accelerator=cpu", "trainer.max_epochs=2", "trainer.progress_bar=false",
            "optim.optimizer=adamw", "optim.lr=0.003", *extra]


@pytest.fixture(scope="module")
def emotion_set(tmp_path_factory):
    root = tmp_path_factory.mktemp("emotion")
    ann = make_emotion_set(root / "ann.pkl")
    cache = make_cache(root / "cache", ann, load_config(None, sets(ann, root / "cache")))
    return ann, cache


def test_multitask_video_model_trains_evaluates_and_predicts(emotion_set, tmp_path):
    ann, cache = emotion_set
    cfg = load_config(None, sets(ann, cache, "task.kind=mg+emotion", "task.mg_feature=true",
                                 "task.video_pool=attention", "task.clips_per_video=3"))
    run = fit(cfg, tmp_path / "run")
    metrics = evaluate(cfg, run.best_checkpoint, tmp_path / "eval")
    emotion = metrics["emotion"]
    assert emotion["num_samples"] == 2 and emotion["num_clips"] == 2 * CLIPS  # the 2 test videos
    assert set(emotion["aggregations"]) == {"mean_logit", "vote"} and 0 <= emotion["ece"] <= 1
    assert metrics["num_samples"] == 2 * CLIPS and "top1" in metrics  # the MG head, per clip
    for name in ("emotion_videos.csv", "emotion_reliability.png", "scores.csv", "emotion_scores.csv"):
        assert (tmp_path / "eval" / name).is_file(), name
    predict(cfg, run.best_checkpoint, ann, tmp_path / "pred", split="test")
    lines = (tmp_path / "pred" / "emotion_predictions.csv").read_text().splitlines()
    assert lines[0] == "video_id,label" and len(lines) == 3
    assert {line.split(",")[0] for line in lines[1:]} == {"10", "11"}
    assert all(line.split(",")[1] in ("0", "1") for line in lines[1:])
    info = json.loads((tmp_path / "run" / "run_info.json").read_text())
    assert info["epochs"] == 2


def test_command_line_reports_emotion(emotion_set, tmp_path, capsys):
    from microgesture.cli import main
    from microgesture.typed_config import to_dict

    ann, cache = emotion_set
    cfg = load_config(None, sets(ann, cache, "task.kind=emotion", "trainer.max_epochs=1"))
    path = tmp_path / "emotion.yaml"
    path.write_text(yaml.safe_dump(to_dict(cfg)))
    run = fit(cfg, tmp_path / "run")
    main(["evaluate", str(path), "--checkpoint", str(run.last_checkpoint), "--out", str(tmp_path / "ev")])
    printed = capsys.readouterr().out
    assert "emotion (video level, 2 videos): accuracy" in printed and "top-1" not in printed
    main(["predict", str(path), "--checkpoint", str(run.last_checkpoint), "--data", str(ann), "--out",
          str(tmp_path / "pr")])
    assert "emotion_predictions.csv (video_id,label)" in capsys.readouterr().out
    assert len((tmp_path / "pr" / "emotion_predictions.csv").read_text().splitlines()) == 1 + VIDEOS


def test_clip_level_multitask_with_the_mg_distribution(emotion_set, tmp_path):
    ann, cache = emotion_set
    cfg = load_config(None, sets(ann, cache, "task.kind=mg+emotion", "task.mg_feature=true", "trainer.max_epochs=1"))
    metrics = evaluate(cfg, fit(cfg, tmp_path / "run").best_checkpoint, tmp_path / "eval")
    assert metrics["emotion"]["num_samples"] == 2 and metrics["num_samples"] == 2 * CLIPS


@pytest.mark.slow
def test_video_level_emotion_learns_from_the_face_stream(emotion_set, tmp_path):
    ann, cache = emotion_set
    cfg = load_config(None, sets(ann, cache, "task.kind=emotion", "task.video_pool=attention",
                                 "trainer.max_epochs=12", "task.monitor=val_loss",
                                 "model.fusion.modality_dropout=0.0"))
    run = fit(cfg, tmp_path / "run")
    metrics = evaluate(cfg, run.best_checkpoint, tmp_path / "eval", split="test")
    assert metrics["emotion"]["accuracy"] == 1.0  # the face tokens show the emotion plainly


def test_unlabelled_videos_are_named_before_training(tmp_path):
    ann = make_emotion_set(tmp_path / "ann.pkl", unlabelled=(1, 3))
    cache = make_cache(tmp_path / "cache", ann, load_config(None, sets(ann, tmp_path / "cache")))
    with pytest.raises(DataError, match=r"2 video\(s\) have no emotion label \(win/lose\): 1, 3"):
        fit(load_config(None, sets(ann, cache, "task.kind=emotion")), tmp_path / "emotion")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit(load_config(None, sets(ann, cache, "task.kind=mg+emotion", "trainer.max_epochs=1")), tmp_path / "mg")
    assert any("no emotion label" in str(w.message) and "1, 3" in str(w.message) for w in caught)


def test_video_options_are_checked():
    with pytest.raises(ConfigError, match="task.video_pool"):
        load_config(None, ["task.kind=mg", "task.video_pool=attention"])
    with pytest.raises(ConfigError, match="task.mg_feature"):
        load_config(None, ["task.kind=emotion", "task.mg_feature=true"])
    with pytest.raises(ConfigError, match="test_clips"):
        load_config(None, ["task.kind=emotion", "task.video_pool=attention", "data.test_clips=3",
                           "data.annotations=a.pkl"])
    with pytest.raises(ConfigError, match="reads face crops"):
        load_config(None, ["model.streams={rgb: {encoder: swinface}}"])
