"""Configs and checkpoints written by microgesture 0.1 load in 0.2 and give the same outputs.

The checkpoints in tests/data/v01 were saved by 0.1's own code (see make_checkpoints.py there),
with the logits 0.1 computed on fixed inputs.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from microgesture.errors import DataError
from microgesture.train.checkpoint import read_run_checkpoint
from microgesture.train.run import load_module

V01 = Path(__file__).parent / "data" / "v01"


def _new_inputs(old: dict[str, torch.Tensor], skeleton_stream: str) -> dict[str, torch.Tensor]:
    """0.1's batch keys (`skeleton`, `skeleton_tokens`, ...) under 0.2's stream names."""
    return {key.replace("skeleton", skeleton_stream): value for key, value in old.items()}


@pytest.mark.parametrize("name", ["skeleton_bone", "rgb", "cmtf_e2e", "cmtf_cached", "concat_cached"])
def test_v01_checkpoint_gives_the_same_logits(name):
    module = load_module(V01 / f"{name}.ckpt")
    saved = torch.load(V01 / f"{name}_io.pt", weights_only=True)
    streams = list(module.cfg.model.streams)
    skeleton = next((s for s in streams if s != "rgb"), "joint")
    batch = _new_inputs(saved["inputs"], skeleton)
    with torch.no_grad():
        logits = module(batch)["mg"]
    torch.testing.assert_close(logits, saved["logits"], rtol=1e-5, atol=1e-5)
    assert read_run_checkpoint(V01 / f"{name}.ckpt")["migrated_from"] == "0.1"


def test_v01_config_names_the_streams():
    cfg = load_module(V01 / "cmtf_e2e.ckpt").cfg
    assert list(cfg.model.streams) == ["rgb", "joint"] and cfg.model.fusion.kind == "cmtf"
    assert load_module(V01 / "skeleton_bone.ckpt").cfg.model.streams["bone"].base_channels == 4


def test_a_v01_checkpoint_is_not_resumed(tmp_path):
    from microgesture.train.config import load_config
    from microgesture.train.run import check_same_model

    cfg = load_module(V01 / "skeleton_bone.ckpt").cfg
    with pytest.raises(DataError, match="0.1: it can be evaluated"):
        check_same_model(V01 / "skeleton_bone.ckpt", cfg, resuming=True)
    assert load_config(None, ["data.annotations=x.pkl", "model.skeleton.stream=bone"]).model.streams["bone"]


def test_a_checkpoint_from_before_newer_keys_still_resumes(tmp_path):
    """Keys added since a checkpoint was written (an encoder option, optimiser options) are compared
    at their defaults, which is how that checkpoint was trained; a real difference is still refused."""
    from microgesture.errors import ConfigError
    from microgesture.train.config import load_config
    from microgesture.train.run import check_same_model
    from microgesture.typed_config import to_dict

    sets = ["data.annotations=x.pkl", "task.kind=emotion",
            "model.streams={face: {encoder: light_face, width: 8, depth: 3}}", "optim.lr=0.003"]
    cfg = load_config(None, sets)
    old = to_dict(cfg)
    del old["model"]["streams"]["face"]["frame_norm"]
    del old["optim"]["class_balance_beta"], old["optim"]["ose"]
    path = tmp_path / "old.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": {"config": old}}, path)
    check_same_model(path, cfg, resuming=True)
    with pytest.raises(ConfigError, match="frame_norm"):
        check_same_model(path, load_config(None, sets + ["model.streams.face.frame_norm=true"]), resuming=True)
    with pytest.raises(ConfigError, match="optim"):
        check_same_model(path, load_config(None, sets + ["optim.class_balance_beta=0.9"]), resuming=True)
