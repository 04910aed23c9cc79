import json
import os
import subprocess
import sys

import pytest
import torch

from conftest import interrupt_at, tiny_overrides
from microgesture.train.checkpoint import AtomicCheckpointIO, read_run_checkpoint
from microgesture.train.config import load_config
from microgesture.train.run import evaluate, fit
from microgesture.errors import ConfigError, DataError


def weights(path):
    return read_run_checkpoint(path)["state_dict"]


def test_resume_after_interrupt_is_exact(tiny_annotations, tmp_path):
    cfg = load_config(None, tiny_overrides(tiny_annotations, epochs=3))
    straight = fit(cfg, tmp_path / "straight")
    # 32 training clips / batch 8 = 4 steps an epoch: step 6 is in the middle of epoch 1
    with pytest.raises(SystemExit):
        fit(cfg, tmp_path / "broken", callbacks=[interrupt_at(6)])
    assert read_run_checkpoint(tmp_path / "broken" / "checkpoints" / "last.ckpt")["epoch"] == 0
    resumed = fit(cfg, tmp_path / "broken", resume=True)
    a, b = weights(straight.last_checkpoint), weights(resumed.last_checkpoint)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert read_run_checkpoint(resumed.last_checkpoint)["global_step"] == 12
    # the log still holds the epochs from before the interruption
    log = (tmp_path / "broken" / "logs" / "metrics.csv").read_text().splitlines()
    epochs = {row.split(",")[0] for row in log[1:]}
    assert {"0", "1", "2"} <= epochs, epochs


def test_worker_processes_change_nothing_and_resume_exactly(tiny_annotations, tmp_path):
    """Augmentation draws from (seed, epoch, index), not from a worker's state: two worker processes
    train the same weights as none, and a run interrupted mid-epoch with workers resumes exactly."""
    overrides = tiny_overrides(tiny_annotations, epochs=2)
    inline = fit(load_config(None, overrides + ["data.num_workers=0"]), tmp_path / "inline")
    workers = load_config(None, overrides + ["data.num_workers=2"])
    with pytest.raises(SystemExit):
        fit(workers, tmp_path / "broken", callbacks=[interrupt_at(6)])
    resumed = fit(workers, tmp_path / "broken", resume=True)
    a, b = weights(inline.last_checkpoint), weights(resumed.last_checkpoint)
    for key in a:
        assert torch.equal(a[key], b[key]), key


@pytest.mark.auto_workers
def test_num_workers_auto_and_bad_values(monkeypatch):
    from microgesture.train import datamodule

    monkeypatch.setattr(datamodule.os, "sched_getaffinity", lambda pid: set(range(2)), raising=False)
    assert datamodule.loader_workers("auto") == 1
    monkeypatch.setattr(datamodule.os, "sched_getaffinity", lambda pid: set(range(64)), raising=False)
    assert datamodule.loader_workers("auto") == 8
    assert datamodule.loader_workers(3) == 3
    assert datamodule.loader_workers("auto", cached=True) == 0  # tokens in memory: workers would copy them
    assert datamodule.loader_workers(3, cached=True) == 3
    assert load_config(None, []).data.num_workers == "auto"
    with pytest.raises(ConfigError, match="data.num_workers"):
        load_config(None, ["data.num_workers=-1"])
    with pytest.raises(ConfigError, match="data.num_workers"):
        load_config(None, ["data.num_workers=many"])


def test_fit_refuses_to_overwrite_and_to_resume_nothing(tiny_annotations, tmp_path):
    cfg = load_config(None, tiny_overrides(tiny_annotations, epochs=1))
    with pytest.raises(DataError, match="nothing to resume"):
        fit(cfg, tmp_path / "run", resume=True)
    fit(cfg, tmp_path / "run")
    with pytest.raises(DataError, match="already holds a checkpoint"):
        fit(cfg, tmp_path / "run")
    wider = load_config(None, tiny_overrides(tiny_annotations, epochs=2) + ["model.skeleton.base_channels=16"])
    with pytest.raises(ConfigError, match=r"model.streams.joint.base_channels: .* was trained with 8, the config says 16"):
        fit(wider, tmp_path / "run", resume=True)


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "last.ckpt"
    io = AtomicCheckpointIO()
    io.save_checkpoint({"state_dict": {"w": torch.ones(2)}, "hyper_parameters": {}}, path)

    def broken_save(obj, f, *args, **kwargs):
        with open(f, "wb") as fh:
            fh.write(b"half a checkpoint")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(KeyboardInterrupt):
        io.save_checkpoint({"state_dict": {"w": torch.zeros(2)}, "hyper_parameters": {}}, path)
    monkeypatch.undo()
    assert torch.equal(read_run_checkpoint(path)["state_dict"]["w"], torch.ones(2))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt"]


def test_evaluate_writes_report_and_checks_architecture(tiny_annotations, tmp_path):
    cfg = load_config(None, tiny_overrides(tiny_annotations, epochs=1))
    run = fit(cfg, tmp_path / "run")
    metrics = evaluate(cfg, run.best_checkpoint, tmp_path / "eval", num_clips=2)
    for key in ("top1", "top5", "macro_f1", "mean_class_accuracy", "per_class_accuracy"):
        assert key in metrics
    saved = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert saved["top1"] == metrics["top1"] and saved["num_samples"] == 8
    lines = (tmp_path / "eval" / "scores.csv").read_text().splitlines()
    assert lines[0].startswith("sample_id,label,score_0") and len(lines) == 9
    assert (tmp_path / "eval" / "confusion_matrix.png").stat().st_size > 1000
    other = load_config(None, tiny_overrides(tiny_annotations) + ["model.skeleton.base_channels=16"])
    with pytest.raises(Exception, match=r"model.streams.joint.base_channels: .* was trained with 8, the config says 16"):
        evaluate(other, run.best_checkpoint, tmp_path / "eval2")


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed is not built in")
def test_ddp_two_processes_on_cpu(tiny_annotations, tmp_path):
    cfg = tmp_path / "ddp.yaml"
    cfg.write_text("name: ddp\n")
    sets = [x for o in tiny_overrides(tiny_annotations, epochs=2) for x in ("--set", o)]
    cmd = [sys.executable, "-m", "microgesture.cli", "train", str(cfg), *sets, "--out", str(tmp_path / "run"),
           "--devices", "2", "--strategy", "ddp", "--accelerator", "cpu"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    ckpt = read_run_checkpoint(tmp_path / "run" / "checkpoints" / "last.ckpt")
    # 32 clips split over 2 ranks = 16 each, batch 8: 2 steps an epoch instead of 4
    assert ckpt["global_step"] == 4
    info = json.loads((tmp_path / "run" / "run_info.json").read_text())
    assert info["world_size"] == 2


def test_learns_far_above_chance(tmp_path):
    from conftest import make_tiny_annotations

    # 4 classes, 16 held-out clips of an unseen subject: chance is 25%; P(>= 12/16 by luck) < 1e-4.
    # 20 epochs: at 12 the AVX2 kernels' trajectory ended at 11/16 (AMX, AVX-512: 14-15/16, AVX2 14/16 at 20).
    ann = make_tiny_annotations(tmp_path / "ann.pkl", clips_per_class=24, seed=1)
    cfg = load_config(None, tiny_overrides(ann, epochs=20) + ["model.skeleton.base_channels=16", "optim.warmup_epochs=1"])
    run = fit(cfg, tmp_path / "run")
    metrics = evaluate(cfg, run.best_checkpoint, tmp_path / "eval")
    assert metrics["num_samples"] == 16
    assert metrics["top1"] >= 0.75, metrics


class _BrokenClip(torch.utils.data.Dataset):
    def __len__(self):
        return 4

    def __getitem__(self, index):
        raise DataError("clips/0003.mp4", "video file not found\n(needed by clip 0003_1)")


def test_an_error_in_a_worker_process_reaches_the_user_as_itself():
    """torch rebuilds a worker's error from one string (its header and the worker's traceback);
    the user still gets the DataError and its own message, not a RuntimeError around a traceback."""
    loader = torch.utils.data.DataLoader(_BrokenClip(), num_workers=1)
    with pytest.raises(DataError) as caught:
        next(iter(loader))
    assert str(caught.value) == "clips/0003.mp4: video file not found\n(needed by clip 0003_1)"
    assert str(DataError("clips/0003.mp4", "video file not found")) == "clips/0003.mp4: video file not found"
    assert str(ConfigError("data.num_workers: must be >= 0")) == "data.num_workers: must be >= 0"
