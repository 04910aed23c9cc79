"""Hostile and mistaken input at every entry point: each gets the exact error class with a message
naming the file and the field or option, nothing from a crafted file runs, nothing is half-written.

The crafted files carry a `__reduce__` payload that would create a marker file if it ran.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from microgesture.cli import main, run
from microgesture.errors import ConfigError, DataError

REPO = Path(__file__).resolve().parents[1]
CONFIG = str(REPO / "configs" / "synthetic" / "agcn_joint.yaml")


class Payload:
    """Unpickling this would run `touch <marker>`."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def tiny_sets(annotations: Path, *extra: str) -> list[str]:
    sets = [f"data.annotations={annotations}", "data.num_frames=8", "data.batch_size=8",
            "model.streams={joint: {encoder: agcn, base_channels: 4}}", "trainer.max_epochs=1",
            "trainer.progress_bar=false", "trainer.accelerator=cpu", *extra]
    return [x for s in sets for x in ("--set", s)]


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_annotations):
    out = tmp_path_factory.mktemp("hostile") / "run"
    assert main(["train", CONFIG, *tiny_sets(tiny_annotations), "--out", str(out)]) == 0
    return out / "checkpoints" / "best.ckpt"


@pytest.fixture
def marker(tmp_path):
    path = tmp_path / "PWNED"
    yield path
    assert not path.exists(), "code from a crafted file ran"


def evil_checkpoint(real: Path, out: Path, marker: Path) -> Path:
    ckpt = torch.load(real, weights_only=True)
    ckpt["evil"] = Payload(marker)
    torch.save(ckpt, out)
    return out


def raises(argv: list[str], kind: type, *words: str) -> str:
    with pytest.raises(kind) as err:
        run(argv)
    text = str(err.value)
    for word in words:
        assert word in text, f"{word!r} not in the message: {text}"
    return text


# --- crafted files -----------------------------------------------------------------------------


def test_crafted_annotation_pickle_is_refused(tmp_path, marker, capsys):
    evil = tmp_path / "evil.pkl"
    evil.write_bytes(pickle.dumps({"annotations": [], "split": {}, "x": Payload(marker)}))
    raises(["data", "summary", str(evil)], DataError, str(evil), "refused", "system")
    assert run(["data", "validate", str(evil)]) == 1
    assert "refused" in capsys.readouterr().out
    raises(["train", CONFIG, "--set", f"data.annotations={evil}", "--out", str(tmp_path / "r")], DataError, str(evil))


def test_crafted_checkpoints_are_refused(trained, tiny_annotations, tmp_path, marker):
    evil = evil_checkpoint(trained, tmp_path / "evil.ckpt", marker)
    sets = tiny_sets(tiny_annotations)
    raises(["evaluate", CONFIG, *sets, "--checkpoint", str(evil), "--out", str(tmp_path / "ev")],
           DataError, str(evil), "run code")
    raises(["predict", CONFIG, *sets, "--checkpoint", str(evil), "--data", str(tiny_annotations),
            "--out", str(tmp_path / "pr")], DataError, str(evil))
    init = tiny_sets(tiny_annotations, f"model.streams={{joint: {{encoder: agcn, base_channels: 4, checkpoint: {evil}}}}}")
    raises(["train", CONFIG, *init, "--out", str(tmp_path / "init")], DataError, str(evil))
    planted = tmp_path / "planted" / "checkpoints"
    planted.mkdir(parents=True)
    evil_checkpoint(trained, planted / "last.ckpt", marker)
    raises(["train", CONFIG, *sets, "--out", str(tmp_path / "planted"), "--resume"], DataError, "last.ckpt")


def test_crafted_score_files_are_refused(tmp_path, marker):
    evil = tmp_path / "scores.pkl"
    evil.write_bytes(pickle.dumps([{"pred_score": Payload(marker)}]))
    zipped = tmp_path / "scores.pth"
    torch.save([{"pred_score": torch.zeros(3), "x": Payload(marker)}], zipped)
    for path in (evil, zipped):
        raises(["fuse", str(path), str(path)], DataError, str(path))


# --- outputs -------------------------------------------------------------------------------------


def test_an_output_under_a_regular_file_is_refused_before_any_work(trained, tiny_annotations, tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("x")
    sets = tiny_sets(tiny_annotations)
    cases = [
        ["data", "import", "miga", str(tmp_path), "--out", str(afile / "x.pkl")],
        ["data", "synth", str(afile / "synth")],
        ["train", CONFIG, *sets, "--out", str(afile / "run")],
        ["evaluate", CONFIG, *sets, "--checkpoint", str(trained), "--out", str(afile / "ev")],
        ["predict", CONFIG, *sets, "--checkpoint", str(trained), "--data", str(tiny_annotations),
         "--out", str(afile / "pred")],
        ["fuse", "a.csv", "b.csv", "--out", str(afile / "m.json")],
        ["extract", CONFIG, *sets, "--out", str(afile / "cache")],
    ]
    for argv in cases:
        raises(argv, DataError, str(afile), "which is a file")
    assert afile.read_text() == "x"


def test_two_runs_into_one_folder(tiny_annotations, tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / ".lock").write_text(f'{{"host": "{os.uname().nodename}", "pid": {os.getpid()}}}')
    raises(["train", CONFIG, *tiny_sets(tiny_annotations), "--out", str(run_dir)], DataError,
           str(run_dir), f"process {os.getpid()}")
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    (run_dir / ".lock").write_text(f'{{"host": "{os.uname().nodename}", "pid": {gone.pid}}}')
    with pytest.warns(UserWarning, match="taking over the lock"):
        assert run(["train", CONFIG, *tiny_sets(tiny_annotations), "--out", str(run_dir)]) == 0
    assert not (run_dir / ".lock").exists() and (run_dir / "checkpoints" / "last.ckpt").is_file()


# --- options and splits ----------------------------------------------------------------------


def test_options_that_cannot_work_are_sentences(trained, tiny_annotations, tmp_path):
    sets = tiny_sets(tiny_annotations)
    out = ["--out", str(tmp_path / "r")]
    raises(["train", CONFIG, *sets, *out, "--devices", "0"], ConfigError, "trainer.devices", "--devices")
    raises(["train", CONFIG, *sets, *out, "--precision", "8-bogus"], ConfigError, "8-bogus")
    if not torch.cuda.is_available():
        raises(["train", CONFIG, *sets, *out, "--accelerator", "gpu"], ConfigError, "--accelerator", "no CUDA GPU")
        raises(["evaluate", CONFIG, *sets, "--checkpoint", str(trained), "--device", "cuda"], ConfigError,
               "--device cuda")
    raises(["evaluate", CONFIG, *sets, "--checkpoint", str(trained), "--device", "bogus"], ConfigError, "--device")
    assert not (tmp_path / "r").exists()  # a failed start leaves no run folder behind
    with pytest.raises(SystemExit):
        run(["evaluate", CONFIG, "--checkpoint", str(trained), "--clips", "0"])


def test_empty_split_and_labels_out_of_range(trained, tiny_annotations, tmp_path, capsys):
    from microgesture.data.formats.annotations import load_annotations, save_annotations

    data = load_annotations(tiny_annotations)
    data["split"]["empty"] = []
    empty = tmp_path / "empty.pkl"
    save_annotations(empty, data["annotations"], data["split"], data["meta"], videos=data["videos"])
    sets = tiny_sets(empty)
    raises(["evaluate", CONFIG, *sets, "--checkpoint", str(trained), "--split", "empty", "--out", str(tmp_path / "e")],
           DataError, "split 'empty' has no clips")
    raises(["predict", CONFIG, *sets, "--checkpoint", str(trained), "--data", str(empty), "--split", "empty",
            "--out", str(tmp_path / "p")], DataError, "split 'empty' has no clips")

    data["annotations"][0]["label"] = 40
    bad = tmp_path / "bad.pkl"
    bad.write_bytes(pickle.dumps({k: v for k, v in data.items() if k != "meta"} | {"meta": {"classes": ["a"] * 4}}))
    raises(["data", "summary", str(bad)], DataError, str(bad), "label: 40 is not a class index")
    assert run(["data", "validate", str(bad)]) == 1
    assert "label: 40" in capsys.readouterr().out
    raises(["train", CONFIG, *tiny_sets(bad), "--out", str(tmp_path / "t")], DataError, "label: 40")


def test_utf16_videos_csv_is_named(tmp_path, capsys):
    from microgesture.data.synth import generate_dataset

    root = tmp_path / "synth"
    generate_dataset(root, subjects=2, videos_per_subject=1, video=False, seconds=8)
    text = (root / "videos.csv").read_text()
    (root / "videos.csv").write_bytes(text.encode("utf-16"))
    raises(["data", "import", "miga", str(root), "--out", str(tmp_path / "a.pkl"), "--protocol", "none"],
           DataError, "videos.csv", "UTF-8")
    assert run(["data", "validate", str(root)]) == 1
    assert "videos.csv" in capsys.readouterr().out
    assert not (tmp_path / "a.pkl").exists()


def test_a_config_typo_is_reported_before_torch_loads(tmp_path):
    cfg = tmp_path / "typo.yaml"
    cfg.write_text("optim:\n  learning_rate: 0.1\n")
    code = ("import sys; from microgesture.cli import main; rc = main(['train', %r]); "
            "print(rc, 'torch' in sys.modules)" % str(cfg))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.split() == ["2", "False"], out.stdout + out.stderr
    assert "optim.learning_rate: unknown key" in out.stderr


def test_training_only_keys_do_not_block_evaluation(trained, tiny_annotations, tmp_path, capsys):
    """Dropout and the paths of weights used at training time may differ; the network may not."""
    sets = tiny_sets(tiny_annotations, "model.streams={joint: {encoder: agcn, base_channels: 4, dropout: 0.5}}")
    assert run(["evaluate", CONFIG, *sets, "--checkpoint", str(trained)]) == 0
    run_dir = trained.parent.parent
    assert (run_dir / "eval" / "best" / "metrics.json").is_file()  # best and last get folders of their own
    assert run(["evaluate", CONFIG, *sets, "--checkpoint", str(run_dir / "checkpoints" / "last.ckpt")]) == 0
    assert (run_dir / "eval" / "last" / "metrics.json").is_file()
    wider = tiny_sets(tiny_annotations, "model.streams={joint: {encoder: agcn, base_channels: 8}}")
    raises(["evaluate", CONFIG, *wider, "--checkpoint", str(trained)], ConfigError,
           "model.streams.joint.base_channels", "trained with 4", "the config says 8")


def test_fuse_keeps_rows_of_files_with_the_same_name(trained, tiny_annotations, tmp_path, capsys):
    sets = tiny_sets(tiny_annotations)
    for name in ("a", "b"):
        assert run(["evaluate", CONFIG, *sets, "--checkpoint", str(trained), "--out", str(tmp_path / name)]) == 0
    capsys.readouterr()
    assert run(["fuse", str(tmp_path / "a" / "scores.csv"), str(tmp_path / "b" / "scores.csv")]) == 0
    table = capsys.readouterr().out
    assert str(tmp_path / "a" / "scores.csv") in table and str(tmp_path / "b" / "scores.csv") in table


def test_litter_of_an_interrupted_save_is_cleared(tiny_annotations, tmp_path):
    run_dir = tmp_path / "run"
    (run_dir / "checkpoints").mkdir(parents=True)
    litter = run_dir / "checkpoints" / ".best.ckpt.abc123.tmp"
    litter.write_bytes(b"half a checkpoint")
    assert run(["train", CONFIG, *tiny_sets(tiny_annotations), "--out", str(run_dir)]) == 0
    assert not litter.exists() and (run_dir / "checkpoints" / "best.ckpt").is_file()
