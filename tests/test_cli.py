import argparse
import json
import subprocess
import sys

import pytest

from microgesture.cli import build_parser, main


def all_commands(parser, prefix=()):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield prefix + (name,)
                yield from all_commands(sub, prefix + (name,))


def test_every_subcommand_has_help(capsys):
    commands = list(all_commands(build_parser()))
    for expected in [("data", "synth"), ("data", "import", "miga"), ("data", "import", "openpose"),
                     ("data", "validate"), ("train",), ("evaluate",), ("fuse",), ("demo",)]:
        assert expected in commands
    for command in commands:
        with pytest.raises(SystemExit) as exc:
            main([*command, "--help"])
        assert exc.value.code == 0
        assert "usage: microgesture " + " ".join(command) in capsys.readouterr().out


def test_console_script_runs():
    out = subprocess.run([sys.executable, "-m", "microgesture.cli", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "train" in out.stdout


def test_bad_config_is_one_clear_line(tmp_path, capsys):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("optim:\n  learning_rate: 0.1\n")
    assert main(["train", str(cfg), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "error:" in err and "optim.learning_rate: unknown key" in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()


def test_validate_exit_status(tmp_path, capsys):
    junk = tmp_path / "junk.pkl"
    junk.write_bytes(b"\x00garbage")
    assert main(["data", "validate", str(junk)]) == 1
    assert "junk.pkl" in capsys.readouterr().out


def test_fuse_real_mmaction2_scores(shared_data, tmp_path, capsys):
    scores = shared_data / "mmaction2_scores"
    out = tmp_path / "metrics.json"
    assert main(["fuse", str(scores / "demo_fuse_joint.pkl"), str(scores / "demo_fuse_bone.pkl"), "--out", str(out)]) == 0
    metrics = json.loads(out.read_text())
    assert round(metrics["top1"], 3) == 0.933
    tops = sorted(round(m["top1"], 3) for m in metrics["streams"].values())
    assert tops == [0.917, 0.933]
    assert "fused" in capsys.readouterr().out


def test_each_importer_keeps_its_own_default_layout(tmp_path):
    """The importers share their options through one parent parser; a default set for SMG (ntu25)
    once leaked into `data import miga`, whose files then could not be trained on as miga35."""
    from microgesture.data.formats.annotations import load_annotations

    data = tmp_path / "synth"
    assert main(["data", "synth", str(data), "--subjects", "3", "--videos-per-subject", "1", "--no-video"]) == 0
    assert main(["data", "import", "miga", str(data), "--out", str(tmp_path / "a.pkl")]) == 0
    loaded = load_annotations(tmp_path / "a.pkl")
    assert loaded["meta"]["layout"] == "miga35"
    assert {c["keypoint"].shape[2] for c in loaded["annotations"]} == {35}
    parser = build_parser()
    assert parser.parse_args(["data", "import", "smg", "x", "--out", "y.pkl"]).layout is None  # resolved to ntu25
    assert parser.parse_args(["data", "import", "miga", "x", "--out", "y.pkl"]).layout is None  # resolved to miga35



def test_output_into_a_closed_pipe_ends_quietly(monkeypatch, capsys):
    """`microgesture data summary F | head -3`: the reader stops early; exit 0, no traceback."""
    import microgesture.cli as cli

    def closed_pipe(argv):
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(cli, "run", closed_pipe)
    assert cli.main(["data", "summary", "x.pkl"]) == 0
