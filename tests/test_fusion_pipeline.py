"""The RGB + skeleton recipe of arXiv 2512.23291 end to end on a tiny synthetic dataset with video
(a few minutes on 2 cores)."""

import zipfile

import numpy as np
import pytest

from microgesture.data.formats.annotations import load_annotations, save_annotations
from microgesture.data.cache import TokenCache
from microgesture.data.formats.miga import import_miga_to_file
from microgesture.data.synth import generate_dataset
from microgesture.errors import DataError
from microgesture.train.config import load_config
from microgesture.train.extract import extract_for_experiment
from microgesture.apps.predict import predict
from microgesture.train.run import evaluate, fit


@pytest.fixture(scope="module")
def tiny_video_set(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth_video")
    generate_dataset(root / "data", subjects=3, videos_per_subject=1, seed=3, size=(96, 72), video=True, seconds=20)
    ann = root / "ann.pkl"
    import_miga_to_file(root / "data", ann, protocol="synthetic-xsub", val_fraction=0.5, seed=0)
    return ann


RGB = "rgb: {encoder: light, width: 8, depth: 2%s}"
JOINT = "joint: {encoder: agcn, base_channels: 8%s}"


def common(ann, epochs=1):
    return [f"data.annotations={ann}", "data.num_frames=16", "data.batch_size=8", "trainer.accelerator=cpu",
            f"trainer.max_epochs={epochs}", "trainer.progress_bar=false", "data.rgb.num_frames=8", "data.rgb.size=32"]


def streams(*parts, fusion=None):
    sets = ["model.streams={" + ", ".join(parts) + "}"]
    if fusion:
        sets.append(f"model.fusion={{kind: {fusion}, width: 32, depth: 1, hidden: 32}}")
    return sets


def test_rgb_skeleton_extract_fuse_predict(tiny_video_set, tmp_path):
    ann = tiny_video_set
    rgb_run = fit(load_config(None, common(ann) + streams(RGB % "")), tmp_path / "rgb")
    skel_run = fit(load_config(None, common(ann) + streams(JOINT % "")), tmp_path / "skel")
    trained = (RGB % f", checkpoint: {rgb_run.best_checkpoint}", JOINT % f", checkpoint: {skel_run.best_checkpoint}")

    cache_dir = tmp_path / "cache"
    extract_for_experiment(load_config(None, common(ann) + streams(*trained, fusion="cmtf")), cache_dir, progress=False)
    data = load_annotations(ann)
    cache = TokenCache.open(cache_dir, ann)
    first = data["split"]["test"][0]
    tokens = cache.get(first)
    assert tokens["joint_tokens"].shape[-1] == 32 and tokens["joint_tokens"].dim() == 3  # [T', V, C]
    assert tokens["rgb_tokens"].shape[-1] == 16 and tokens["rgb_embedding"].shape == (16,)

    for kind in ("cmtf", "concat", "late"):
        cfg = load_config(None, common(ann) + streams(*trained, fusion=kind) + [f"data.cache={cache_dir}"])
        run = fit(cfg, tmp_path / kind)
        metrics = evaluate(cfg, run.best_checkpoint, tmp_path / f"{kind}_eval")
        assert metrics["num_samples"] == len(data["split"]["test"])
        assert 0.0 <= metrics["top1"] <= 1.0

    cfg = load_config(None, common(ann) + streams(*trained, fusion="cmtf") + [f"data.cache={cache_dir}"])
    best = tmp_path / "cmtf" / "checkpoints" / "best.ckpt"
    zipped = predict(cfg, best, ann, tmp_path / "pred", split="test")
    with zipfile.ZipFile(zipped) as zf:
        rows = zf.read(zf.namelist()[0]).decode().splitlines()
    assert rows[0] == "Id,Target" and len(rows) == 1 + len(data["split"]["test"])
    assert {r.split(",")[0] for r in rows[1:]} == set(data["split"]["test"])

    # The cache-trained fusion predicts on another annotation file from raw clips, through the
    # encoders its config names: the same scores as from the cached tokens (float16 aside).
    moved = tmp_path / "elsewhere" / "again.pkl"
    moved.parent.mkdir()
    save_annotations(moved, data["annotations"], data["split"], data["meta"], videos=data["videos"])
    elsewhere = load_config(None, common(ann) + streams(*trained, fusion="cmtf")
                            + [f"data.cache={cache_dir}", f"data.video_root={ann.parent}"])
    predict(elsewhere, best, moved, tmp_path / "pred_raw", split="test")
    assert_scores_close(tmp_path / "pred" / "scores.csv", tmp_path / "pred_raw" / "scores.csv")

    # end to end from raw clips, encoders initialised from the single-stream runs
    e2e_cfg = load_config(None, common(ann) + streams(*trained, fusion="cmtf"))
    e2e = fit(e2e_cfg, tmp_path / "e2e")
    # the fusion checkpoint is self-contained: the stream runs it started from may be gone
    for run in (rgb_run, skel_run):
        run.best_checkpoint.rename(run.best_checkpoint.with_suffix(".moved"))
    assert evaluate(e2e_cfg, e2e.best_checkpoint, tmp_path / "e2e_eval")["num_samples"] == len(data["split"]["test"])


def assert_scores_close(a, b):
    from microgesture.eval.scores import read_scores

    x, y = read_scores(a), read_scores(b)
    assert x.sample_ids == y.sample_ids
    np.testing.assert_allclose(x.scores, y.scores, atol=0.05)
    assert (x.scores.argmax(1) == y.scores.argmax(1)).mean() > 0.9


def test_stale_cache_is_refused(tiny_video_set, tmp_path):
    ann = tiny_video_set
    cfg = load_config(None, common(ann) + streams(RGB % "", JOINT % "", fusion="concat"))
    extract_for_experiment(cfg, tmp_path / "cache", progress=False)
    changed = tmp_path / "changed.pkl"
    data = load_annotations(ann)
    data["annotations"][0]["label"] = (data["annotations"][0]["label"] + 1) % 32
    save_annotations(changed, data["annotations"], data["split"], data["meta"])
    cfg = load_config(None, common(changed) + streams(RGB % "", JOINT % "", fusion="concat")
                      + [f"data.cache={tmp_path / 'cache'}"])
    with pytest.raises(DataError, match="stale"):
        fit(cfg, tmp_path / "run")


def test_rgb_model_needs_videos(tiny_video_set, tmp_path):
    data = load_annotations(tiny_video_set)
    for clip in data["annotations"]:
        clip["video_path"] = "missing/nowhere.mp4"
    broken = tmp_path / "broken.pkl"
    save_annotations(broken, data["annotations"], data["split"], data["meta"])
    with pytest.raises(DataError, match="nowhere.mp4"):
        fit(load_config(None, common(broken) + streams(RGB % "")), tmp_path / "run")
